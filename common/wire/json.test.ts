/**
 * The lossless JSON form: shapes on hand-built messages, the hex fallbacks
 * that make it lossless, and errors for wrong sizes and malformed JSON.
 * (properties.test.ts proves the round trip on random buffers.)
 */
import { describe, expect, it } from 'vitest';
import { KVP_SIZE, setColorBlue } from '../../test/lib/wire-vectors.js';
import type { Flavor } from './constants.js';
import { WireError } from './errors.js';
import { fromJson, toJson, type JsonOptions, type KvpJson, type MsgJson } from './json.js';

const SIZE = KVP_SIZE;

const BODY: Record<Flavor, number> = { freebsd: 7426, linux: 7428 };

function json(bytes: Buffer, opts: JsonOptions): MsgJson {
  const j = toJson(bytes, opts);
  if (j instanceof WireError) throw new Error(j.message);
  return j;
}

/** JSON text and back, then encode: what `msg decode | msg encode` does. */
function roundTrip(bytes: Buffer, opts: JsonOptions): Buffer {
  const b = fromJson(JSON.parse(JSON.stringify(json(bytes, opts))));
  if (b instanceof WireError) throw new Error(b.message);
  return b;
}

function encoded(obj: unknown): Buffer {
  const b = fromJson(obj);
  if (b instanceof WireError) throw new Error(b.message);
  return b;
}

function err(obj: unknown): WireError {
  const b = fromJson(obj);
  if (!(b instanceof WireError)) throw new Error('expected a WireError');
  return b;
}


describe.each(['freebsd', 'linux'] as const)('%s KVP', (flavor) => {
  it('shows a SET with its fields as sent', () => {
    const b = setColorBlue(flavor);
    expect(json(b, { flavor, service: 'kvp' })).toEqual({
      flavor,
      service: 'kvp',
      reply: false,
      operation: 1,
      operationName: 'set',
      pool: 0,
      poolName: 'external',
      pad: 0,
      variant: 'kvp_set',
      body: { data: { value_type: 0, key_size: 6, value_size: 5, key: 'Color', value: 'Blue' } },
    });
    expect(roundTrip(b, { flavor, service: 'kvp' }).equals(b)).toBe(true);
  });

  it('keeps wrong size fields as they are (no recomputing)', () => {
    const b = setColorBlue(flavor);
    b.writeUInt32LE(999, 8);
    const j = json(b, { flavor, service: 'kvp' }) as KvpJson;
    expect((j.body as { data: { key_size: number } }).data.key_size).toBe(999);
    expect(roundTrip(b, { flavor, service: 'kvp' }).equals(b)).toBe(true);
  });

  it('shows a string field as hex of the whole field when it is not a clean C string', () => {
    const cases: [string, (b: Buffer) => void][] = [
      ['bytes after the NUL', (b) => b.write('Color\0x', 16, 'latin1')],
      ['no NUL', (b) => b.fill(0x41, 16, 528)],
      ['invalid UTF-8', (b) => (b[16] = 0xff)],
    ];
    for (const [name, mutate] of cases) {
      const b = setColorBlue(flavor);
      b.fill(0, 16, 528);
      mutate(b);
      const j = json(b, { flavor, service: 'kvp' }) as KvpJson;
      const key = (j.body as { data: { key: unknown } }).data.key;
      expect({ name, key }).toEqual({ name, key: { hex: b.subarray(16, 528).toString('hex') } });
      expect(roundTrip(b, { flavor, service: 'kvp' }).equals(b)).toBe(true);
    }
  });

  it('keeps bytes outside the variant as a trailer, without its trailing zeros', () => {
    const b = Buffer.alloc(SIZE[flavor]);
    b[0] = 2; // DELETE: the variant ends at 520
    b[520] = 0xaa;
    b[522] = 0xbb;
    const j = json(b, { flavor, service: 'kvp' }) as KvpJson;
    expect(j.variant).toBe('kvp_delete');
    expect(j.trailer).toBe('aa00bb');
    expect(roundTrip(b, { flavor, service: 'kvp' }).equals(b)).toBe(true);
  });

  it('has no trailer when the area is zero', () => {
    expect('trailer' in json(setColorBlue(flavor), { flavor, service: 'kvp' })).toBe(false);
  });

  it('op 100 is kvp_register; op 4 is the IP block', () => {
    const reg = Buffer.alloc(SIZE[flavor]);
    reg[0] = 100;
    reg.write('3.1', 4, 'latin1');
    expect(json(reg, { flavor, service: 'kvp' })).toMatchObject({ operationName: 'register1', variant: 'kvp_register', body: { version: '3.1' } });
    const ip = Buffer.alloc(SIZE[flavor]);
    ip[0] = 4;
    ip.write('00:15:5D:00:00:01', 4, 'latin1');
    ip[260] = 1;
    expect(json(ip, { flavor, service: 'kvp' })).toMatchObject({
      variant: 'kvp_ip_val',
      body: { adapter_id: '00:15:5D:00:00:01', addr_family: 1, dhcp_enabled: 0, ip_addr: '', sub_net: '', gate_way: '', dns_addr: '' },
    });
  });

  it('an unknown op shows the body as hex', () => {
    const b = Buffer.alloc(SIZE[flavor]);
    b[0] = 77;
    b[10] = 0x12;
    const j = json(b, { flavor, service: 'kvp' });
    expect(j).toMatchObject({ operation: 77, variant: null, body: { hex: '00'.repeat(6) + '12' } }); // body starts at 4
    expect('operationName' in j).toBe(false);
    expect(roundTrip(b, { flavor, service: 'kvp' }).equals(b)).toBe(true);
  });

  it('a forced variant wins over the op; "none" gives hex', () => {
    const b = Buffer.alloc(SIZE[flavor]);
    b[0] = 4; // FreeBSD: the daemon's register message
    expect(json(b, { flavor, service: 'kvp', variant: 'kvp_register' })).toMatchObject({ variant: 'kvp_register', body: { version: '' } });
    expect(json(b, { flavor, service: 'kvp', variant: 'none' })).toMatchObject({ variant: null, body: { hex: '' } });
    expect(toJson(b, { flavor, service: 'kvp', variant: 'kvp_bogus' as never })).toBeInstanceOf(WireError);
  });

  it('a reply shows the status word; the body variant comes from the op option', () => {
    const b = setColorBlue(flavor);
    b.writeUInt32LE(0x80070103, 0);
    expect(json(b, { flavor, service: 'kvp', reply: true, op: 1 })).toEqual({
      flavor,
      service: 'kvp',
      reply: true,
      status: 0x80070103,
      statusName: 'HV_S_CONT',
      variant: 'kvp_set',
      body: { data: { value_type: 0, key_size: 6, value_size: 5, key: 'Color', value: 'Blue' } },
    });
    const noOp = json(b, { flavor, service: 'kvp', reply: true }) as KvpJson;
    expect(noOp.variant).toBeNull();
    expect((noOp.body as { hex: string }).hex.startsWith('00000000' + '06000000' + '05000000' + '436f6c6f72')).toBe(true);
    expect(roundTrip(b, { flavor, service: 'kvp', reply: true, op: 1 }).equals(b)).toBe(true);
    expect(roundTrip(b, { flavor, service: 'kvp', reply: true }).equals(b)).toBe(true);
  });

  it('an unknown status is named by its hex', () => {
    const b = Buffer.alloc(SIZE[flavor]);
    b.writeUInt32LE(0x12345678, 0);
    expect(json(b, { flavor, service: 'kvp', reply: true })).toMatchObject({ status: 0x12345678, statusName: '0x12345678' });
  });

  it.each([0, 12, 7429, 7431, 7433])('%i bytes -> ESIZE (returned, not thrown)', (n) => {
    const r = toJson(Buffer.alloc(n), { flavor, service: 'kvp' });
    expect(r).toBeInstanceOf(WireError);
    expect((r as WireError).code).toBe('ESIZE');
    expect((r as WireError).message).toContain(String(SIZE[flavor]));
  });
});

describe('Linux trailer includes the two padding bytes', () => {
  it('the IP block ends at 7430; bytes 7430..7431 are the trailer', () => {
    const b = Buffer.alloc(7432);
    b[0] = 5;
    b[7431] = 1;
    const j = json(b, { flavor: 'linux', service: 'kvp' }) as KvpJson;
    expect(j.trailer).toBe('0001');
    expect(roundTrip(b, { flavor: 'linux', service: 'kvp' }).equals(b)).toBe(true);
  });
});

describe('VSS', () => {
  it('Linux request', () => {
    const b = Buffer.alloc(12);
    b[0] = 5;
    b.writeUInt32LE(5, 8);
    expect(json(b, { flavor: 'linux', service: 'vss' })).toEqual({
      flavor: 'linux',
      service: 'vss',
      reply: false,
      operation: 5,
      operationName: 'freeze',
      flags: 5,
    });
  });

  it('Linux request with reserved bytes', () => {
    const b = Buffer.alloc(12);
    b[0] = 200;
    b[3] = 9;
    const j = json(b, { flavor: 'linux', service: 'vss' });
    expect(j).toMatchObject({ operation: 200, reserved: '000009' });
    expect('operationName' in j).toBe(false);
    expect(roundTrip(b, { flavor: 'linux', service: 'vss' }).equals(b)).toBe(true);
  });

  it('Linux reply: status unsigned, reserved[3..6] kept', () => {
    const b = Buffer.alloc(12);
    b.writeUInt32LE(0x80004005, 0);
    b[6] = 1;
    b.writeUInt32LE(7, 8);
    expect(json(b, { flavor: 'linux', service: 'vss', reply: true })).toEqual({
      flavor: 'linux',
      service: 'vss',
      reply: true,
      status: 0x80004005,
      statusName: 'HV_E_FAIL',
      flags: 7,
      reserved: '000001',
    });
    expect(roundTrip(b, { flavor: 'linux', service: 'vss', reply: true }).equals(b)).toBe(true);
  });

  it('Linux handshake reply: 4 bytes', () => {
    const b = Buffer.from([0x81, 0, 0, 0]);
    const j = json(b, { flavor: 'linux', service: 'vss' });
    expect(j).toMatchObject({ handshake: 129 });
    expect(roundTrip(b, { flavor: 'linux', service: 'vss' }).equals(b)).toBe(true);
    // A wrong version still shows, so the tool can display it.
    expect(json(Buffer.from([1, 2, 3, 4]), { flavor: 'linux', service: 'vss' })).toMatchObject({ handshake: 0x04030201 });
  });

  it.each([0, 3, 5, 11, 13, 64])('Linux %i bytes -> ESIZE naming 12 and 4', (n) => {
    const r = toJson(Buffer.alloc(n), { flavor: 'linux', service: 'vss' }) as WireError;
    expect(r.code).toBe('ESIZE');
    expect(r.message).toMatch(/expected 12 \(or 4/);
  });

  it('FreeBSD: msgid as a decimal string (beyond 2^53), reserved only when non-zero', () => {
    const b = Buffer.alloc(64);
    b.writeUInt32LE(2, 0);
    b.writeUInt32LE(1, 4);
    b.writeBigUInt64LE(18446744073709551615n, 8);
    expect(json(b, { flavor: 'freebsd', service: 'vss' })).toEqual({
      flavor: 'freebsd',
      service: 'vss',
      reply: false,
      opt: 2,
      optName: 'freeze',
      status: 1,
      statusName: 'fail',
      msgid: '18446744073709551615',
    });
    b[63] = 0xee;
    expect(json(b, { flavor: 'freebsd', service: 'vss' })).toMatchObject({ reserved: '00'.repeat(47) + 'ee' });
    expect(roundTrip(b, { flavor: 'freebsd', service: 'vss' }).equals(b)).toBe(true);
  });

  it.each([0, 12, 63, 65])('FreeBSD %i bytes -> ESIZE', (n) => {
    expect((toJson(Buffer.alloc(n), { flavor: 'freebsd', service: 'vss' }) as WireError).code).toBe('ESIZE');
  });
});

describe('fromJson on hand-written JSON', () => {
  it('missing fields are zero; the variant follows the operation', () => {
    const b = encoded({ flavor: 'linux', service: 'kvp', operation: 1, body: { data: { key_size: 6, value_size: 5, key: 'Color', value: 'Blue' } } });
    expect(b.equals(setColorBlue('linux'))).toBe(true);
  });

  it('a reply with a status only', () => {
    const want = Buffer.alloc(7430);
    want.writeUInt32LE(0x80070103, 0);
    expect(encoded({ flavor: 'freebsd', service: 'kvp', reply: true, status: 0x80070103 }).equals(want)).toBe(true);
  });

  it('hex shorter than the field is zero-filled', () => {
    const b = encoded({ flavor: 'freebsd', service: 'kvp', operation: 2, body: { key: { hex: '41' } } });
    expect(b[8]).toBe(0x41);
    expect(b[9]).toBe(0);
  });

  it('FreeBSD VSS msgid also as a number; Linux handshake', () => {
    const b = encoded({ flavor: 'freebsd', service: 'vss', opt: 3, msgid: 42 });
    expect(b.readBigUInt64LE(8)).toBe(42n);
    expect([...encoded({ flavor: 'linux', service: 'vss', handshake: 129 })]).toEqual([0x81, 0, 0, 0]);
  });

  it('names the ignored helper names without using them', () => {
    const b = encoded({ flavor: 'linux', service: 'kvp', operation: 3, operationName: 'get', pool: 1, poolName: 'auto', body: { index: 2 } });
    expect([b[0], b[1], b.readUInt32LE(4)]).toEqual([3, 1, 2]);
  });
});

describe('fromJson errors (returned, naming the field)', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['not an object', [1, 2], 'EVALUE', /^message: /],
    ['null', null, 'EVALUE', /^message: /],
    ['unknown flavor', { flavor: 'netbsd', service: 'kvp', operation: 0 }, 'EVALUE', /^flavor: .*"netbsd"/],
    ['missing service', { flavor: 'linux', operation: 0 }, 'EVALUE', /^service: /],
    ['reply not boolean', { flavor: 'linux', service: 'kvp', reply: 'yes', operation: 0 }, 'EVALUE', /^reply: /],
    ['missing operation', { flavor: 'linux', service: 'kvp' }, 'EVALUE', /^operation: missing/],
    ['operation in a reply', { flavor: 'linux', service: 'kvp', reply: true, status: 0, operation: 1 }, 'EVALUE', /^operation: not part of a reply/],
    ['operation out of range', { flavor: 'linux', service: 'kvp', operation: 256 }, 'EVALUE', /^operation: expected an integer 0\.\.255/],
    ['fractional pool', { flavor: 'linux', service: 'kvp', operation: 1, pool: 1.5 }, 'EVALUE', /^pool: /],
    ['negative status', { flavor: 'linux', service: 'kvp', reply: true, status: -1 }, 'EVALUE', /^status: /],
    ['unknown top-level key', { flavor: 'linux', service: 'kvp', operation: 1, colour: 1 }, 'EVALUE', /^colour: not a field here/],
    ['unknown body field', { flavor: 'linux', service: 'kvp', operation: 1, body: { data: { kye: 'x' } } }, 'EVALUE', /^body\.data\.kye: /],
    ['unknown variant', { flavor: 'linux', service: 'kvp', operation: 1, variant: 'kvp_nope' }, 'EVALUE', /^variant: /],
    ['key too long', { flavor: 'linux', service: 'kvp', operation: 1, body: { data: { key: 'k'.repeat(512) } } }, 'ETOOLONG', /^body\.data\.key: 512 bytes \+ NUL/],
    ['NUL inside text', { flavor: 'linux', service: 'kvp', operation: 1, body: { data: { key: 'a\u0000b' } } }, 'EVALUE', /^body\.data\.key: .*NUL/],
    ['lone surrogate', { flavor: 'linux', service: 'kvp', operation: 1, body: { data: { key: '\uD800' } } }, 'EVALUE', /^body\.data\.key: .*surrogate/],
    ['odd hex', { flavor: 'linux', service: 'kvp', operation: 1, body: { data: { key: { hex: 'abc' } } } }, 'EVALUE', /^body\.data\.key\.hex: /],
    ['hex too long', { flavor: 'linux', service: 'kvp', operation: 2, body: { key: { hex: '00'.repeat(513) } } }, 'ETOOLONG', /^body\.key\.hex: 513 bytes/],
    ['number for a string', { flavor: 'linux', service: 'kvp', operation: 1, body: { data: { key: 5 } } }, 'EVALUE', /^body\.data\.key: /],
    ['fields with variant null', { flavor: 'linux', service: 'kvp', operation: 9, body: { data: {} } }, 'EVALUE', /^body: /],
    ['trailer with variant null', { flavor: 'linux', service: 'kvp', operation: 9, trailer: '00' }, 'EVALUE', /^trailer: /],
    ['trailer too long', { flavor: 'freebsd', service: 'kvp', operation: 5, trailer: '00' }, 'ETOOLONG', /^trailer: /],
    ['bad msgid', { flavor: 'freebsd', service: 'vss', opt: 1, msgid: '-1' }, 'EVALUE', /^msgid: /],
    ['msgid beyond 64 bits', { flavor: 'freebsd', service: 'vss', opt: 1, msgid: '18446744073709551616' }, 'EVALUE', /^msgid: /],
    ['missing opt', { flavor: 'freebsd', service: 'vss' }, 'EVALUE', /^opt: missing/],
    ['reserved too long (Linux request)', { flavor: 'linux', service: 'vss', operation: 2, reserved: '00'.repeat(8) }, 'ETOOLONG', /^reserved: /],
    ['reserved too long (Linux reply)', { flavor: 'linux', service: 'vss', reply: true, status: 0, reserved: '00'.repeat(5) }, 'ETOOLONG', /^reserved: /],
    ['handshake with other fields', { flavor: 'linux', service: 'vss', handshake: 129, flags: 0 }, 'EVALUE', /^flags: /],
  ];
  it.each(cases)('%s', (_name, obj, code, message) => {
    const e = err(obj);
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
  });

  it('the FreeBSD body union has no trailer after the IP block; Linux has 2 bytes', () => {
    expect(BODY.linux - 7426).toBe(2);
    expect(encoded({ flavor: 'linux', service: 'kvp', operation: 5, trailer: '0102' }).subarray(7430).toString('hex')).toBe('0102');
  });
});
