/**
 * Linux hv_kvp.c conversions (spec/wire.md section 7, spec/devices.md 3.1)
 * between the host's KVP payload (UTF-16LE) and the daemon's 7432-byte
 * hv_kvp_msg (UTF-8). The op structure is shared (kvp-convert.ts); the
 * string rules, the reply status and the GET quirk are Linux's.
 */
import { HV_E_FAIL, HV_S_CONT, KVP_OP_DELETE, KVP_OP_ENUMERATE, KVP_OP_GET, KVP_OP_GET_IP_INFO, KVP_OP_REGISTER, KVP_OP_SET, KVP_OP_SET_IP_INFO } from '../common/wire/constants.js';
import { kvpMsgSize } from '../common/wire/structs.js';
import { enumToHost, getToHost, hostToDaemon, ipInfoToHost, type StringToHost, type ToDaemonRules } from './kvp-convert.js';
import { cstrAt, linuxUtf16ToUtf8, linuxUtf8ToUtf16, putUnits, unitsAt } from './kernel-text.js';
import { ENUM, GET } from './kvp-fields.js';

/** Linux quirks the spec does not describe; see SimQuirks in host-api.ts. */
export interface LinuxKvpQuirks {
  /** GET: read the daemon's value at the ENUMERATE value offset (532), as kvp_respond_to_host() does. */
  getValueAtEnumOffset: boolean;
}

const TO_DAEMON: ToDaemonRules = {
  msgSize: kvpMsgSize('linux'),
  /** utf16s_to_utf8s with the host byte count as unit count; size = bytes + 1. */
  sizedString(host, msg, size, field, room) {
    const n = host.readUInt32LE(size.offset);
    const b = linuxUtf16ToUtf8(unitsAt(host, field.offset, n), n, room);
    b.copy(msg, field.offset);
    return b.length + 1;
  },
  ipString: (units, limit) => linuxUtf16ToUtf8(units, limit, limit),
  // Unsigned on current kernels.
  u32Signed: false,
};

/** The daemon's request for a host KVP payload (kvp_send_key). */
export const linuxToDaemon = (host: Buffer): Buffer => hostToDaemon(host, TO_DAEMON);

/**
 * The status a daemon reply carries: REGISTER1 daemons put it in bytes 0..3;
 * legacy (REGISTER) daemons signal "no more" with an empty key, read at the
 * ENUMERATE key offset whatever the op.
 */
export function linuxDaemonStatus(daemon: Buffer, registeredWith: number): number {
  if (registeredWith === KVP_OP_REGISTER) return daemon.length > ENUM.key.offset && daemon.readUInt8(ENUM.key.offset) !== 0 ? 0 : HV_S_CONT;
  return daemon.length >= 4 ? daemon.readUInt32LE(0) : 0;
}

/** utf8s_to_utf16s: the announced size counts the units written; invalid UTF-8 is refused. */
const stringToHost: StringToHost = (reply, daemon, from, to, maxUnits) => {
  const u = linuxUtf8ToUtf16(cstrAt(daemon, from.offset), maxUnits);
  if (!u) return undefined;
  putUnits(reply, to.offset, u);
  return 2 * (u.length + 1);
};

/**
 * Fill the host payload `reply` from a successful daemon reply
 * (kvp_respond_to_host with error 0); returns the status to send:
 * HV_E_FAIL when a string does not convert, else 0. Any op other than
 * GET, SET, DELETE and the IP ops is treated as ENUMERATE, as the kernel does.
 */
export function linuxToHost(reply: Buffer, daemon: Buffer, hostOp: number, quirks: LinuxKvpQuirks): number {
  switch (hostOp) {
    case KVP_OP_GET_IP_INFO:
      // addr_family stays what the host sent.
      return ipInfoToHost(reply, daemon, stringToHost) ? 0 : HV_E_FAIL;
    case KVP_OP_SET_IP_INFO:
    case KVP_OP_SET:
    case KVP_OP_DELETE:
      return 0;
    case KVP_OP_GET:
      return getToHost(reply, daemon, quirks.getValueAtEnumOffset ? ENUM.value : GET.value, stringToHost) ? 0 : HV_E_FAIL;
    case KVP_OP_ENUMERATE:
    default:
      return enumToHost(reply, daemon, stringToHost) ? 0 : HV_E_FAIL;
  }
}
