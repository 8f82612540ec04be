/**
 * The on-disk pool record (spec kvp.md section 1), shared with the C
 * daemons and every third-party reader: a flat array of 2560-byte records,
 * no header; each record a 512-byte key field and a 2048-byte value field,
 * each a NUL-terminated string. The C daemons leave stale bytes after the
 * NUL; hvguest zero-fills (pitfall L4).
 */
import { isUtf8 } from 'node:buffer';
import { PoolError } from './pool-error.js';

/** The record's fields, declared once: name, offset in the record, size. */
export const POOL_RECORD_FIELDS = [
  { name: 'key', offset: 0, size: 512 },
  { name: 'value', offset: 512, size: 2048 },
] as const;

export const POOL_KEY_SIZE = POOL_RECORD_FIELDS[0].size;
export const POOL_VALUE_SIZE = POOL_RECORD_FIELDS[1].size;
export const POOL_RECORD_SIZE = POOL_KEY_SIZE + POOL_VALUE_SIZE;
export const POOL_COUNT = 5;

/** File name of pool `n` inside the pool directory. */
export const poolFileName = (n: number): string => `.kvp_pool_${n}`;

/** One decoded record: the bytes before each NUL, or why it is unusable. */
export type DecodedRecord = { ok: true; key: Buffer; value: Buffer; utf8: boolean } | { ok: false; reason: string };

/**
 * Decode the record at `offset` of `buf` (which must hold the whole
 * record). The returned key and value are copies, so the caller may drop
 * `buf`. A field without a NUL makes the record unusable: the C daemons
 * would read past it.
 */
export function decodeRecord(buf: Buffer, offset = 0): DecodedRecord {
  const keyField = buf.subarray(offset, offset + POOL_KEY_SIZE);
  const valueField = buf.subarray(offset + POOL_KEY_SIZE, offset + POOL_RECORD_SIZE);
  const k = keyField.indexOf(0);
  if (k < 0) return { ok: false, reason: 'key field has no NUL' };
  const v = valueField.indexOf(0);
  if (v < 0) return { ok: false, reason: 'value field has no NUL' };
  const key = Buffer.from(keyField.subarray(0, k));
  const value = Buffer.from(valueField.subarray(0, v));
  return { ok: true, key, value, utf8: isUtf8(key) && isUtf8(value) };
}

/** Throw PoolError EINVAL unless `key` and `value` fit their fields with a NUL and contain none. */
export function checkRecord(key: Buffer, value: Buffer): void {
  if (key.length > POOL_KEY_SIZE - 1) throw new PoolError('EINVAL', 'set', `key is ${key.length} bytes, at most ${POOL_KEY_SIZE - 1} fit the key field`);
  if (value.length > POOL_VALUE_SIZE - 1) throw new PoolError('EINVAL', 'set', `value is ${value.length} bytes, at most ${POOL_VALUE_SIZE - 1} fit the value field`);
  if (key.includes(0)) throw new PoolError('EINVAL', 'set', 'key contains a NUL byte, which the record format cannot store');
  if (value.includes(0)) throw new PoolError('EINVAL', 'set', 'value contains a NUL byte, which the record format cannot store');
}

/** One 2560-byte record: key and value NUL-terminated and zero-filled to the end of their fields. */
export function encodeRecord(key: Buffer, value: Buffer): Buffer {
  checkRecord(key, value);
  const rec = Buffer.alloc(POOL_RECORD_SIZE);
  key.copy(rec, POOL_RECORD_FIELDS[0].offset);
  value.copy(rec, POOL_RECORD_FIELDS[1].offset);
  return rec;
}
