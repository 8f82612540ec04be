/**
 * The KVP conversions both kernels structure the same way (spec/wire.md
 * section 7): which fields each op carries from the host's payload
 * (UTF-16LE) to the daemon's hv_kvp_msg (UTF-8), and how GET, ENUMERATE and
 * GET_IP_INFO replies fill the host payload. What differs per kernel (the
 * string arithmetic, U32 rendering, the FreeBSD adapter mapping, the op
 * dispatch of replies) comes from kvp-convert-linux.ts and
 * kvp-convert-freebsd.ts.
 */
import { KVP_HOST_KEY_MAX_UNITS, KVP_HOST_VALUE_MAX_UNITS, KVP_MAX_KEY_SIZE, KVP_MAX_VALUE_SIZE, KVP_OP, REG_SZ, REG_U32, REG_U64 } from '../common/wire/constants.js';
import { unitsAt } from './kernel-text.js';
import { DAEMON_IP, DELETE, ENUM, ENUM_INDEX, GET, HOST_IP, IP_LIMITS, IP_STRINGS, OP, POOL, SET, type Field } from './kvp-fields.js';

/** How one kernel turns host strings into daemon strings. */
export interface ToDaemonRules {
  /** hv_kvp_msg size of the flavor. */
  msgSize: number;
  /**
   * A host string with a size field (key, SET value) into the daemon field,
   * at most `room` bytes before the NUL; returns the size the daemon is told.
   */
  sizedString(host: Buffer, msg: Buffer, size: Field, field: Field, room: number): number;
  /** An IP-info string of `limit` host units into at most `limit` bytes. */
  ipString(units: number[], limit: number): Buffer;
  /** REG_U32 SET values as decimal text: FreeBSD's sprintf "%d" prints them signed, Linux unsigned. */
  u32Signed: boolean;
  /** SET_IP_INFO, once the strings are in: FreeBSD swaps the adapter GUID for an hn(4) name. */
  mapAdapterId?(msg: Buffer): void;
}

const copyByte = (from: Buffer, to: Buffer, src: Field, dst: Field): void => void to.writeUInt8(from.readUInt8(src.offset), dst.offset);

/** The daemon's request for a host KVP payload (Linux kvp_send_key, FreeBSD hv_kvp_convert_hostmsg_to_usermsg). */
export function hostToDaemon(host: Buffer, rules: ToDaemonRules): Buffer {
  const msg = Buffer.alloc(rules.msgSize);
  const op = host.readUInt8(OP.offset);
  msg.writeUInt8(op, OP.offset);
  copyByte(host, msg, POOL, POOL);
  const key = (f: { keySize: Field; key: Field }): void => {
    msg.writeUInt32LE(rules.sizedString(host, msg, f.keySize, f.key, KVP_MAX_KEY_SIZE - 1), f.keySize.offset);
  };
  switch (op) {
    case KVP_OP.SET_IP_INFO:
    case KVP_OP.GET_IP_INFO:
      ipToDaemon(host, msg, op, rules);
      break;
    case KVP_OP.SET:
      msg.writeUInt32LE(setValue(host, msg, rules), SET.valueSize.offset);
      key(SET); // Linux falls through into its GET case for the key
      break;
    case KVP_OP.GET:
      key(GET);
      break;
    case KVP_OP.DELETE:
      key(DELETE);
      break;
    case KVP_OP.ENUMERATE:
      msg.writeUInt32LE(host.readUInt32LE(ENUM_INDEX.offset), ENUM_INDEX.offset);
      break;
  }
  return msg;
}

/** A SET value into the daemon message; returns value_size. value_type is read but never copied: the daemon sees 0. */
function setValue(host: Buffer, msg: Buffer, rules: ToDaemonRules): number {
  const type = host.readUInt32LE(SET.valueType.offset);
  if (type === REG_SZ) return rules.sizedString(host, msg, SET.valueSize, SET.value, KVP_MAX_VALUE_SIZE - 1);
  if (type !== REG_U32 && type !== REG_U64) return 0;
  const at = SET.value.offset;
  // Scalars arrive as decimal text ("%llu" for U64 in both kernels).
  const text = type === REG_U64 ? String(host.readBigUInt64LE(at)) : String(rules.u32Signed ? host.readInt32LE(at) : host.readUInt32LE(at));
  Buffer.from(text, 'latin1').copy(msg, at);
  return text.length + 1;
}

/** GET_IP_INFO carries adapter_id and addr_family; SET_IP_INFO also the other strings and dhcp_enabled. */
function ipToDaemon(host: Buffer, msg: Buffer, op: number, rules: ToDaemonRules): void {
  const set = op === KVP_OP.SET_IP_INFO;
  for (const n of set ? IP_STRINGS : (['adapter_id'] as const)) {
    rules.ipString(unitsAt(host, HOST_IP[n].offset, IP_LIMITS[n]), IP_LIMITS[n]).copy(msg, DAEMON_IP[n].offset);
  }
  copyByte(host, msg, HOST_IP.addr_family, DAEMON_IP.addr_family);
  if (!set) return;
  copyByte(host, msg, HOST_IP.dhcp_enabled, DAEMON_IP.dhcp_enabled);
  rules.mapAdapterId?.(msg);
}

/**
 * How one kernel puts a daemon string (UTF-8) into a host field (UTF-16LE):
 * the size it announces for it, or undefined when it refuses the string.
 */
export type StringToHost = (reply: Buffer, daemon: Buffer, from: Field, to: Field, maxUnits: number) => number | undefined;

/** GET_IP_INFO: every address string, then dhcp_enabled; false at the first string refused (those before stay written). */
export function ipInfoToHost(reply: Buffer, daemon: Buffer, toHost: StringToHost): boolean {
  for (const n of IP_STRINGS) {
    if (toHost(reply, daemon, DAEMON_IP[n], HOST_IP[n], IP_LIMITS[n]) === undefined) return false;
  }
  copyByte(daemon, reply, DAEMON_IP.dhcp_enabled, HOST_IP.dhcp_enabled);
  return true;
}

/** GET: the value read at `from` (the host keeps the key it sent), its size and REG_SZ; false when it is refused. */
export function getToHost(reply: Buffer, daemon: Buffer, from: Field, toHost: StringToHost): boolean {
  const v = toHost(reply, daemon, from, GET.value, KVP_HOST_VALUE_MAX_UNITS);
  if (v === undefined) return false;
  reply.writeUInt32LE(v, GET.valueSize.offset);
  reply.writeUInt32LE(REG_SZ, GET.valueType.offset);
  return true;
}

/** ENUMERATE: key and value, their sizes and REG_SZ; when either is refused only the strings that converted are written. */
export function enumToHost(reply: Buffer, daemon: Buffer, toHost: StringToHost): boolean {
  const k = toHost(reply, daemon, ENUM.key, ENUM.key, KVP_HOST_KEY_MAX_UNITS);
  const v = toHost(reply, daemon, ENUM.value, ENUM.value, KVP_HOST_VALUE_MAX_UNITS);
  if (k === undefined || v === undefined) return false;
  reply.writeUInt32LE(k, ENUM.keySize.offset);
  reply.writeUInt32LE(v, ENUM.valueSize.offset);
  reply.writeUInt32LE(REG_SZ, ENUM.valueType.offset);
  return true;
}
