/**
 * hv_kvp_msg encode/decode for both flavors. Decoding never throws: a
 * buffer of the wrong size, or a string field that is not terminated or
 * not UTF-8, comes back as a WireError naming the field.
 */
import {
  KVP_OP_DELETE,
  KVP_OP_ENUMERATE,
  KVP_OP_GET,
  KVP_OP_GET_IP_INFO,
  KVP_OP_REGISTER1,
  KVP_OP_SET,
  KVP_OP_SET_IP_INFO,
  type Flavor,
} from './constants.js';
import { WireError } from './errors.js';
import { readAggregate, writeAggregate, type Decoded, type Layout } from './layout.js';
import { KVP_BODY_OFFSET, LAYOUTS, kvpMsgSize } from './structs.js';

/** The body member that an operation uses; op 4 is GET_IP_INFO or REGISTER depending on who reads it. */
export type KvpVariant = 'kvp_get' | 'kvp_set' | 'kvp_delete' | 'kvp_enum_data' | 'kvp_ip_val' | 'kvp_register';

export const KVP_VARIANTS: readonly KvpVariant[] = ['kvp_get', 'kvp_set', 'kvp_delete', 'kvp_enum_data', 'kvp_ip_val', 'kvp_register'];

/** Body member for a request op once registration is done (REGISTER1 maps to kvp_register). */
export function variantForOp(op: number): KvpVariant | undefined {
  switch (op) {
    case KVP_OP_GET:
      return 'kvp_get';
    case KVP_OP_SET:
      return 'kvp_set';
    case KVP_OP_DELETE:
      return 'kvp_delete';
    case KVP_OP_ENUMERATE:
      return 'kvp_enum_data';
    case KVP_OP_GET_IP_INFO:
    case KVP_OP_SET_IP_INFO:
      return 'kvp_ip_val';
    case KVP_OP_REGISTER1:
      return 'kvp_register';
    default:
      return undefined;
  }
}

/** Layout of one body member of a flavor. */
export function variantLayout(flavor: Flavor, variant: KvpVariant): Layout {
  const m = LAYOUTS[flavor].kvpBody.members.find((x) => x.name === variant);
  if (!m || m.type !== 'nested') throw new Error(`no KVP body member ${variant}`);
  return m.layout;
}

/** A KVP message as read from the device: header fields plus a view of the body. */
export interface KvpMessage {
  flavor: Flavor;
  operation: number;
  pool: number;
  pad: number;
  /** Bytes 0..3 as a u32: the status word in a reply. */
  error: number;
  /** The whole message (views below point into it). */
  raw: Buffer;
}

/** Decode the header of one whole message; the size must be exactly the flavor's. */
export function decodeKvp(buf: Buffer, flavor: Flavor): KvpMessage | WireError {
  const size = kvpMsgSize(flavor);
  if (buf.length !== size) {
    return new WireError('ESIZE', `hv_kvp_msg (${flavor}): ${buf.length} bytes, expected ${size}`);
  }
  return {
    flavor,
    operation: buf.readUInt8(0),
    pool: buf.readUInt8(1),
    pad: buf.readUInt16LE(2),
    error: buf.readUInt32LE(0),
    raw: buf,
  };
}

/** The fields of one body member, raw (numbers and byte views). */
export function readVariant(msg: KvpMessage, variant: KvpVariant): Decoded {
  return readAggregate(msg.raw, variantLayout(msg.flavor, variant), KVP_BODY_OFFSET);
}

/** Key/value exchange as the daemon sees it (GET, SET, ENUMERATE). */
export interface KvpExchange {
  index?: number;
  valueType: number;
  keySize: number;
  valueSize: number;
  key: Buffer;
  value: Buffer;
}

/** GET/SET body, or ENUMERATE body (with index). */
export function readExchange(msg: KvpMessage, variant: 'kvp_get' | 'kvp_set' | 'kvp_enum_data'): KvpExchange {
  const d = readVariant(msg, variant);
  const data = d.data as Decoded;
  const ex: KvpExchange = {
    valueType: data.value_type as number,
    keySize: data.key_size as number,
    valueSize: data.value_size as number,
    key: data.key as Buffer,
    value: data.value as Buffer,
  };
  if (variant === 'kvp_enum_data') ex.index = d.index as number;
  return ex;
}

/** The fields of hv_kvp_ipaddr_value with its strings as text (the same on the daemon's and the host's side). */
export interface IpAddressFields {
  adapterId: string;
  addrFamily: number;
  dhcpEnabled: number;
  ipAddr: string;
  subNet: string;
  gateWay: string;
  dnsAddr: string;
}

/**
 * Where a GET reply's value must go for the kernel to find it. FreeBSD
 * reads kvp_get.data.value (offset 528). Linux's kvp_respond_to_host()
 * reads a GET reply's value through body.kvp_enum_data.data.value (offset
 * 532; checked in torvalds/linux drivers/hv/hv_kvp.c), which spec/kvp.md
 * does not say: a value written at 528 reaches the host without its first
 * four bytes. The C daemon never noticed because it sends GET values empty.
 */
export function getValueTarget(flavor: Flavor): { variant: 'kvp_get' | 'kvp_enum_data'; offset: number } {
  return flavor === 'linux' ? { variant: 'kvp_enum_data', offset: 532 } : { variant: 'kvp_get', offset: 528 };
}


/** Build a whole message: header, then the named body member's fields; everything else zero. */
export function encodeKvp(
  flavor: Flavor,
  header: { operation: number; pool?: number; pad?: number } | { error: number },
  variant?: KvpVariant,
  fields?: Decoded,
): Buffer {
  const buf = Buffer.alloc(kvpMsgSize(flavor));
  if ('error' in header) buf.writeUInt32LE(header.error >>> 0, 0);
  else {
    buf.writeUInt8(header.operation, 0);
    buf.writeUInt8(header.pool ?? 0, 1);
    buf.writeUInt16LE(header.pad ?? 0, 2);
  }
  if (variant && fields) writeAggregate(buf, variantLayout(flavor, variant), fields, KVP_BODY_OFFSET);
  return buf;
}

/** A reply: the request bytes with bytes 0..3 replaced by the status (what both C daemons send back). */
export function replyFrom(request: Buffer, status: number): Buffer {
  const out = Buffer.from(request);
  out.writeUInt32LE(status >>> 0, 0);
  return out;
}
