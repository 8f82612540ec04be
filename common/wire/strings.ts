/**
 * NUL-terminated UTF-8 strings in fixed-size byte fields (spec/wire.md
 * section 7): always a NUL inside the field, the rest zeroed, sizes count
 * the UTF-8 bytes including the NUL.
 */
import { WireError } from './errors.js';

// ignoreBOM keeps a leading U+FEFF in the text: without it the decoder
// silently drops those three bytes, so a key "\uFEFFabc" would read as "abc"
// and re-encode to different bytes.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The string before the first NUL of a field; an error when there is no NUL or the bytes are not UTF-8. */
export function readCString(field: Buffer, name = 'string'): string | WireError {
  const end = field.indexOf(0);
  if (end < 0) return new WireError('ENOTERM', `${name}: no NUL terminator within ${field.length} bytes`, name);
  try {
    return strictUtf8.decode(field.subarray(0, end));
  } catch {
    return new WireError('EUTF8', `${name}: not valid UTF-8`, name);
  }
}

/** The bytes before the first NUL, or the whole field when there is none. */
export function cstringBytes(field: Buffer): Buffer {
  const end = field.indexOf(0);
  return end < 0 ? field : field.subarray(0, end);
}

/** Encode text for a field of `size` bytes: UTF-8, then NUL; an error when text plus NUL does not fit or text holds a NUL. */
export function encodeCString(text: string, size: number, name = 'string'): Buffer | WireError {
  const b = Buffer.from(text, 'utf8');
  if (b.includes(0)) return new WireError('EVALUE', `${name}: contains a NUL character`, name);
  if (b.length + 1 > size) return new WireError('ETOOLONG', `${name}: ${b.length} bytes + NUL do not fit in ${size}`, name);
  return b;
}

/** UTF-8 byte count of text including the terminator, as the size fields count it. */
export const cstringSize = (text: string): number => Buffer.byteLength(text, 'utf8') + 1;
