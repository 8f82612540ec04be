/**
 * The layout engine's placement rules on small structs whose gcc layout is
 * easy to work out by hand, and its read/write helpers.
 */
import { describe, expect, it } from 'vitest';
import { bytes, i32, leaves, locate, nested, readAggregate, struct, u16, u32, u64, u8, union, writeAggregate } from './layout.js';

const offsets = (l: ReturnType<typeof struct>): number[] => l.members.map((m) => m.offset);

describe('placement', () => {
  it('aligns unpacked members naturally and rounds the size to the largest alignment', () => {
    // struct { u8 a; u32 b; u16 c; } -> a@0, b@4, c@8, size 12, align 4
    const s = struct('s', [u8('a'), u32('b'), u16('c')], { packed: false });
    expect(offsets(s)).toEqual([0, 4, 8]);
    expect(s.size).toBe(12);
    expect(s.align).toBe(4);
  });

  it('puts packed members back to back with alignment 1', () => {
    const s = struct('s', [u8('a'), u32('b'), u16('c')], { packed: true });
    expect(offsets(s)).toEqual([0, 1, 5]);
    expect(s.size).toBe(7);
    expect(s.align).toBe(1);
  });

  it('aligns a u64 to 8 when unpacked (FreeBSD hv_vss_opt_msg shape)', () => {
    const s = struct('s', [u32('a'), u64('b'), u8('c')], { packed: false });
    expect(offsets(s)).toEqual([0, 8, 16]);
    expect(s.size).toBe(24);
    expect(s.align).toBe(8);
  });

  it('treats byte arrays as alignment 1', () => {
    const s = struct('s', [bytes('a', 3), u8('b')], { packed: false });
    expect(offsets(s)).toEqual([0, 3]);
    expect(s.size).toBe(4);
  });

  it('sizes a union as its largest member rounded up to the largest alignment', () => {
    const del = struct('del', [u32('k'), bytes('key', 5)], { packed: false }); // 9 -> 12, align 4
    expect(del.size).toBe(12);
    const un = union('u', [nested('big', struct('b', [bytes('x', 13)], { packed: true })), nested('del', del)], { packed: false });
    expect(un.members.map((m) => m.offset)).toEqual([0, 0]);
    expect(un.size).toBe(16); // 13 rounded to 4: the Linux hv_kvp_msg body effect in small
    expect(un.align).toBe(4);
    const packedUn = union('u', [nested('big', struct('b', [bytes('x', 13)], { packed: true })), nested('del', del)], { packed: true });
    expect(packedUn.size).toBe(13);
  });

  it('keeps the size of an unpacked aggregate nested in a packed one, but places it unaligned', () => {
    const inner = struct('inner', [u32('a'), u8('b')], { packed: false }); // size 8
    const outer = struct('outer', [u8('x'), nested('in', inner), u8('y')], { packed: true });
    expect(offsets(outer)).toEqual([0, 1, 9]);
    expect(outer.size).toBe(10);
  });
});

describe('leaves and locate', () => {
  const inner = struct('inner', [u16('a'), bytes('b', 6)], { packed: true });
  const hdr = union('hdr', [nested('h', struct('h', [u8('op'), u8('pool'), u16('pad')], { packed: true })), u32('error')], { packed: true });
  const top = struct('top', [nested('hdr', hdr), u32('n'), nested('inner', inner)], { packed: true });

  it('lists every leaf, union members included, with absolute offsets and dotted paths', () => {
    expect(leaves(top)).toEqual([
      { path: 'hdr.h.op', offset: 0, size: 1, type: 'u8' },
      { path: 'hdr.h.pool', offset: 1, size: 1, type: 'u8' },
      { path: 'hdr.h.pad', offset: 2, size: 2, type: 'u16' },
      { path: 'hdr.error', offset: 0, size: 4, type: 'u32' },
      { path: 'n', offset: 4, size: 4, type: 'u32' },
      { path: 'inner.a', offset: 8, size: 2, type: 'u16' },
      { path: 'inner.b', offset: 10, size: 6, type: 'bytes' },
    ]);
  });

  it('adds a base offset', () => {
    expect(leaves(inner, 100).map((l) => l.offset)).toEqual([100, 102]);
  });

  it('locates leaves and aggregates by path', () => {
    expect(locate(top, 'inner.b').offset).toBe(10);
    expect(locate(top, 'inner').offset).toBe(8);
    expect(locate(top, 'inner').member.size).toBe(8);
    expect(locate(top, 'hdr.error').offset).toBe(0);
  });

  it('throws naming the path for a missing member or a path through a leaf', () => {
    expect(() => locate(top, 'inner.c')).toThrow(/no member inner\.c/);
    expect(() => locate(top, 'n.x')).toThrow(/n is not an aggregate/);
    expect(() => locate(top, '')).toThrow();
  });
});

describe('readAggregate / writeAggregate', () => {
  const s = struct('s', [u8('a'), u16('b'), u32('c'), i32('d'), u64('e'), bytes('f', 4)], { packed: true });

  it('reads little-endian scalars, signed i32, u64 as bigint and byte fields as views', () => {
    const buf = Buffer.alloc(s.size);
    buf[0] = 0xfe;
    buf.writeUInt16LE(0x1234, 1);
    buf.writeUInt32LE(0xdeadbeef, 3);
    buf.writeInt32LE(-5, 7);
    buf.writeBigUInt64LE(0xfedcba9876543210n, 11);
    buf.write('wxyz', 19, 'latin1');
    const d = readAggregate(buf, s);
    expect(d).toMatchObject({ a: 0xfe, b: 0x1234, c: 0xdeadbeef, d: -5, e: 0xfedcba9876543210n });
    expect((d.f as Buffer).toString('latin1')).toBe('wxyz');
    // A view, not a copy: callers decode in place.
    buf[19] = 0x41;
    expect((d.f as Buffer)[0]).toBe(0x41);
  });

  it('writes at the declared offsets, zero-filling the rest of a byte field', () => {
    const buf = Buffer.alloc(s.size, 0xaa);
    writeAggregate(buf, s, { a: 1, b: 2, c: 3, d: -1, e: 4n, f: Buffer.from([9]) });
    const want = Buffer.alloc(s.size);
    want[0] = 1;
    want.writeUInt16LE(2, 1);
    want.writeUInt32LE(3, 3);
    want.writeInt32LE(-1, 7);
    want.writeBigUInt64LE(4n, 11);
    want[19] = 9;
    expect(buf.toString('hex')).toBe(want.toString('hex'));
  });

  it('leaves members that are not given as they are', () => {
    const buf = Buffer.alloc(s.size, 0xaa);
    writeAggregate(buf, s, { a: 1 });
    expect(buf[0]).toBe(1);
    expect(buf.subarray(1).every((x) => x === 0xaa)).toBe(true);
  });

  it('skips unions when reading (the caller picks the live member) and expands nested structs', () => {
    const inner = struct('inner', [u8('x')], { packed: true });
    const t = struct('t', [nested('u', union('u', [u8('p'), u16('q')], { packed: true })), nested('i', inner)], { packed: true });
    const buf = Buffer.from([1, 2, 3]);
    expect(readAggregate(buf, t)).toEqual({ i: { x: 3 } });
    writeAggregate(buf, t, { i: { x: 7 } });
    expect([...buf]).toEqual([1, 2, 7]);
  });

  it('rejects values that do not fit their field', () => {
    const buf = Buffer.alloc(s.size);
    expect(() => writeAggregate(buf, s, { f: Buffer.alloc(5) })).toThrow(RangeError);
    expect(() => writeAggregate(buf, s, { f: 3 })).toThrow(TypeError);
    expect(() => writeAggregate(buf, s, { a: Buffer.alloc(1) })).toThrow(TypeError);
    expect(() => writeAggregate(buf, s, { a: 256 })).toThrow(RangeError);
  });
});
