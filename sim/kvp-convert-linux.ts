/**
 * Linux hv_kvp.c conversions (spec/wire.md section 7, spec/devices.md 3.1)
 * between the host's KVP payload (UTF-16LE) and the daemon's 7432-byte
 * hv_kvp_msg (UTF-8).
 */
import {
  HV_E_FAIL,
  HV_S_CONT,
  KVP_HOST_KEY_MAX_UNITS,
  KVP_HOST_VALUE_MAX_UNITS,
  KVP_MAX_KEY_SIZE,
  KVP_MAX_VALUE_SIZE,
  KVP_OP_DELETE,
  KVP_OP_ENUMERATE,
  KVP_OP_GET,
  KVP_OP_GET_IP_INFO,
  KVP_OP_REGISTER,
  KVP_OP_SET,
  KVP_OP_SET_IP_INFO,
  REG_SZ,
  REG_U32,
  REG_U64,
} from '../common/wire/constants.js';
import { kvpMsgSize } from '../common/wire/structs.js';
import { cstrAt, linuxUtf16ToUtf8, linuxUtf8ToUtf16, putUnits, unitsAt } from './kernel-text.js';
import { DAEMON_IP, DELETE, ENUM, ENUM_INDEX, GET, HOST_IP, IP_LIMITS, IP_STRINGS, OP, POOL, SET, type Field, type IpString } from './kvp-fields.js';

/** Linux quirks the spec does not describe; see SimQuirks in host-api.ts. */
export interface LinuxKvpQuirks {
  /** GET: read the daemon's value at the ENUMERATE value offset (532), as kvp_respond_to_host() does. */
  getValueAtEnumOffset: boolean;
}

/** A host key into the daemon message: utf16s_to_utf8s with the host byte count as unit count; size = bytes + 1. */
function keyToDaemon(host: Buffer, msg: Buffer, f: { keySize: Field; key: Field }): void {
  const n = host.readUInt32LE(f.keySize.offset);
  const b = linuxUtf16ToUtf8(unitsAt(host, f.key.offset, n), n, KVP_MAX_KEY_SIZE - 1);
  b.copy(msg, f.key.offset);
  msg.writeUInt32LE(b.length + 1, f.keySize.offset);
}

function ipToDaemon(host: Buffer, msg: Buffer, names: readonly IpString[]): void {
  for (const n of names) {
    const src = unitsAt(host, HOST_IP[n].offset, IP_LIMITS[n]);
    linuxUtf16ToUtf8(src, IP_LIMITS[n], IP_LIMITS[n]).copy(msg, DAEMON_IP[n].offset);
  }
}

/** The daemon's request for a host KVP payload (kvp_send_key). */
export function linuxToDaemon(host: Buffer): Buffer {
  const msg = Buffer.alloc(kvpMsgSize('linux'));
  const op = host.readUInt8(OP.offset);
  msg.writeUInt8(op, OP.offset);
  msg.writeUInt8(host.readUInt8(POOL.offset), POOL.offset);
  switch (op) {
    case KVP_OP_SET_IP_INFO:
    case KVP_OP_GET_IP_INFO:
      // process_ib_ipinfo: SET_IP_INFO converts everything, then both fall into adapter_id + addr_family.
      if (op === KVP_OP_SET_IP_INFO) {
        ipToDaemon(host, msg, ['ip_addr', 'sub_net', 'gate_way', 'dns_addr']);
        msg.writeUInt8(host.readUInt8(HOST_IP.dhcp_enabled.offset), DAEMON_IP.dhcp_enabled.offset);
      }
      ipToDaemon(host, msg, ['adapter_id']);
      msg.writeUInt8(host.readUInt8(HOST_IP.addr_family.offset), DAEMON_IP.addr_family.offset);
      break;
    case KVP_OP_SET: {
      // value_type is not copied; scalars arrive as decimal text (U32 unsigned on current kernels).
      const type = host.readUInt32LE(SET.valueType.offset);
      let size = 0;
      if (type === REG_SZ) {
        const n = host.readUInt32LE(SET.valueSize.offset);
        const b = linuxUtf16ToUtf8(unitsAt(host, SET.value.offset, n), n, KVP_MAX_VALUE_SIZE - 1);
        b.copy(msg, SET.value.offset);
        size = b.length + 1;
      } else if (type === REG_U32 || type === REG_U64) {
        const text = type === REG_U32 ? String(host.readUInt32LE(SET.value.offset)) : String(host.readBigUInt64LE(SET.value.offset));
        Buffer.from(text, 'latin1').copy(msg, SET.value.offset);
        size = text.length + 1;
      }
      msg.writeUInt32LE(size, SET.valueSize.offset);
      keyToDaemon(host, msg, SET); // the kernel falls through into the GET case for the key
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

/**
 * The status a daemon reply carries: REGISTER1 daemons put it in bytes 0..3;
 * legacy (REGISTER) daemons signal "no more" with an empty key, read at the
 * ENUMERATE key offset whatever the op.
 */
export function linuxDaemonStatus(daemon: Buffer, registeredWith: number): number {
  if (registeredWith === KVP_OP_REGISTER) return daemon.length > ENUM.key.offset && daemon.readUInt8(ENUM.key.offset) !== 0 ? 0 : HV_S_CONT;
  return daemon.length >= 4 ? daemon.readUInt32LE(0) : 0;
}

/** One daemon string into a host field: units written, or undefined when it is not valid UTF-8. */
function stringToHost(reply: Buffer, daemon: Buffer, from: Field, to: Field, maxUnits: number): number | undefined {
  const u = linuxUtf8ToUtf16(cstrAt(daemon, from.offset), maxUnits);
  if (u) putUnits(reply, to.offset, u);
  return u?.length;
}

/**
 * Fill the host payload `reply` from a successful daemon reply
 * (kvp_respond_to_host with error 0); returns the status to send:
 * HV_E_FAIL when a string does not convert, else 0. Any op other than
 * GET, SET, DELETE and the IP ops is treated as ENUMERATE, as the kernel does.
 */
export function linuxToHost(reply: Buffer, daemon: Buffer, hostOp: number, quirks: LinuxKvpQuirks): number {
  switch (hostOp) {
    case KVP_OP_GET_IP_INFO: {
      for (const n of IP_STRINGS) {
        if (stringToHost(reply, daemon, DAEMON_IP[n], HOST_IP[n], IP_LIMITS[n]) === undefined) return HV_E_FAIL;
      }
      // dhcp_enabled is copied; addr_family stays what the host sent.
      reply.writeUInt8(daemon.readUInt8(DAEMON_IP.dhcp_enabled.offset), HOST_IP.dhcp_enabled.offset);
      return 0;
    }
    case KVP_OP_SET_IP_INFO:
    case KVP_OP_SET:
    case KVP_OP_DELETE:
      return 0;
    case KVP_OP_GET: {
      const from = quirks.getValueAtEnumOffset ? ENUM.value : GET.value;
      const v = stringToHost(reply, daemon, from, GET.value, KVP_HOST_VALUE_MAX_UNITS);
      if (v === undefined) return HV_E_FAIL;
      reply.writeUInt32LE(2 * (v + 1), GET.valueSize.offset);
      reply.writeUInt32LE(REG_SZ, GET.valueType.offset);
      return 0;
    }
    case KVP_OP_ENUMERATE:
    default: {
      const k = stringToHost(reply, daemon, ENUM.key, ENUM.key, KVP_HOST_KEY_MAX_UNITS);
      const v = stringToHost(reply, daemon, ENUM.value, ENUM.value, KVP_HOST_VALUE_MAX_UNITS);
      if (k === undefined || v === undefined) return HV_E_FAIL;
      reply.writeUInt32LE(2 * (k + 1), ENUM.keySize.offset);
      reply.writeUInt32LE(2 * (v + 1), ENUM.valueSize.offset);
      reply.writeUInt32LE(REG_SZ, ENUM.valueType.offset);
      return 0;
    }
  }
}
