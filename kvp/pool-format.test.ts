/** The pool record against spec/kvp.md section 1 and bytes built by hand. */
import { describe, expect, it } from 'vitest';
import { PoolError } from './pool-error.js';
import { checkRecord, decodeRecord, encodeRecord, POOL_KEY_SIZE, POOL_RECORD_FIELDS, POOL_RECORD_SIZE, POOL_VALUE_SIZE, poolFileName } from './pool-format.js';

describe('pool record', () => {
  it('is the spec\'s 512-byte key and 2048-byte value, 2560 bytes, files .kvp_pool_0..4', () => {
    expect(POOL_RECORD_FIELDS).toEqual([
      { name: 'key', offset: 0, size: 512 },
      { name: 'value', offset: 512, size: 2048 },
    ]);
    expect([POOL_KEY_SIZE, POOL_VALUE_SIZE, POOL_RECORD_SIZE]).toEqual([512, 2048, 2560]);
    expect([0, 4].map(poolFileName)).toEqual(['.kvp_pool_0', '.kvp_pool_4']);
  });

  it('encodes NUL-terminated UTF-8, zero-filled to the end of each field', () => {
    const got = encodeRecord(Buffer.from('Ключ'), Buffer.from('v'));
    const want = Buffer.alloc(2560);
    [0xd0, 0x9a, 0xd0, 0xbb, 0xd1, 0x8e, 0xd1, 0x87].forEach((b, i) => (want[i] = b));
    want[512] = 0x76;
    expect(got.equals(want)).toBe(true);
  });

  it('decodes up to the NUL and ignores stale bytes after it (the C daemons leave them)', () => {
    const r = Buffer.alloc(2560, 0x41);
    r.write('key\0', 0, 'latin1');
    r.write('val\0', 512, 'latin1');
    const d = decodeRecord(r);
    expect(d).toEqual({ ok: true, key: Buffer.from('key'), value: Buffer.from('val'), utf8: true });
    // Copies: the caller's buffer may be reused.
    r.fill(0);
    expect(d.ok && d.key.toString()).toBe('key');
  });

  it('marks records with a field lacking its NUL unusable, and non-UTF-8 ones as such', () => {
    const noKeyNul = Buffer.alloc(2560, 0x41);
    expect(decodeRecord(noKeyNul)).toEqual({ ok: false, reason: 'key field has no NUL' });
    const noValueNul = Buffer.alloc(2560, 0x41);
    noValueNul[3] = 0;
    expect(decodeRecord(noValueNul)).toEqual({ ok: false, reason: 'value field has no NUL' });
    const latin1 = Buffer.alloc(2560);
    latin1[0] = 0xe9;
    const d = decodeRecord(latin1);
    expect(d.ok && d.utf8).toBe(false);
    expect(d.ok && [...d.key]).toEqual([0xe9]);
  });

  it('decodes at an offset inside a larger buffer', () => {
    const two = Buffer.concat([encodeRecord(Buffer.from('a'), Buffer.from('1')), encodeRecord(Buffer.from('b'), Buffer.from('2'))]);
    const d = decodeRecord(two, 2560);
    expect(d.ok && `${d.key}=${d.value}`).toBe('b=2');
  });

  it('rejects what the format cannot hold with EINVAL', () => {
    expect(() => checkRecord(Buffer.alloc(511, 0x61), Buffer.alloc(2047, 0x61))).not.toThrow();
    for (const [k, v, msg] of [
      [Buffer.alloc(512, 0x61), Buffer.alloc(0), /key is 512 bytes, at most 511/],
      [Buffer.from('k'), Buffer.alloc(2048, 0x61), /value is 2048 bytes, at most 2047/],
      [Buffer.from('a\0b'), Buffer.alloc(0), /key contains a NUL/],
      [Buffer.from('k'), Buffer.from('a\0'), /value contains a NUL/],
    ] as const) {
      let err: unknown;
      try {
        checkRecord(k, v);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PoolError);
      expect((err as PoolError).code).toBe('EINVAL');
      expect((err as PoolError).message).toMatch(msg);
    }
  });
});
