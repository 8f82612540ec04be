/**
 * NUL-terminated UTF-8 fields (spec/wire.md section 7).
 */
import { describe, expect, it } from 'vitest';
import { WireError } from './errors.js';
import { cstringBytes, cstringSize, encodeCString, readCString } from './strings.js';

const code = (r: unknown): string | undefined => (r instanceof WireError ? r.code : undefined);

describe('readCString', () => {
  it('reads up to the first NUL and ignores what follows it', () => {
    expect(readCString(Buffer.from('Color\0garbage\xff', 'latin1'))).toBe('Color');
    expect(readCString(Buffer.alloc(8))).toBe('');
  });

  it('decodes multi-byte UTF-8', () => {
    expect(readCString(Buffer.from('héllo ☃ 𝄞\0', 'utf8'))).toBe('héllo ☃ 𝄞');
  });

  it('keeps a leading byte-order mark (the bytes must re-encode identically)', () => {
    const field = Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0]);
    const s = readCString(field);
    expect(s).toBe('\uFEFFa');
    expect(Buffer.from(s as string, 'utf8').equals(field.subarray(0, 4))).toBe(true);
  });

  it('a full field without NUL is ENOTERM, naming the field', () => {
    const r = readCString(Buffer.from('abcd'), 'key');
    expect(code(r)).toBe('ENOTERM');
    expect((r as WireError).field).toBe('key');
    expect((r as WireError).message).toMatch(/^key: .*4 bytes/);
    expect(code(readCString(Buffer.alloc(0)))).toBe('ENOTERM');
  });

  it.each([
    ['a lone continuation byte', [0x80]],
    ['0xff', [0x61, 0xff]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['an overlong NUL', [0xc0, 0x80]],
    ['a UTF-16 surrogate in UTF-8 (CESU)', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ])('%s is EUTF8', (_name, bytes) => {
    const r = readCString(Buffer.from([...bytes, 0]), 'value');
    expect(code(r)).toBe('EUTF8');
    expect((r as WireError).field).toBe('value');
  });

  it('does not throw on any single byte followed by NUL', () => {
    for (let b = 0; b < 256; b++) expect(() => readCString(Buffer.from([b, 0]))).not.toThrow();
  });
});

describe('cstringBytes', () => {
  it('cuts at the first NUL, or returns the whole field', () => {
    expect(cstringBytes(Buffer.from('ab\0cd')).toString()).toBe('ab');
    expect(cstringBytes(Buffer.from('abcd')).toString()).toBe('abcd');
  });
});

describe('encodeCString and cstringSize', () => {
  it('counts UTF-8 bytes plus the NUL, as the size fields do', () => {
    expect(cstringSize('Color')).toBe(6);
    expect(cstringSize('Blue')).toBe(5);
    expect(cstringSize('')).toBe(1);
    expect(cstringSize('é')).toBe(3);
    expect(cstringSize('𝄞')).toBe(5);
  });

  it('accepts text that leaves exactly one byte for the NUL', () => {
    const r = encodeCString('a'.repeat(511), 512);
    expect(Buffer.isBuffer(r) && r.length).toBe(511);
  });

  it('refuses text that leaves no room for the NUL (counting bytes, not characters)', () => {
    const r = encodeCString('a'.repeat(512), 512, 'key');
    expect(code(r)).toBe('ETOOLONG');
    expect((r as WireError).field).toBe('key');
    expect(code(encodeCString('é'.repeat(256), 512))).toBe('ETOOLONG'); // 256 chars, 512 bytes
    expect(Buffer.isBuffer(encodeCString('é'.repeat(255), 512))).toBe(true);
  });

  it('refuses an embedded NUL, which would cut the string short', () => {
    expect(code(encodeCString('a\0b', 16))).toBe('EVALUE');
  });
});
