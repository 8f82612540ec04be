/**
 * hv_kvp_msg encoder and decoder against bytes built by hand at the
 * offsets of spec/wire.md section 5 (not through layout.ts), and the
 * decoder against truncated, oversized and garbage buffers.
 */
import { describe, expect, it } from 'vitest';
import {
  ADDR_FAMILY_IPV4,
  ADDR_FAMILY_IPV6,
  HV_E_FAIL,
  HV_S_CONT,
  KVP_OP_DELETE,
  KVP_OP_ENUMERATE,
  KVP_OP_GET,
  KVP_OP_GET_IP_INFO,
  KVP_OP_REGISTER,
  KVP_OP_REGISTER1,
  KVP_OP_SET,
  KVP_OP_SET_IP_INFO,
  KVP_POOL_AUTO,
  KVP_POOL_EXTERNAL,
  KVP_POOL_GUEST,
  REG_SZ,
  type Flavor,
} from './constants.js';
import { WireError } from './errors.js';
import {
  KVP_VARIANTS,
  decodeKvp,
  encodeKvp,
  readExchange,
  readVariant,
  replyFrom,
  variantForOp,
  variantLayout,
  type KvpMessage,
} from './kvp.js';
import { cstringSize, encodeCString, readCString } from './strings.js';

const SIZE: Record<Flavor, number> = { freebsd: 7430, linux: 7432 };
const FLAVORS = ['freebsd', 'linux'] as const;

/** A zeroed message of the flavor's spec size with op and pool set. */
function handMsg(flavor: Flavor, op: number, pool = 0): Buffer {
  const b = Buffer.alloc(SIZE[flavor]);
  b[0] = op;
  b[1] = pool;
  return b;
}

function text(s: string, size: number): Buffer {
  const b = encodeCString(s, size);
  if (b instanceof WireError) throw new Error(b.message);
  return b;
}

function decoded(buf: Buffer, flavor: Flavor): KvpMessage {
  const m = decodeKvp(buf, flavor);
  if (m instanceof WireError) throw new Error(m.message);
  return m;
}

describe('registration messages', () => {
  it('Linux REGISTER1: 7432 bytes, byte 0 = 100, rest zero', () => {
    const want = Buffer.alloc(7432);
    want[0] = 100;
    const got = encodeKvp('linux', { operation: KVP_OP_REGISTER1 });
    expect(got.length).toBe(7432);
    expect(got.equals(want)).toBe(true);
  });

  it('FreeBSD register: 7430 bytes, byte 0 = 4, rest zero', () => {
    const want = Buffer.alloc(7430);
    want[0] = 4;
    const got = encodeKvp('freebsd', { operation: KVP_OP_REGISTER });
    expect(got.length).toBe(7430);
    expect(got.equals(want)).toBe(true);
  });

  it('reads the Linux kernel reply version "3.1" from kvp_register.version at 4', () => {
    const b = handMsg('linux', 100);
    b.write('3.1\0', 4, 'latin1');
    const m = decoded(b, 'linux');
    expect(m.operation).toBe(100);
    expect(readCString(readVariant(m, 'kvp_register').version as Buffer)).toBe('3.1');
  });
});

describe.each(FLAVORS)('%s requests', (flavor) => {
  it('SET "Color" = "Blue": key_size 6 and value_size 5 count the NUL', () => {
    const want = handMsg(flavor, 1, KVP_POOL_EXTERNAL);
    want.writeUInt32LE(0, 4); // value_type: the kernel does not copy it on SET
    want.writeUInt32LE(6, 8);
    want.writeUInt32LE(5, 12);
    want.write('Color', 16, 'latin1');
    want.write('Blue', 528, 'latin1');
    const got = encodeKvp(flavor, { operation: KVP_OP_SET, pool: KVP_POOL_EXTERNAL }, 'kvp_set', {
      data: {
        value_type: 0,
        key_size: cstringSize('Color'),
        value_size: cstringSize('Blue'),
        key: text('Color', 512),
        value: text('Blue', 2048),
      },
    });
    expect(got.toString('hex')).toBe(want.toString('hex'));

    const m = decoded(got, flavor);
    expect(m).toMatchObject({ flavor, operation: 1, pool: 0, pad: 0, error: 1 });
    const ex = readExchange(m, 'kvp_set');
    expect({ ...ex, key: readCString(ex.key), value: readCString(ex.value) }).toEqual({
      valueType: 0,
      keySize: 6,
      valueSize: 5,
      key: 'Color',
      value: 'Blue',
    });
    expect(ex.index).toBeUndefined();
  });

  it('GET fills only the key (value_size 0)', () => {
    const want = handMsg(flavor, 0, KVP_POOL_AUTO);
    want.writeUInt32LE(9, 8);
    want.write('HostName', 16, 'latin1');
    const got = encodeKvp(flavor, { operation: KVP_OP_GET, pool: KVP_POOL_AUTO }, 'kvp_get', {
      data: { key_size: 9, key: text('HostName', 512) },
    });
    expect(got.equals(want)).toBe(true);
    expect(readExchange(decoded(got, flavor), 'kvp_get').valueSize).toBe(0);
  });

  it('DELETE: key_size at 4, key at 8', () => {
    const want = handMsg(flavor, 2, KVP_POOL_EXTERNAL);
    want.writeUInt32LE(4, 4);
    want.write('Key', 8, 'latin1');
    const got = encodeKvp(flavor, { operation: KVP_OP_DELETE }, 'kvp_delete', { key_size: 4, key: text('Key', 512) });
    expect(got.equals(want)).toBe(true);
    const d = readVariant(decoded(got, flavor), 'kvp_delete');
    expect(d.key_size).toBe(4);
    expect(readCString(d.key as Buffer)).toBe('Key');
  });

  it('ENUMERATE: only the index at 4, data area zero', () => {
    const want = handMsg(flavor, 3, KVP_POOL_GUEST);
    want.writeUInt32LE(7, 4);
    const got = encodeKvp(flavor, { operation: KVP_OP_ENUMERATE, pool: KVP_POOL_GUEST }, 'kvp_enum_data', { index: 7 });
    expect(got.equals(want)).toBe(true);
    expect(readExchange(decoded(got, flavor), 'kvp_enum_data')).toMatchObject({ index: 7, valueType: 0, keySize: 0, valueSize: 0 });
  });

  it('ENUMERATE answer data sits 4 bytes later than GET/SET data', () => {
    const b = handMsg(flavor, 3, KVP_POOL_GUEST);
    b.writeUInt32LE(2, 4);
    b.writeUInt32LE(REG_SZ, 8);
    b.writeUInt32LE(2, 12);
    b.writeUInt32LE(3, 16);
    b.write('k', 20, 'latin1');
    b.write('vv', 532, 'latin1');
    const ex = readExchange(decoded(b, flavor), 'kvp_enum_data');
    expect({ ...ex, key: readCString(ex.key), value: readCString(ex.value) }).toEqual({
      index: 2,
      valueType: REG_SZ,
      keySize: 2,
      valueSize: 3,
      key: 'k',
      value: 'vv',
    });
  });

  it('GET_IP_INFO: adapter_id at 4, addr_family at 260', () => {
    const want = handMsg(flavor, 4);
    want.write('00:15:5D:01:02:03', 4, 'latin1');
    want[260] = ADDR_FAMILY_IPV4 | ADDR_FAMILY_IPV6;
    const got = encodeKvp(flavor, { operation: KVP_OP_GET_IP_INFO }, 'kvp_ip_val', {
      adapter_id: text('00:15:5D:01:02:03', 256),
      addr_family: 3,
    });
    expect(got.equals(want)).toBe(true);
    const ip = readVariant(decoded(got, flavor), 'kvp_ip_val');
    expect(readCString(ip.adapter_id as Buffer)).toBe('00:15:5D:01:02:03');
    expect(ip.addr_family).toBe(3);
    expect(ip.dhcp_enabled).toBe(0);
  });

  it('SET_IP_INFO fields land at 261, 262, 2310, 4358, 5382', () => {
    const want = handMsg(flavor, 5);
    want.write('{guid}', 4, 'latin1');
    want[260] = 1;
    want[261] = 1;
    want.write('10.0.0.5', 262, 'latin1');
    want.write('255.255.255.0', 2310, 'latin1');
    want.write('10.0.0.1', 4358, 'latin1');
    want.write('10.0.0.2', 5382, 'latin1');
    const got = encodeKvp(flavor, { operation: KVP_OP_SET_IP_INFO }, 'kvp_ip_val', {
      adapter_id: Buffer.from('{guid}'),
      addr_family: 1,
      dhcp_enabled: 1,
      ip_addr: Buffer.from('10.0.0.5'),
      sub_net: Buffer.from('255.255.255.0'),
      gate_way: Buffer.from('10.0.0.1'),
      dns_addr: Buffer.from('10.0.0.2'),
    });
    expect(got.equals(want)).toBe(true);
  });

  it('a header given as an error word fills bytes 0..3', () => {
    const want = Buffer.alloc(SIZE[flavor]);
    want.writeUInt32LE(0x80004005, 0);
    expect(encodeKvp(flavor, { error: HV_E_FAIL }).equals(want)).toBe(true);
  });

  it('a non-zero pad is kept, not cleaned', () => {
    const b = encodeKvp(flavor, { operation: 1, pool: 4, pad: 0xbeef });
    expect([b[0], b[1], b[2], b[3]]).toEqual([1, 4, 0xef, 0xbe]);
    expect(decoded(b, flavor).pad).toBe(0xbeef);
  });
});

describe('replies', () => {
  it.each(FLAVORS)('%s: status 0x80070103 in bytes 0..3 little-endian, rest of the request unchanged', (flavor) => {
    const req = handMsg(flavor, 3, 1);
    req.writeUInt32LE(9, 4);
    req.write('some', 20, 'latin1');
    const before = Buffer.from(req);
    const rep = replyFrom(req, HV_S_CONT);
    expect(rep.length).toBe(SIZE[flavor]);
    expect([...rep.subarray(0, 4)]).toEqual([0x03, 0x01, 0x07, 0x80]);
    expect(rep.subarray(4).equals(req.subarray(4))).toBe(true);
    expect(req.equals(before)).toBe(true); // the request is not modified
    expect(decoded(rep, flavor).error).toBe(0x80070103);
  });

  it('status 0 clears op and pool', () => {
    const rep = replyFrom(handMsg('linux', 1, 3), 0);
    expect([...rep.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
  });
});

describe('decodeKvp sizes', () => {
  const cases: [Flavor, number][] = [
    ['freebsd', 0],
    ['freebsd', 1],
    ['freebsd', 4],
    ['freebsd', 7429],
    ['freebsd', 7431],
    ['freebsd', 7432], // a Linux message is not a FreeBSD one
    ['freebsd', 16384],
    ['linux', 0],
    ['linux', 7430], // nor the other way round
    ['linux', 7431],
    ['linux', 7433],
    ['linux', 16384],
  ];
  it.each(cases)('%s, %i bytes -> ESIZE naming both sizes', (flavor, n) => {
    const r = decodeKvp(Buffer.alloc(n, 0xff), flavor);
    expect(r).toBeInstanceOf(WireError);
    expect((r as WireError).code).toBe('ESIZE');
    expect((r as WireError).message).toContain(`${n} bytes`);
    expect((r as WireError).message).toContain(String(SIZE[flavor]));
  });

  it.each(FLAVORS)('%s: the exact size decodes, whatever the bytes', (flavor) => {
    const m = decoded(Buffer.alloc(SIZE[flavor], 0xff), flavor);
    expect(m).toMatchObject({ operation: 255, pool: 255, pad: 0xffff, error: 0xffffffff });
    for (const v of KVP_VARIANTS) expect(() => readVariant(m, v)).not.toThrow();
  });
});

describe('string fields of garbage messages', () => {
  it.each(FLAVORS)('%s: a key without NUL is ENOTERM, invalid UTF-8 is EUTF8, never a throw', (flavor) => {
    const full = handMsg(flavor, 1);
    full.fill(0x41, 16, 16 + 512); // key has no terminator inside its 512 bytes
    const k1 = readCString(readExchange(decoded(full, flavor), 'kvp_set').key, 'key');
    expect(k1).toBeInstanceOf(WireError);
    expect((k1 as WireError).code).toBe('ENOTERM');
    expect((k1 as WireError).field).toBe('key');

    const bad = handMsg(flavor, 1);
    bad[16] = 0xc3; // a lead byte followed by NUL
    const k2 = readCString(readExchange(decoded(bad, flavor), 'kvp_set').key, 'key');
    expect((k2 as WireError).code).toBe('EUTF8');
  });

  it('a key that fills the field up to the last byte, then NUL, reads back', () => {
    const b = handMsg('linux', 1);
    b.fill(0x61, 16, 16 + 511);
    expect(readCString(readExchange(decoded(b, 'linux'), 'kvp_set').key)).toBe('a'.repeat(511));
  });
});

describe('variants', () => {
  it('maps request ops to body members', () => {
    expect([0, 1, 2, 3, 4, 5, 100].map(variantForOp)).toEqual([
      'kvp_get',
      'kvp_set',
      'kvp_delete',
      'kvp_enum_data',
      'kvp_ip_val',
      'kvp_ip_val',
      'kvp_register',
    ]);
    expect(variantForOp(6)).toBeUndefined();
    expect(variantForOp(255)).toBeUndefined();
  });

  it('has a layout for every variant of both flavors', () => {
    for (const f of FLAVORS) for (const v of KVP_VARIANTS) expect(variantLayout(f, v).size).toBeGreaterThan(0);
    expect(() => variantLayout('linux', 'nope' as never)).toThrow(/nope/);
  });
});
