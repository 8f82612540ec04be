/**
 * Host-side framing (spec/wire.md sections 6, 7 and 10): the VMBus IC
 * packets the Hyper-V host sends and the kernel answers, the NEGOTIATE
 * payload, and the host forms of the KVP and VSS payloads. Host strings
 * are UTF-16LE; their sizes count UTF-16 bytes including the 2-byte NUL.
 * Only the simulator and host-side tools use this; a daemon never sees it.
 * Decoders never throw: short buffers come back as a WireError.
 */
import type { IpAddressFields } from './kvp.js';
import {
  ICMSGHDRFLAG_REQUEST,
  ICMSGHDRFLAG_TRANSACTION,
  ICMSG_HDR,
  IC_FRAMEWORK_VERSION,
  KVP_OP_DELETE,
  KVP_OP_ENUMERATE,
  KVP_OP_GET,
  KVP_MAX_KEY_SIZE,
  KVP_MAX_VALUE_SIZE,
  KVP_OP_SET,
  REG_SZ,
  REG_U32,
  REG_U64,
  type IcVersion,
} from './constants.js';
import { WireError } from './errors.js';
import { locate, readAggregate, writeAggregate, type Decoded, type Layout } from './layout.js';
import { HOST_KVP_IP_MSG, HOST_VSS_MSG, IC_HEADER, IC_NEGOTIATE, KVP_BODY_OFFSET, LAYOUTS } from './structs.js';

/** The host form of hv_kvp_msg for ops 0-3: every member packed (7430 bytes), strings UTF-16LE. */
export const HOST_KVP_MSG: Layout = LAYOUTS.freebsd.kvpMsg;

// ---------------------------------------------------------------- UTF-16

/** UTF-16LE code units of text, no terminator (surrogate pairs stay pairs). */
export const encodeUtf16 = (text: string): Buffer => Buffer.from(text, 'utf16le');

/** Bytes a host size field announces for text: 2 per UTF-16 unit, plus the 2-byte NUL ("abc" -> 8). */
export const utf16Size = (text: string): number => 2 * (text.length + 1);

/** Text of a UTF-16LE field: the code units before the first NUL unit, at most maxUnits (lossless: a lone surrogate stays one). */
export function decodeUtf16(field: Buffer, maxUnits = field.length >> 1): string {
  const n = Math.min(maxUnits, field.length >> 1);
  let end = 0;
  while (end < n && field.readUInt16LE(2 * end) !== 0) end++;
  return field.subarray(0, 2 * end).toString('utf16le');
}

/** UTF-16LE code units to UTF-8: pairs become one 4-byte sequence, lone surrogates U+FFFD. */
export const utf16ToUtf8 = (units: Buffer): Buffer => Buffer.from(units.subarray(0, units.length & ~1).toString('utf16le'), 'utf8');

/** UTF-8 to UTF-16LE code units: supplementary characters become surrogate pairs, invalid bytes U+FFFD. */
export const utf8ToUtf16 = (bytes: Buffer): Buffer => Buffer.from(bytes.toString('utf8'), 'utf16le');

/** A string for a UTF-16 field of `size` bytes: the units, or an error when units plus NUL do not fit. */
function utf16Field(text: string, size: number, name: string): Buffer | WireError {
  if (text.includes('\0')) return new WireError('EVALUE', `${name}: contains a NUL character`, name);
  const b = encodeUtf16(text);
  if (b.length + 2 > size) return new WireError('ETOOLONG', `${name}: ${b.length >> 1} UTF-16 units + NUL do not fit in ${size} bytes`, name);
  return b;
}

// ---------------------------------------------------------------- IC packet

/** The pipe header and IC header of one packet. */
export interface IcHeader {
  pipeFlags: number;
  pipeMsgsize: number;
  fwVersion: IcVersion;
  msgtype: number;
  msgVersion: IcVersion;
  msgsize: number;
  status: number;
  transactionId: number;
  flags: number;
}

export interface IcPacket {
  header: IcHeader;
  /** Everything from offset 28 (ICMSG_HDR) on, a view into the packet. */
  payload: Buffer;
}

/**
 * Build one packet: headers then payload. Defaults: framework 3.0, flags
 * TRANSACTION|REQUEST, msgsize = payload length, pipe msgsize = bytes after
 * the pipe header (neither kernel reads the pipe header).
 */
export function encodeIcPacket(h: Partial<IcHeader> & { msgtype: number }, payload: Buffer): Buffer {
  const buf = Buffer.alloc(ICMSG_HDR + payload.length);
  const fw = h.fwVersion ?? IC_FRAMEWORK_VERSION;
  const mv = h.msgVersion ?? { major: 0, minor: 0 };
  writeAggregate(buf, IC_HEADER, {
    pipe_flags: h.pipeFlags ?? 0,
    pipe_msgsize: h.pipeMsgsize ?? buf.length - locate(IC_HEADER, 'fw_major').offset,
    fw_major: fw.major,
    fw_minor: fw.minor,
    msgtype: h.msgtype,
    msg_major: mv.major,
    msg_minor: mv.minor,
    msgsize: h.msgsize ?? payload.length,
    status: (h.status ?? 0) >>> 0,
    transaction_id: h.transactionId ?? 0,
    flags: h.flags ?? ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_REQUEST,
  });
  payload.copy(buf, ICMSG_HDR);
  return buf;
}

/** Split a packet into headers and payload; ESIZE when it is shorter than the 28 header bytes. */
export function decodeIcPacket(buf: Buffer): IcPacket | WireError {
  if (buf.length < ICMSG_HDR) return new WireError('ESIZE', `IC packet: ${buf.length} bytes, the headers alone take ${ICMSG_HDR}`);
  const d = readAggregate(buf, IC_HEADER);
  return {
    header: {
      pipeFlags: d.pipe_flags as number,
      pipeMsgsize: d.pipe_msgsize as number,
      fwVersion: { major: d.fw_major as number, minor: d.fw_minor as number },
      msgtype: d.msgtype as number,
      msgVersion: { major: d.msg_major as number, minor: d.msg_minor as number },
      msgsize: d.msgsize as number,
      status: d.status as number,
      transactionId: d.transaction_id as number,
      flags: d.flags as number,
    },
    payload: buf.subarray(ICMSG_HDR),
  };
}

// ---------------------------------------------------------------- NEGOTIATE

export interface NegotiatePayload {
  framework: IcVersion[];
  message: IcVersion[];
}

const VERSION_PAIR_SIZE = 4;

/** NEGOTIATE payload: counts, reserved, then the framework pairs and the message pairs. */
export function encodeNegotiate(p: NegotiatePayload): Buffer {
  const all = [...p.framework, ...p.message];
  const buf = Buffer.alloc(IC_NEGOTIATE.size + VERSION_PAIR_SIZE * all.length);
  writeAggregate(buf, IC_NEGOTIATE, { fw_version_cnt: p.framework.length, msg_version_cnt: p.message.length, reserved: 0 });
  all.forEach((v, i) => {
    buf.writeUInt16LE(v.major, IC_NEGOTIATE.size + VERSION_PAIR_SIZE * i);
    buf.writeUInt16LE(v.minor, IC_NEGOTIATE.size + VERSION_PAIR_SIZE * i + 2);
  });
  return buf;
}

/** Read a NEGOTIATE payload; ESIZE when the pairs its counts announce are not all there. */
export function decodeNegotiate(payload: Buffer): NegotiatePayload | WireError {
  if (payload.length < IC_NEGOTIATE.size) return new WireError('ESIZE', `negotiate: ${payload.length} bytes, header needs ${IC_NEGOTIATE.size}`);
  const d = readAggregate(payload, IC_NEGOTIATE);
  const fw = d.fw_version_cnt as number;
  const msg = d.msg_version_cnt as number;
  const need = IC_NEGOTIATE.size + VERSION_PAIR_SIZE * (fw + msg);
  if (payload.length < need) return new WireError('ESIZE', `negotiate: ${payload.length} bytes, ${fw}+${msg} version pairs need ${need}`);
  const pair = (i: number): IcVersion => ({
    major: payload.readUInt16LE(IC_NEGOTIATE.size + VERSION_PAIR_SIZE * i),
    minor: payload.readUInt16LE(IC_NEGOTIATE.size + VERSION_PAIR_SIZE * i + 2),
  });
  return {
    framework: Array.from({ length: fw }, (_, i) => pair(i)),
    message: Array.from({ length: msg }, (_, i) => pair(fw + i)),
  };
}

// ---------------------------------------------------------------- KVP exchange (ops 0-3)

/** A SET value as the host types it. */
export type HostKvpValue = { type: 'sz'; text: string } | { type: 'u32'; value: number } | { type: 'u64'; value: bigint };

/** A host KVP request for ops GET, SET, DELETE, ENUMERATE (any other op: header only). */
export interface HostKvpExchange {
  operation: number;
  pool: number;
  key?: string;
  value?: HostKvpValue;
  index?: number;
}

const bodyLayout = (variant: string): Layout => {
  const m = HOST_KVP_MSG.members.find((x) => x.name === 'body');
  const v = m && m.type === 'nested' ? m.layout.members.find((x) => x.name === variant) : undefined;
  if (!v || v.type !== 'nested') throw new Error(`host hv_kvp_msg: no body member ${variant}`);
  return v.layout;
};

/** Build the payload of a host KVP request (7430 bytes), strings in UTF-16LE with sizes 2*(units+1). */
export function encodeHostKvp(m: HostKvpExchange): Buffer | WireError {
  const buf = Buffer.alloc(HOST_KVP_MSG.size);
  buf.writeUInt8(m.operation, 0);
  buf.writeUInt8(m.pool, 1);
  const key = utf16Field(m.key ?? '', KVP_MAX_KEY_SIZE, 'key');
  if (key instanceof WireError) return key;
  const keySize = m.key === undefined ? 0 : key.length + 2;
  switch (m.operation) {
    case KVP_OP_GET:
    case KVP_OP_SET: {
      const data: Decoded = { key_size: keySize, key };
      const v = m.operation === KVP_OP_SET ? m.value : undefined;
      if (v?.type === 'sz') {
        const value = utf16Field(v.text, KVP_MAX_VALUE_SIZE, 'value');
        if (value instanceof WireError) return value;
        Object.assign(data, { value_type: REG_SZ, value_size: value.length + 2, value });
      } else if (v?.type === 'u32') {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(v.value >>> 0);
        Object.assign(data, { value_type: REG_U32, value_size: 4, value: b });
      } else if (v?.type === 'u64') {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(BigInt.asUintN(64, v.value));
        Object.assign(data, { value_type: REG_U64, value_size: 8, value: b });
      }
      writeAggregate(buf, bodyLayout(m.operation === KVP_OP_GET ? 'kvp_get' : 'kvp_set'), { data }, KVP_BODY_OFFSET);
      break;
    }
    case KVP_OP_DELETE:
      writeAggregate(buf, bodyLayout('kvp_delete'), { key_size: keySize, key }, KVP_BODY_OFFSET);
      break;
    case KVP_OP_ENUMERATE:
      writeAggregate(buf, bodyLayout('kvp_enum_data'), { index: (m.index ?? 0) >>> 0 }, KVP_BODY_OFFSET);
      break;
  }
  return buf;
}

/** A GET/SET/ENUMERATE body as the host reads it back. */
export interface HostKvpExchangeView {
  operation: number;
  pool: number;
  index?: number;
  valueType: number;
  keySize: number;
  valueSize: number;
  /** Decoded up to the first NUL, bounded by the field and by the announced size (size/2 - 1 units). */
  key: string;
  value: string;
}

/** Text units a host size field covers: its bytes halved, minus the NUL (0 for sizes below 2). */
const sizeUnits = (size: number): number => Math.max(0, Math.floor(size / 2) - 1);

/** Read the exchange data of a host KVP payload for `operation` (GET/SET use kvp_get, ENUMERATE kvp_enum_data). */
export function decodeHostKvp(payload: Buffer, operation: number): HostKvpExchangeView | WireError {
  const variant = operation === KVP_OP_ENUMERATE ? 'kvp_enum_data' : 'kvp_get';
  const layout = bodyLayout(variant);
  if (payload.length < KVP_BODY_OFFSET + layout.size) {
    return new WireError('ESIZE', `host hv_kvp_msg: ${payload.length} bytes, ${variant} needs ${KVP_BODY_OFFSET + layout.size}`);
  }
  const d = readAggregate(payload, layout, KVP_BODY_OFFSET);
  const data = d.data as Decoded;
  const keySize = data.key_size as number;
  const valueSize = data.value_size as number;
  const out: HostKvpExchangeView = {
    operation: payload.readUInt8(0),
    pool: payload.readUInt8(1),
    valueType: data.value_type as number,
    keySize,
    valueSize,
    key: decodeUtf16(data.key as Buffer, sizeUnits(keySize)),
    value: decodeUtf16(data.value as Buffer, sizeUnits(valueSize)),
  };
  if (variant === 'kvp_enum_data') out.index = d.index as number;
  return out;
}

// ---------------------------------------------------------------- IP info (ops 4, 5)

/** The address fields of hv_kvp_ip_msg (kvp_ip_val), strings as text. */
export type HostIpAddresses = IpAddressFields;

/** hv_kvp_ip_msg as the host fills or reads it (strings in UTF-16LE on the wire). */
export interface HostIpInfo extends HostIpAddresses {
  operation: number;
  pool: number;
}

const IP_FIELDS = [
  ['adapterId', 'adapter_id'],
  ['ipAddr', 'ip_addr'],
  ['subNet', 'sub_net'],
  ['gateWay', 'gate_way'],
  ['dnsAddr', 'dns_addr'],
] as const;

/** Build a host hv_kvp_ip_msg (7428 bytes); each string plus its NUL must fit its field. */
export function encodeHostIpMsg(m: HostIpInfo): Buffer | WireError {
  const buf = Buffer.alloc(HOST_KVP_IP_MSG.size);
  const ip: Decoded = { addr_family: m.addrFamily, dhcp_enabled: m.dhcpEnabled };
  for (const [js, c] of IP_FIELDS) {
    const f = utf16Field(m[js], locate(HOST_KVP_IP_MSG, `kvp_ip_val.${c}`).member.size, c);
    if (f instanceof WireError) return f;
    ip[c] = f;
  }
  writeAggregate(buf, HOST_KVP_IP_MSG, { operation: m.operation, pool: m.pool, kvp_ip_val: ip });
  return buf;
}

/** Read a host hv_kvp_ip_msg; strings end at the first NUL or the end of their field. */
export function decodeHostIpMsg(payload: Buffer): HostIpInfo | WireError {
  if (payload.length < HOST_KVP_IP_MSG.size) {
    return new WireError('ESIZE', `hv_kvp_ip_msg: ${payload.length} bytes, expected ${HOST_KVP_IP_MSG.size}`);
  }
  const d = readAggregate(payload, HOST_KVP_IP_MSG);
  const ip = d.kvp_ip_val as Decoded;
  const text = (c: string): string => decodeUtf16(ip[c] as Buffer);
  return {
    operation: d.operation as number,
    pool: d.pool as number,
    adapterId: text('adapter_id'),
    addrFamily: ip.addr_family as number,
    dhcpEnabled: ip.dhcp_enabled as number,
    ipAddr: text('ip_addr'),
    subNet: text('sub_net'),
    gateWay: text('gate_way'),
    dnsAddr: text('dns_addr'),
  };
}

// ---------------------------------------------------------------- VSS

export interface HostVssMsg {
  operation: number;
  flags: number;
}

/** Build the 12-byte host VSS payload. */
export function encodeHostVss(m: { operation: number; flags?: number }): Buffer {
  const buf = Buffer.alloc(HOST_VSS_MSG.size);
  writeAggregate(buf, HOST_VSS_MSG, { operation: m.operation, flags: (m.flags ?? 0) >>> 0 });
  return buf;
}

/** Read a host VSS payload; ESIZE when shorter than 12 bytes (longer is fine: kernels ignore the rest). */
export function decodeHostVss(payload: Buffer): HostVssMsg | WireError {
  if (payload.length < HOST_VSS_MSG.size) return new WireError('ESIZE', `host VSS message: ${payload.length} bytes, expected ${HOST_VSS_MSG.size}`);
  const d = readAggregate(payload, HOST_VSS_MSG);
  return { operation: d.operation as number, flags: d.flags as number };
}
