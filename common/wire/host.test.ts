import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isWireError } from './errors.js';
import {
  HOST_KVP_MSG,
  decodeHostIpMsg,
  decodeHostKvp,
  decodeHostVss,
  decodeIcPacket,
  decodeNegotiate,
  decodeUtf16,
  encodeHostIpMsg,
  encodeHostKvp,
  encodeHostVss,
  encodeIcPacket,
  encodeNegotiate,
  encodeUtf16,
  utf16Size,
  utf16ToUtf8,
  utf8ToUtf16,
} from './host.js';

/** Little-endian helpers to build expected bytes independently of the layouts. */
const u16 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff];
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const utf16 = (s: string): number[] => [...s].flatMap((c) => (c.codePointAt(0)! > 0xffff ? [...u16(c.charCodeAt(0)), ...u16(c.charCodeAt(1))] : u16(c.charCodeAt(0))));
const at = (buf: Buffer, off: number, n: number): number[] => [...buf.subarray(off, off + n)];
const ok = <T>(v: T): Exclude<T, { code: string }> => {
  if (isWireError(v)) throw new Error(String(v));
  return v as Exclude<T, { code: string }>;
};

describe('IC packet', () => {
  it('encodes the pipe and IC headers at the offsets of wire.md section 10', () => {
    const payload = Buffer.from([0xaa, 0xbb, 0xcc]);
    const p = encodeIcPacket(
      { pipeFlags: 1, msgtype: 2, fwVersion: { major: 3, minor: 0 }, msgVersion: { major: 4, minor: 1 }, status: 0x80004005, transactionId: 9, flags: 3 },
      payload,
    );
    const want = [...u32(1), ...u32(20 + 3), ...u16(3), ...u16(0), ...u16(2), ...u16(4), ...u16(1), ...u16(3), ...u32(0x80004005), 9, 3, 0, 0, 0xaa, 0xbb, 0xcc];
    expect([...p]).toEqual(want);
  });

  it('decodes headers and payload; anything shorter than 28 bytes is ESIZE', () => {
    const raw = Buffer.from([...u32(0), ...u32(0), ...u16(3), ...u16(0), ...u16(5), ...u16(5), ...u16(0), ...u16(12), ...u32(7), 1, 5, 0, 0, 1, 2]);
    const d = ok(decodeIcPacket(raw));
    expect(d.header).toMatchObject({ msgtype: 5, msgVersion: { major: 5, minor: 0 }, msgsize: 12, status: 7, transactionId: 1, flags: 5, fwVersion: { major: 3, minor: 0 } });
    expect([...d.payload]).toEqual([1, 2]);
    expect(decodeIcPacket(raw.subarray(0, 27))).toMatchObject({ code: 'ESIZE' });
    expect(decodeIcPacket(Buffer.alloc(0))).toMatchObject({ code: 'ESIZE' });
  });

  it('defaults: framework 3.0, flags TRANSACTION|REQUEST, sizes from the payload', () => {
    const d = ok(decodeIcPacket(encodeIcPacket({ msgtype: 0 }, Buffer.alloc(16))));
    expect(d.header).toMatchObject({ fwVersion: { major: 3, minor: 0 }, flags: 3, msgsize: 16, pipeMsgsize: 36, status: 0 });
  });
});

describe('NEGOTIATE payload', () => {
  it('counts, reserved, then framework pairs and message pairs', () => {
    const b = encodeNegotiate({ framework: [{ major: 3, minor: 0 }], message: [{ major: 4, minor: 0 }, { major: 3, minor: 1 }] });
    expect([...b]).toEqual([...u16(1), ...u16(2), ...u32(0), ...u16(3), ...u16(0), ...u16(4), ...u16(0), ...u16(3), ...u16(1)]);
    expect(ok(decodeNegotiate(b))).toEqual({ framework: [{ major: 3, minor: 0 }], message: [{ major: 4, minor: 0 }, { major: 3, minor: 1 }] });
  });

  it('rejects a payload shorter than its counts announce', () => {
    const b = Buffer.from([...u16(2), ...u16(1), ...u32(0), ...u16(3), ...u16(0)]);
    expect(decodeNegotiate(b)).toMatchObject({ code: 'ESIZE' });
    expect(decodeNegotiate(Buffer.alloc(7))).toMatchObject({ code: 'ESIZE' });
  });
});

describe('host KVP exchange (ops 0-3)', () => {
  it('is 7430 bytes, packed', () => {
    expect(HOST_KVP_MSG.size).toBe(7430);
  });

  it('GET: op, pool, key in UTF-16 with size 2*(units+1), value_size 0', () => {
    const b = ok(encodeHostKvp({ operation: 0, pool: 2, key: 'abc' }));
    expect(b.length).toBe(7430);
    expect(at(b, 0, 4)).toEqual([0, 2, 0, 0]);
    expect(at(b, 4, 12)).toEqual([...u32(0), ...u32(8), ...u32(0)]);
    expect(at(b, 16, 10)).toEqual([...utf16('abc'), 0, 0, 0, 0]);
    expect(b.subarray(528).every((x) => x === 0)).toBe(true);
  });

  it('SET: REG_SZ, REG_U32 and REG_U64 values', () => {
    const sz = ok(encodeHostKvp({ operation: 1, pool: 0, key: 'k', value: { type: 'sz', text: 'Grün😀' } }));
    expect(at(sz, 4, 12)).toEqual([...u32(1), ...u32(4), ...u32(2 * (6 + 1))]);
    expect(at(sz, 528, 14)).toEqual([...utf16('Grün😀'), 0, 0]);
    const n32 = ok(encodeHostKvp({ operation: 1, pool: 0, key: 'k', value: { type: 'u32', value: -1 } }));
    expect([...at(n32, 4, 12), ...at(n32, 528, 4)]).toEqual([...u32(4), ...u32(4), ...u32(4), 0xff, 0xff, 0xff, 0xff]);
    const n64 = ok(encodeHostKvp({ operation: 1, pool: 0, key: 'k', value: { type: 'u64', value: 2n ** 40n + 1n } }));
    expect([...at(n64, 4, 4), ...at(n64, 12, 4), ...at(n64, 528, 8)]).toEqual([...u32(8), ...u32(8), 1, 0, 0, 0, 0, 1, 0, 0]);
  });

  it('DELETE puts key_size at 4 and the key at 8; ENUMERATE the index at 4', () => {
    const del = ok(encodeHostKvp({ operation: 2, pool: 0, key: 'x' }));
    expect(at(del, 4, 8)).toEqual([...u32(4), ...utf16('x'), 0, 0]);
    const en = ok(encodeHostKvp({ operation: 3, pool: 1, index: 0x01020304 }));
    expect(at(en, 0, 8)).toEqual([3, 1, 0, 0, 4, 3, 2, 1]);
    expect(en.subarray(8).every((x) => x === 0)).toBe(true);
  });

  it('a key must fit with its NUL (255 units) and hold no NUL', () => {
    expect(isWireError(encodeHostKvp({ operation: 0, pool: 0, key: 'k'.repeat(255) }))).toBe(false);
    expect(encodeHostKvp({ operation: 0, pool: 0, key: 'k'.repeat(256) })).toMatchObject({ code: 'ETOOLONG' });
    expect(encodeHostKvp({ operation: 0, pool: 0, key: 'a\0b' })).toMatchObject({ code: 'EVALUE' });
    expect(encodeHostKvp({ operation: 1, pool: 0, key: 'k', value: { type: 'sz', text: 'v'.repeat(1024) } })).toMatchObject({ code: 'ETOOLONG' });
  });

  it('decodes an ENUMERATE reply from hand-placed fields, bounded by the announced sizes', () => {
    const b = Buffer.alloc(7430);
    Buffer.from([3, 1, 0, 0, ...u32(5), ...u32(1), ...u32(4), ...u32(8)]).copy(b, 0);
    Buffer.from(utf16('kX')).copy(b, 20); // key_size 4: one unit + NUL, so the X is not part of it
    Buffer.from(utf16('v😀')).copy(b, 532);
    const d = ok(decodeHostKvp(b, 3));
    expect(d).toEqual({ operation: 3, pool: 1, index: 5, valueType: 1, keySize: 4, valueSize: 8, key: 'k', value: 'v😀' });
  });

  it('decodes GET from the kvp_get offsets; a short payload is ESIZE', () => {
    const b = Buffer.alloc(7430);
    Buffer.from([...u32(1), ...u32(8), ...u32(4)]).copy(b, 4);
    Buffer.from(utf16('abc')).copy(b, 16);
    Buffer.from(utf16('z')).copy(b, 528);
    expect(ok(decodeHostKvp(b, 0))).toMatchObject({ key: 'abc', value: 'z', keySize: 8, valueSize: 4 });
    expect(decodeHostKvp(b.subarray(0, 2575), 0)).toMatchObject({ code: 'ESIZE' });
    expect(isWireError(decodeHostKvp(b.subarray(0, 2576), 0))).toBe(false);
  });
});

describe('host hv_kvp_ip_msg (ops 4, 5)', () => {
  const info = { operation: 5, pool: 0, adapterId: '{GUID}', addrFamily: 3, dhcpEnabled: 1, ipAddr: '10.0.0.5', subNet: '64', gateWay: 'gw', dnsAddr: 'd' };

  it('places every field as wire.md section 6 says, 7428 bytes', () => {
    const b = ok(encodeHostIpMsg(info));
    expect(b.length).toBe(7428);
    expect(at(b, 0, 2)).toEqual([5, 0]);
    expect(at(b, 2, 14)).toEqual([...utf16('{GUID}'), 0, 0]);
    expect(at(b, 258, 2)).toEqual([3, 1]);
    expect(at(b, 260, 18)).toEqual([...utf16('10.0.0.5'), 0, 0]);
    expect(at(b, 2308, 4)).toEqual(utf16('64'));
    expect(at(b, 4356, 4)).toEqual(utf16('gw'));
    expect(at(b, 5380, 2)).toEqual(utf16('d'));
    expect(ok(decodeHostIpMsg(b))).toEqual(info);
  });

  it('each string is bounded by its own field; a short message is ESIZE', () => {
    expect(encodeHostIpMsg({ ...info, gateWay: 'g'.repeat(512) })).toMatchObject({ code: 'ETOOLONG', field: 'gate_way' });
    expect(isWireError(encodeHostIpMsg({ ...info, gateWay: 'g'.repeat(511) }))).toBe(false);
    expect(encodeHostIpMsg({ ...info, adapterId: 'a'.repeat(128) })).toMatchObject({ code: 'ETOOLONG' });
    expect(decodeHostIpMsg(Buffer.alloc(7427))).toMatchObject({ code: 'ESIZE' });
  });

  it('a field filled to the end without a NUL decodes to the end of the field', () => {
    const b = ok(encodeHostIpMsg(info));
    Buffer.from(utf16('x'.repeat(128))).copy(b, 2);
    expect(ok(decodeHostIpMsg(b)).adapterId).toBe('x'.repeat(128));
  });
});

describe('host VSS payload', () => {
  it('operation at 0, flags at 8, 12 bytes', () => {
    expect([...encodeHostVss({ operation: 2, flags: 5 })]).toEqual([2, 0, 0, 0, 0, 0, 0, 0, ...u32(5)]);
    expect(ok(decodeHostVss(Buffer.from([6, 9, 9, 9, 9, 9, 9, 9, ...u32(0x80000001), 0xff])))).toEqual({ operation: 6, flags: 0x80000001 });
    expect(decodeHostVss(Buffer.alloc(11))).toMatchObject({ code: 'ESIZE' });
  });
});

describe('UTF-16', () => {
  it('surrogate pairs stay pairs; sizes count units plus the NUL', () => {
    expect([...encodeUtf16('a😀')]).toEqual([0x61, 0, 0x3d, 0xd8, 0x00, 0xde]);
    expect(utf16Size('a😀')).toBe(8);
    expect([...utf16ToUtf8(encodeUtf16('😀'))]).toEqual([0xf0, 0x9f, 0x98, 0x80]);
    expect([...utf8ToUtf16(Buffer.from([0xf0, 0x9f, 0x98, 0x80]))]).toEqual([0x3d, 0xd8, 0x00, 0xde]);
  });

  it('lone surrogates become U+FFFD in UTF-8; invalid UTF-8 becomes U+FFFD in UTF-16', () => {
    expect([...utf16ToUtf8(Buffer.from([0x3d, 0xd8, 0x41, 0x00]))]).toEqual([0xef, 0xbf, 0xbd, 0x41]);
    expect([...utf8ToUtf16(Buffer.from([0x41, 0xff]))]).toEqual([0x41, 0, 0xfd, 0xff]);
  });

  it('decodeUtf16 stops at the first NUL unit or maxUnits', () => {
    const b = Buffer.from([...utf16('ab'), 0, 0, ...utf16('c')]);
    expect(decodeUtf16(b)).toBe('ab');
    expect(decodeUtf16(b, 1)).toBe('a');
    expect(decodeUtf16(Buffer.from([0x61, 0, 0x62]))).toBe('a'); // an odd trailing byte is not a unit
  });

  it('round-trips any well-formed text through UTF-16 and UTF-8', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (s) => {
        const t = s.replaceAll('\0', '');
        expect(decodeUtf16(encodeUtf16(t))).toBe(t);
        expect(utf16ToUtf8(encodeUtf16(t)).toString('utf8')).toBe(t);
        expect(utf8ToUtf16(Buffer.from(t, 'utf8'))).toEqual(encodeUtf16(t));
      }),
    );
  });
});
