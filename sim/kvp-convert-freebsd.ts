/**
 * FreeBSD hv_kvp.c conversions (spec/wire.md section 7, spec/kvp.md 8.1)
 * between the host's KVP payload (UTF-16LE) and the daemon's 7430-byte
 * hv_kvp_msg (UTF-8). The op structure is shared (kvp-convert.ts); the size
 * arithmetic quirks (pitfalls F5, F7, F8), the hn(4) adapter mapping and
 * the reply dispatch are FreeBSD's.
 */
import { KVP_OP_DELETE, KVP_OP_ENUMERATE, KVP_OP_GET, KVP_OP_GET_IP_INFO, KVP_OP_SET, KVP_OP_SET_IP_INFO } from '../common/wire/constants.js';
import { kvpMsgSize } from '../common/wire/structs.js';
import type { HnDevice } from './host-api.js';
import { enumToHost, getToHost, hostToDaemon, ipInfoToHost, type StringToHost, type ToDaemonRules } from './kvp-convert.js';
import { cstrAt, freebsdUtf16ToUtf8, freebsdUtf8ToUtf16, putUnits, unitsAt } from './kernel-text.js';
import { DAEMON_IP, GET, HOST_IP, view } from './kvp-fields.js';

/** GUID text is 36 characters; the kernel compares it with adapter_id + 1 (past the "{"). */
const GUID_TEXT_LEN = 36;

const TO_DAEMON: ToDaemonRules = {
  msgSize: kvpMsgSize('freebsd'),
  /** The size is the converted byte count halved (F5). */
  sizedString(host, msg, size, field, room) {
    // The host's byte count is passed as a unit count, so the kernel reads twice as far as the string goes.
    const r = freebsdUtf16ToUtf8(unitsAt(host, field.offset, host.readUInt32LE(size.offset)), room);
    r.bytes.copy(msg, field.offset);
    return Math.floor(r.count / 2);
  },
  // ip_addr, sub_net, dns_addr cut at 1024 UTF-8 bytes, gate_way at 512, adapter_id at 128 (F8).
  ipString: (units, limit) => freebsdUtf16ToUtf8(units, limit).bytes,
  // sprintf "%d": 2^31 and up print negative.
  u32Signed: true,
};

/** Replace a SET_IP_INFO adapter GUID by the hn(4) interface name whose instance GUID matches (last device first, case-sensitive). */
function mapAdapterGuid(msg: Buffer, hn: readonly HnDevice[]): void {
  const id = view(msg, DAEMON_IP.adapter_id);
  const text = id.subarray(1, 1 + GUID_TEXT_LEN).toString('latin1');
  for (let i = hn.length - 1; i >= 0; i--) {
    if (hn[i]!.guid.toLowerCase() !== text) continue;
    // strlcpy: the name and a NUL; whatever followed in the field stays.
    const name = Buffer.from(hn[i]!.ifname, 'utf8').subarray(0, id.length - 1);
    name.copy(id);
    id.writeUInt8(0, name.length);
    return;
  }
}

/** The daemon's request for a host KVP payload (hv_kvp_convert_hostmsg_to_usermsg). */
export function freebsdToDaemon(host: Buffer, hn: readonly HnDevice[]): Buffer {
  return hostToDaemon(host, { ...TO_DAEMON, mapAdapterId: (msg) => mapAdapterGuid(msg, hn) });
}

/** Every string converts; the announced size is 2*(untruncated units + 1) (F7). */
const stringToHost: StringToHost = (reply, daemon, from, to, maxUnits) => {
  const r = freebsdUtf8ToUtf16(cstrAt(daemon, from.offset), maxUnits);
  putUnits(reply, to.offset, r.units);
  return 2 * (r.count + 1);
};

/**
 * Convert the daemon's reply into the host payload `reply` for the host's
 * op (hv_kvp_convert_usermsg_to_hostmsg). FreeBSD converts whatever the
 * status; the status itself is the daemon's bytes 0..3. Returns false for
 * an op it cannot convert (write() then fails EINVAL).
 */
export function freebsdToHost(reply: Buffer, daemon: Buffer, hostOp: number): boolean {
  switch (hostOp) {
    case KVP_OP_GET_IP_INFO:
      ipInfoToHost(reply, daemon, stringToHost);
      // Unlike Linux, the family comes back from the daemon too.
      reply.writeUInt8(daemon.readUInt8(DAEMON_IP.addr_family.offset), HOST_IP.addr_family.offset);
      return true;
    case KVP_OP_SET_IP_INFO:
    case KVP_OP_SET:
    case KVP_OP_DELETE:
      return true;
    case KVP_OP_ENUMERATE:
      return enumToHost(reply, daemon, stringToHost);
    case KVP_OP_GET:
      return getToHost(reply, daemon, GET.value, stringToHost);
    default:
      return false;
  }
}
