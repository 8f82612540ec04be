/**
 * FreeBSD hv_kvp.c conversions (spec/wire.md section 7, spec/kvp.md 8.1)
 * between the host's KVP payload (UTF-16LE) and the daemon's 7430-byte
 * hv_kvp_msg (UTF-8), size arithmetic quirks included (pitfalls F5, F7, F8).
 */
import {
  KVP_HOST_KEY_MAX_UNITS,
  KVP_HOST_VALUE_MAX_UNITS,
  KVP_MAX_KEY_SIZE,
  KVP_MAX_VALUE_SIZE,
  KVP_OP_DELETE,
  KVP_OP_ENUMERATE,
  KVP_OP_GET,
  KVP_OP_GET_IP_INFO,
  KVP_OP_SET,
  KVP_OP_SET_IP_INFO,
  REG_SZ,
  REG_U32,
  REG_U64,
} from '../common/wire/constants.js';
import { kvpMsgSize } from '../common/wire/structs.js';
import type { HnDevice } from './host-api.js';
import { cstrAt, freebsdUtf16ToUtf8, freebsdUtf8ToUtf16, putUnits, unitsAt } from './kernel-text.js';
import {
  DAEMON_IP,
  DELETE,
  ENUM,
  ENUM_INDEX,
  GET,
  HOST_IP,
  IP_LIMITS,
  IP_STRINGS,
  OP,
  POOL,
  SET,
  view,
  type Field,
  type IpString,
} from './kvp-fields.js';

/** GUID text is 36 characters; the kernel compares it with adapter_id + 1 (past the "{"). */
const GUID_TEXT_LEN = 36;

/** A host key (GET, SET, DELETE) into the daemon message; the size is the converted byte count halved (F5). */
function keyToDaemon(host: Buffer, msg: Buffer, f: { keySize: Field; key: Field }): void {
  // The host's byte count is passed as a unit count, so the kernel reads twice as far as the key goes.
  const r = freebsdUtf16ToUtf8(unitsAt(host, f.key.offset, host.readUInt32LE(f.keySize.offset)), KVP_MAX_KEY_SIZE - 1);
  r.bytes.copy(msg, f.key.offset);
  msg.writeUInt32LE(Math.floor(r.count / 2), f.keySize.offset);
}

function ipToDaemon(host: Buffer, msg: Buffer, names: readonly IpString[]): void {
  for (const n of names) {
    // ip_addr, sub_net, dns_addr cut at 1024 UTF-8 bytes, gate_way at 512, adapter_id at 128 (F8).
    freebsdUtf16ToUtf8(unitsAt(host, HOST_IP[n].offset, IP_LIMITS[n]), IP_LIMITS[n]).bytes.copy(msg, DAEMON_IP[n].offset);
  }
}

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
  const msg = Buffer.alloc(kvpMsgSize('freebsd'));
  const op = host.readUInt8(OP.offset);
  msg.writeUInt8(op, OP.offset);
  msg.writeUInt8(host.readUInt8(POOL.offset), POOL.offset);
  switch (op) {
    case KVP_OP_SET_IP_INFO:
      ipToDaemon(host, msg, IP_STRINGS);
      mapAdapterGuid(msg, hn);
      msg.writeUInt8(host.readUInt8(HOST_IP.addr_family.offset), DAEMON_IP.addr_family.offset);
      msg.writeUInt8(host.readUInt8(HOST_IP.dhcp_enabled.offset), DAEMON_IP.dhcp_enabled.offset);
      break;
    case KVP_OP_GET_IP_INFO:
      ipToDaemon(host, msg, ['adapter_id']);
      msg.writeUInt8(host.readUInt8(HOST_IP.addr_family.offset), DAEMON_IP.addr_family.offset);
      break;
    case KVP_OP_SET: {
      // value_type is read but never copied: the daemon sees 0.
      const type = host.readUInt32LE(SET.valueType.offset);
      let size = 0;
      if (type === REG_SZ) {
        const r = freebsdUtf16ToUtf8(unitsAt(host, SET.value.offset, host.readUInt32LE(SET.valueSize.offset)), KVP_MAX_VALUE_SIZE - 1);
        r.bytes.copy(msg, SET.value.offset);
        size = Math.floor(r.count / 2);
      } else if (type === REG_U32 || type === REG_U64) {
        // sprintf "%d" for U32 (signed: 2^31 and up print negative), "%llu" for U64.
        const text = type === REG_U32 ? String(host.readInt32LE(SET.value.offset)) : String(host.readBigUInt64LE(SET.value.offset));
        Buffer.from(text, 'latin1').copy(msg, SET.value.offset);
        size = text.length + 1;
      }
      msg.writeUInt32LE(size, SET.valueSize.offset);
      keyToDaemon(host, msg, SET);
      break;
    }
    case KVP_OP_GET:
      keyToDaemon(host, msg, GET);
      break;
    case KVP_OP_DELETE:
      keyToDaemon(host, msg, DELETE);
      break;
    case KVP_OP_ENUMERATE:
      msg.writeUInt32LE(host.readUInt32LE(ENUM_INDEX.offset), ENUM_INDEX.offset);
      break;
  }
  return msg;
}

/** One daemon string into a host UTF-16 field; returns the announced size 2*(untruncated units + 1). */
function stringToHost(reply: Buffer, daemon: Buffer, from: Field, to: Field, maxUnits: number): number {
  const r = freebsdUtf8ToUtf16(cstrAt(daemon, from.offset), maxUnits);
  putUnits(reply, to.offset, r.units);
  return 2 * (r.count + 1);
}

/**
 * Convert the daemon's reply into the host payload `reply` for the host's
 * op (hv_kvp_convert_usermsg_to_hostmsg). FreeBSD converts whatever the
 * status; the status itself is the daemon's bytes 0..3. Returns false for
 * an op it cannot convert (write() then fails EINVAL).
 */
export function freebsdToHost(reply: Buffer, daemon: Buffer, hostOp: number): boolean {
  switch (hostOp) {
    case KVP_OP_GET_IP_INFO:
      for (const n of IP_STRINGS) stringToHost(reply, daemon, DAEMON_IP[n], HOST_IP[n], IP_LIMITS[n]);
      reply.writeUInt8(daemon.readUInt8(DAEMON_IP.dhcp_enabled.offset), HOST_IP.dhcp_enabled.offset);
      reply.writeUInt8(daemon.readUInt8(DAEMON_IP.addr_family.offset), HOST_IP.addr_family.offset);
      return true;
    case KVP_OP_SET_IP_INFO:
    case KVP_OP_SET:
    case KVP_OP_DELETE:
      return true;
    case KVP_OP_ENUMERATE:
      reply.writeUInt32LE(stringToHost(reply, daemon, ENUM.key, ENUM.key, KVP_HOST_KEY_MAX_UNITS), ENUM.keySize.offset);
      reply.writeUInt32LE(stringToHost(reply, daemon, ENUM.value, ENUM.value, KVP_HOST_VALUE_MAX_UNITS), ENUM.valueSize.offset);
      reply.writeUInt32LE(REG_SZ, ENUM.valueType.offset);
      return true;
    case KVP_OP_GET:
      // Only the value: the host keeps the key it sent.
      reply.writeUInt32LE(stringToHost(reply, daemon, GET.value, GET.value, KVP_HOST_VALUE_MAX_UNITS), GET.valueSize.offset);
      reply.writeUInt32LE(REG_SZ, GET.valueType.offset);
      return true;
    default:
      return false;
  }
}
