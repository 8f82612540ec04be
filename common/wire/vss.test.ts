/**
 * VSS encoders and decoders against hand-built bytes at the offsets of
 * spec/wire.md section 8, and the decoders against wrong sizes.
 */
import { describe, expect, it } from 'vitest';
import {
  HV_E_FAIL,
  HV_VSS_CHECK,
  HV_VSS_FREEZE,
  HV_VSS_THAW,
  VSS_FAIL,
  VSS_HBU_NO_AUTO_RECOVERY,
  VSS_OP_FREEZE,
  VSS_OP_HOT_BACKUP,
  VSS_OP_REGISTER1,
  VSS_SUCCESS,
} from './constants.js';
import { WireError } from './errors.js';
import { replyFrom } from './kvp.js';
import {
  decodeFreebsdVss,
  decodeLinuxVss,
  decodeLinuxVssHandshake,
  encodeFreebsdVss,
  encodeLinuxVss,
  linuxVssRegister,
  type FreebsdVssMessage,
  type LinuxVssMessage,
} from './vss.js';
import { vssMsgSize } from './structs.js';

function linux(buf: Buffer): LinuxVssMessage {
  const m = decodeLinuxVss(buf);
  if (m instanceof WireError) throw new Error(m.message);
  return m;
}

function freebsd(buf: Buffer): FreebsdVssMessage {
  const m = decodeFreebsdVss(buf);
  if (m instanceof WireError) throw new Error(m.message);
  return m;
}

describe('Linux hv_vss_msg', () => {
  it('registration: 12 bytes, operation 129, rest zero', () => {
    const want = Buffer.alloc(12);
    want[0] = 129;
    expect(linuxVssRegister().equals(want)).toBe(true);
    expect(encodeLinuxVss({ operation: VSS_OP_REGISTER1 }).equals(want)).toBe(true);
  });

  it('a request: operation at 0, flags at 8', () => {
    const want = Buffer.alloc(12);
    want[0] = VSS_OP_HOT_BACKUP;
    want.writeUInt32LE(VSS_HBU_NO_AUTO_RECOVERY, 8);
    const got = encodeLinuxVss({ operation: VSS_OP_HOT_BACKUP, flags: VSS_HBU_NO_AUTO_RECOVERY });
    expect(got.equals(want)).toBe(true);
    expect(linux(got)).toMatchObject({ operation: 2, error: 2, flags: 5 });
  });

  it('a reply: status over bytes 0..3, as the signed int32 Linux declares', () => {
    const want = Buffer.alloc(12);
    want.writeUInt32LE(0x80004005, 0);
    const got = encodeLinuxVss({ error: HV_E_FAIL });
    expect(got.equals(want)).toBe(true);
    expect([...got.subarray(0, 4)]).toEqual([0x05, 0x40, 0x00, 0x80]);
    expect(linux(got).error).toBe(-2147467259);
    // A negative error encodes to the same bytes.
    expect(encodeLinuxVss({ error: -2147467259 }).equals(want)).toBe(true);
  });

  it('replyFrom on a FREEZE request keeps flags and reserved[3..6]', () => {
    const req = Buffer.alloc(12);
    req[0] = VSS_OP_FREEZE;
    req[5] = 0x11;
    req.writeUInt32LE(0x42, 8);
    const rep = replyFrom(req, 0);
    const want = Buffer.from(req);
    want.writeUInt32LE(0, 0);
    expect(rep.equals(want)).toBe(true);
    expect(linux(rep)).toMatchObject({ operation: 0, error: 0, flags: 0x42 });
  });

  it('reserved bytes are kept in both directions', () => {
    const reserved = Buffer.from([1, 2, 3, 4, 5, 6, 7]);
    const want = Buffer.from([6, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0]);
    const got = encodeLinuxVss({ operation: 6, reserved });
    expect(got.equals(want)).toBe(true);
    expect([...linux(got).reserved]).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it.each([0, 4, 11, 13, 64])('%i bytes -> ESIZE', (n) => {
    const r = decodeLinuxVss(Buffer.alloc(n));
    expect(r).toBeInstanceOf(WireError);
    expect((r as WireError).code).toBe('ESIZE');
    expect((r as WireError).message).toContain('expected 12');
  });
});

describe('Linux VSS handshake reply', () => {
  it('accepts the bare u32 129', () => {
    expect(decodeLinuxVssHandshake(Buffer.from([0x81, 0, 0, 0]))).toBe(129);
  });

  it('rejects another version with EVALUE', () => {
    const r = decodeLinuxVssHandshake(Buffer.from([0x80, 0, 0, 0]));
    expect((r as WireError).code).toBe('EVALUE');
  });

  it.each([0, 3, 5, 12])('%i bytes -> ESIZE', (n) => {
    const r = decodeLinuxVssHandshake(Buffer.alloc(n, 0x81));
    expect((r as WireError).code).toBe('ESIZE');
  });
});

describe('FreeBSD hv_vss_opt_msg', () => {
  it('opt at 0, status at 4, msgid u64 at 8, reserved zero', () => {
    const msgid = 1_700_000_000_123_456_789n; // nanotime-sized: beyond 2^53
    const want = Buffer.alloc(64);
    want.writeUInt32LE(HV_VSS_FREEZE, 0);
    want.writeUInt32LE(VSS_FAIL, 4);
    want.writeBigUInt64LE(msgid, 8);
    const got = encodeFreebsdVss({ opt: HV_VSS_FREEZE, status: VSS_FAIL, msgid });
    expect(got.equals(want)).toBe(true);
    expect(freebsd(got)).toMatchObject({ opt: 2, status: 1, msgid });
  });

  it('defaults status and msgid to zero', () => {
    const want = Buffer.alloc(64);
    want[0] = HV_VSS_CHECK;
    expect(encodeFreebsdVss({ opt: HV_VSS_CHECK }).equals(want)).toBe(true);
  });

  it('keeps reserved bytes 16..63', () => {
    const reserved = Buffer.alloc(48, 0xab);
    const got = encodeFreebsdVss({ opt: HV_VSS_THAW, status: VSS_SUCCESS, msgid: 1n, reserved });
    expect(got.subarray(16).equals(reserved)).toBe(true);
    expect(freebsd(got).reserved.equals(reserved)).toBe(true);
  });

  it('reads a u64 msgid with the top bit set', () => {
    const b = Buffer.alloc(64);
    b.writeBigUInt64LE(0xffffffffffffffffn, 8);
    expect(freebsd(b).msgid).toBe(0xffffffffffffffffn);
  });

  it.each([0, 12, 63, 65, 128])('%i bytes -> ESIZE', (n) => {
    const r = decodeFreebsdVss(Buffer.alloc(n));
    expect((r as WireError).code).toBe('ESIZE');
    expect((r as WireError).message).toContain('expected 64');
  });

  it('vssMsgSize matches the spec sizes', () => {
    expect(vssMsgSize('freebsd')).toBe(64);
    expect(vssMsgSize('linux')).toBe(12);
  });
});
