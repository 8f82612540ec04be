/**
 * VSS messages: Linux hv_vss_msg (12 bytes, read/write) and FreeBSD
 * hv_vss_opt_msg (64 bytes, carried by ioctl). Decoding never throws.
 */
import { VSS_OP_REGISTER1 } from './constants.js';
import { WireError } from './errors.js';
import { LINUX_VSS_HANDSHAKE_REPLY_SIZE, vssMsgSize } from './structs.js';

/** Linux VSS message as read or written. */
export interface LinuxVssMessage {
  operation: number;
  reserved: Buffer;
  /** Bytes 0..3 as a signed int32: the status in a daemon reply. */
  error: number;
  flags: number;
}

/** FreeBSD VSS message as exchanged by IOCHVVSSREAD/IOCHVVSSWRITE. */
export interface FreebsdVssMessage {
  opt: number;
  status: number;
  msgid: bigint;
  reserved: Buffer;
}

export function decodeLinuxVss(buf: Buffer): LinuxVssMessage | WireError {
  const size = vssMsgSize('linux');
  if (buf.length !== size) return new WireError('ESIZE', `hv_vss_msg: ${buf.length} bytes, expected ${size}`);
  return {
    operation: buf.readUInt8(0),
    reserved: buf.subarray(1, 8),
    error: buf.readInt32LE(0),
    flags: buf.readUInt32LE(8),
  };
}

export function encodeLinuxVss(m: { operation?: number; error?: number; flags?: number; reserved?: Buffer }): Buffer {
  const buf = Buffer.alloc(vssMsgSize('linux'));
  if (m.reserved) m.reserved.copy(buf, 1, 0, 7);
  if (m.operation !== undefined) buf.writeUInt8(m.operation, 0);
  if (m.error !== undefined) buf.writeUInt32LE(m.error >>> 0, 0);
  buf.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  return buf;
}

export function decodeFreebsdVss(buf: Buffer): FreebsdVssMessage | WireError {
  const size = vssMsgSize('freebsd');
  if (buf.length !== size) return new WireError('ESIZE', `hv_vss_opt_msg: ${buf.length} bytes, expected ${size}`);
  return {
    opt: buf.readUInt32LE(0),
    status: buf.readUInt32LE(4),
    msgid: buf.readBigUInt64LE(8),
    reserved: buf.subarray(16, 64),
  };
}

export function encodeFreebsdVss(m: { opt: number; status?: number; msgid?: bigint; reserved?: Buffer }): Buffer {
  const buf = Buffer.alloc(vssMsgSize('freebsd'));
  buf.writeUInt32LE(m.opt >>> 0, 0);
  buf.writeUInt32LE((m.status ?? 0) >>> 0, 4);
  buf.writeBigUInt64LE(m.msgid ?? 0n, 8);
  if (m.reserved) m.reserved.copy(buf, 16, 0, 48);
  return buf;
}

/** The Linux registration request: 12 bytes, operation 129. */
export const linuxVssRegister = (): Buffer => encodeLinuxVss({ operation: VSS_OP_REGISTER1 });

/** Check the Linux kernel's 4-byte handshake reply; returns the version word or an error. */
export function decodeLinuxVssHandshake(buf: Buffer): number | WireError {
  if (buf.length !== LINUX_VSS_HANDSHAKE_REPLY_SIZE) {
    return new WireError('ESIZE', `VSS handshake reply: ${buf.length} bytes, expected ${LINUX_VSS_HANDSHAKE_REPLY_SIZE}`);
  }
  const v = buf.readUInt32LE(0);
  if (v !== VSS_OP_REGISTER1) return new WireError('EVALUE', `VSS handshake reply: version ${v}, expected ${VSS_OP_REGISTER1}`);
  return v;
}
