/**
 * Property tests: no byte string makes a decoder throw, and the JSON form
 * round-trips every exact-size buffer byte for byte.
 *
 * Buffers are described compactly (length, a fill, a few patches, a few C
 * strings at string-field offsets) and expanded with a seeded PRNG: fast-
 * check then stays fast at 16 KiB, shrinks to small descriptions, and the
 * exact sizes and well-formed strings that reach the deep code paths come
 * up often instead of almost never.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Flavor } from './constants.js';
import { WireError } from './errors.js';
import { fromJson, toJson, type JsonOptions } from './json.js';
import { KVP_VARIANTS, decodeKvp, readExchange, readVariant, variantLayout } from './kvp.js';
import { leaves } from './layout.js';
import { readCString } from './strings.js';
import { decodeFreebsdVss, decodeLinuxVss, decodeLinuxVssHandshake } from './vss.js';

const RUNS = 10_000;
const MAX_LEN = 16_384;
const EXACT_SIZES = [7430, 7432, 12, 64, 4];

// Absolute offsets of KVP string fields (spec/wire.md section 5), where generated text is placed.
const KVP_TEXT_OFFSETS = [4, 8, 16, 20, 262, 528, 532, 2310, 4358, 5382];

/** mulberry32: a tiny seeded PRNG, so a failing case replays from its description. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

interface Shape {
  length: number;
  fill: { kind: 'zero' } | { kind: 'byte'; value: number } | { kind: 'noise'; seed: number };
  head: Uint8Array;
  patches: readonly { at: number; bytes: Uint8Array }[];
  texts: readonly { at: number; text: string; nul: boolean }[];
}

function build(s: Shape): Buffer {
  const b = Buffer.alloc(s.length);
  if (s.fill.kind === 'byte') b.fill(s.fill.value);
  else if (s.fill.kind === 'noise') {
    const next = prng(s.fill.seed);
    for (let i = 0; i < b.length; i += 4) {
      const r = next();
      b[i] = r;
      if (i + 1 < b.length) b[i + 1] = r >>> 8;
      if (i + 2 < b.length) b[i + 2] = r >>> 16;
      if (i + 3 < b.length) b[i + 3] = r >>> 24;
    }
  }
  for (const t of s.texts) {
    const bytes = Buffer.from(t.nul ? `${t.text}\0` : t.text, 'utf8');
    if (t.at < b.length) bytes.copy(b, t.at);
  }
  for (const p of s.patches) if (b.length > 0) Buffer.from(p.bytes).copy(b, p.at % b.length);
  // The head (op, pool, pad or status) goes last so it is exactly what was generated.
  Buffer.from(s.head).copy(b, 0);
  return b;
}

// Op bytes that select every body variant and VSS op, plus some that select none.
const opByte = fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 128, 129, 255);
const head = fc.oneof(
  fc.uint8Array({ maxLength: 8 }),
  fc.tuple(opByte, fc.uint8Array({ maxLength: 3 })).map(([op, rest]) => Uint8Array.from([op, ...rest])),
  fc.tuple(opByte, fc.nat(4)).map(([op, pool]) => Uint8Array.from([op, pool, 0, 0])),
);
const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('\uFEFFkey', 'Color', 'Blue', '3.1', '00:15:5D:01:02:03', '') },
);

function shaped(length: fc.Arbitrary<number>): fc.Arbitrary<Shape> {
  return fc
    .record({
      length,
      fill: fc.oneof(
        { weight: 6, arbitrary: fc.constant({ kind: 'zero' as const }) },
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('noise' as const), seed: fc.integer() }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('byte' as const), value: fc.integer({ min: 0, max: 255 }) }) },
      ),
      head,
      // Most of a KVP body is string fields, so any patch usually turns one into hex; half the
      // cases go without patches so clean strings reach the JSON often too.
      patches: fc.oneof(
        fc.constant([]),
        fc.array(fc.record({ at: fc.nat(MAX_LEN), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }), { minLength: 1, maxLength: 4 }),
      ),
      texts: fc.array(fc.record({ at: fc.constantFrom(...KVP_TEXT_OFFSETS, 1), text, nul: fc.boolean() }), { maxLength: 8 }),
    });
}

/** Small buffers entirely arbitrary, byte by byte (as one patch over zeros). */
const small: fc.Arbitrary<Shape> = fc.uint8Array({ maxLength: 80 }).map((a) => ({
  length: a.length,
  fill: { kind: 'zero' },
  head: new Uint8Array(0),
  patches: a.length > 0 ? [{ at: 0, bytes: a }] : [],
  texts: [],
}));

// Properties take the Shape and build the buffer themselves, so a counterexample prints as
// a short description instead of 7 KB of byte values.

/** Exactly `size` bytes. */
const exact = (size: number): fc.Arbitrary<Shape> => shaped(fc.constant(size));

/** Any length 0..16 KiB, biased toward `size` and the other exact sizes. */
function anyBytes(size: number): fc.Arbitrary<Shape> {
  return fc.oneof(
    { weight: 4, arbitrary: exact(size) },
    { weight: 1, arbitrary: shaped(fc.constantFrom(...EXACT_SIZES)) },
    { weight: 1, arbitrary: shaped(fc.constantFrom(size - 1, size + 1, 0)) },
    { weight: 2, arbitrary: shaped(fc.nat(MAX_LEN)) },
    { weight: 1, arbitrary: small },
  );
}

const ok = <T>(v: T | WireError): v is T => !(v instanceof WireError);

/** Every string field of every KVP body variant, read strictly. */
function readEverything(buf: Buffer, flavor: Flavor): void {
  const m = decodeKvp(buf, flavor);
  if (!ok(m)) {
    expect(m.code).toBe('ESIZE');
    return;
  }
  for (const v of KVP_VARIANTS) {
    readVariant(m, v);
    for (const l of leaves(variantLayout(flavor, v), 4)) {
      if (l.type === 'bytes') readCString(buf.subarray(l.offset, l.offset + l.size), l.path);
    }
  }
  for (const v of ['kvp_get', 'kvp_set', 'kvp_enum_data'] as const) {
    const ex = readExchange(m, v);
    readCString(ex.key, 'key');
    readCString(ex.value, 'value');
  }
}

const kvpOptions = (flavor: Flavor, reply: boolean): fc.Arbitrary<JsonOptions> =>
  fc.record(
    {
      flavor: fc.constant(flavor),
      service: fc.constant('kvp' as const),
      reply: fc.constant(reply),
      op: opByte,
      variant: fc.constantFrom(...KVP_VARIANTS, 'none' as const),
    },
    { requiredKeys: ['flavor', 'service', 'reply'] },
  );

describe('decoders never throw (0..16 KiB, exact sizes favoured)', () => {
  it.each(['freebsd', 'linux'] as const)('decodeKvp %s, then every variant and string field', (flavor) => {
    const size = flavor === 'freebsd' ? 7430 : 7432;
    fc.assert(
      fc.property(anyBytes(size), kvpOptions(flavor, false), fc.boolean(), (shape, opts, reply) => {
        const buf = build(shape);
        readEverything(buf, flavor);
        const j = toJson(buf, { ...opts, reply });
        if (buf.length !== size) expect((j as WireError).code).toBe('ESIZE');
      }),
      { numRuns: RUNS },
    );
  });

  it('decodeLinuxVss', () => {
    fc.assert(
      fc.property(anyBytes(12), fc.boolean(), (shape, reply) => {
        const buf = build(shape);
        const m = decodeLinuxVss(buf);
        if (ok(m)) readCString(m.reserved);
        else expect(m.code).toBe('ESIZE');
        toJson(buf, { flavor: 'linux', service: 'vss', reply });
      }),
      { numRuns: RUNS },
    );
  });

  it('decodeFreebsdVss', () => {
    fc.assert(
      fc.property(anyBytes(64), fc.boolean(), (shape, reply) => {
        const buf = build(shape);
        const m = decodeFreebsdVss(buf);
        if (ok(m)) readCString(m.reserved);
        else expect(m.code).toBe('ESIZE');
        toJson(buf, { flavor: 'freebsd', service: 'vss', reply });
      }),
      { numRuns: RUNS },
    );
  });

  it('decodeLinuxVssHandshake', () => {
    fc.assert(
      fc.property(anyBytes(4), (shape) => {
        const buf = build(shape);
        const v = decodeLinuxVssHandshake(buf);
        if (ok(v)) expect(v).toBe(129);
        else expect(v.code).toBe(buf.length === 4 ? 'EVALUE' : 'ESIZE');
      }),
      { numRuns: RUNS },
    );
  });
});

/** bytes -> JSON text -> bytes must be the identity, and the JSON must be stable. */
function roundTrips(buf: Buffer, opts: JsonOptions): void {
  const j = toJson(buf, opts);
  if (!ok(j)) throw new Error(`toJson: ${j.message}`);
  const textForm = JSON.stringify(j);
  const back = fromJson(JSON.parse(textForm));
  if (!ok(back)) throw new Error(`fromJson: ${back.message}`);
  // Compare by first differing byte: a 7 KB hex diff would bury the answer.
  const at = back.length === buf.length ? back.findIndex((x, i) => x !== buf[i]) : -2;
  expect({ firstDifference: at, length: back.length }).toEqual({ firstDifference: -1, length: buf.length });
  // Decoding the re-encoded bytes with the same options prints the same JSON.
  expect(JSON.stringify(toJson(back, opts))).toBe(textForm);
}

describe('JSON round trip: fromJson(toJson(x)) === x for every exact-size buffer', () => {
  const kvpCases = [
    ['freebsd', false],
    ['freebsd', true],
    ['linux', false],
    ['linux', true],
  ] as const;
  it.each(kvpCases)('KVP %s, reply %s', (flavor, reply) => {
    fc.assert(
      fc.property(exact(flavor === 'freebsd' ? 7430 : 7432), kvpOptions(flavor, reply), (shape, opts) => roundTrips(build(shape), opts)),
      { numRuns: RUNS },
    );
  });

  it.each([false, true])('Linux VSS message, reply %s', (reply) => {
    fc.assert(
      fc.property(exact(12), (shape) => roundTrips(build(shape), { flavor: 'linux', service: 'vss', reply })),
      { numRuns: RUNS },
    );
  });

  it('Linux VSS handshake reply', () => {
    fc.assert(
      fc.property(exact(4), (shape) => roundTrips(build(shape), { flavor: 'linux', service: 'vss' })),
      { numRuns: RUNS },
    );
  });

  it('FreeBSD VSS message', () => {
    fc.assert(
      fc.property(exact(64), fc.boolean(), (shape, reply) => roundTrips(build(shape), { flavor: 'freebsd', service: 'vss', reply })),
      { numRuns: RUNS },
    );
  });
});
