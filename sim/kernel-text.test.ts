import { describe, expect, it } from 'vitest';
import { cstrAt, freebsdUtf16ToUtf8, freebsdUtf8ToUtf16, linuxUtf16ToUtf8, linuxUtf8ToUtf16, unitsAt } from './kernel-text.js';

const units = (s: string): number[] => [...s].flatMap((c) => (c.length === 2 ? [c.charCodeAt(0), c.charCodeAt(1)] : [c.charCodeAt(0)]));

describe('FreeBSD utf16_to_utf8 arithmetic', () => {
  it('converts NUL units too and keeps counting past a full output', () => {
    const r = freebsdUtf16ToUtf8([...units('ab'), 0, 0], 3);
    expect([...r.bytes]).toEqual([0x61, 0x62, 0]);
    expect(r.count).toBe(4);
  });

  it('writes only whole characters, stops writing once one does not fit', () => {
    const r = freebsdUtf16ToUtf8(units('aé b'), 2); // é needs 2 bytes at offset 1: does not fit, nothing after it is written
    expect([...r.bytes]).toEqual([0x61]);
    expect(r.count).toBe(5);
  });

  it('converts surrogate pairs correctly (the kernel drops them: pitfall F6, deliberately not copied)', () => {
    expect(freebsdUtf16ToUtf8(units('😀'), 10).bytes.toString()).toBe('😀');
    expect(freebsdUtf16ToUtf8([0xd83d, 0x41], 10).bytes.toString()).toBe('A'); // a lone surrogate is skipped
  });
});

describe('FreeBSD utf8_to_utf16 arithmetic', () => {
  it('returns the untruncated count and writes unit by unit (a pair can be cut)', () => {
    const r = freebsdUtf8ToUtf16(Buffer.from('a😀'), 2);
    expect(r.units).toEqual([0x61, 0xd83d]);
    expect(r.count).toBe(3);
  });
});

describe('Linux utf16s_to_utf8s', () => {
  it('stops at the first NUL or after inUnits units', () => {
    expect(linuxUtf16ToUtf8([...units('ab'), 0, ...units('cd')], 99, 99).toString()).toBe('ab');
    expect(linuxUtf16ToUtf8(units('abcd'), 2, 99).toString()).toBe('ab');
  });

  it('skips a character that does not fit and goes on with the next', () => {
    expect(linuxUtf16ToUtf8(units('a€b'), 9, 2).toString()).toBe('ab');
  });

  it('joins pairs and skips lone surrogates', () => {
    expect(linuxUtf16ToUtf8([0xdc00, ...units('😀'), 0xd800, 0x41], 9, 99).toString()).toBe('😀A');
  });
});

describe('Linux utf8s_to_utf16s', () => {
  it('fails on invalid UTF-8 and never writes half a pair', () => {
    expect(linuxUtf8ToUtf16(Buffer.from([0x61, 0xc0, 0x80]), 10)).toBeUndefined();
    expect(linuxUtf8ToUtf16(Buffer.from('a😀'), 2)).toEqual([0x61]);
    expect(linuxUtf8ToUtf16(Buffer.from('a😀'), 3)).toEqual([0x61, 0xd83d, 0xde00]);
  });
});

describe('helpers', () => {
  it('unitsAt stops at the end of the buffer; cstrAt without a NUL runs to the end', () => {
    expect(unitsAt(Buffer.from([1, 0, 2, 0, 3]), 0, 10)).toEqual([1, 2]);
    expect(cstrAt(Buffer.from('abc'), 1).toString()).toBe('bc');
    expect(cstrAt(Buffer.from('ab\0c'), 0).toString()).toBe('ab');
  });
});
