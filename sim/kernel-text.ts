/**
 * The kernels' UTF-16 <-> UTF-8 conversions, with their size arithmetic
 * and truncation rules but a correct treatment of surrogate pairs (pitfall
 * F6: FreeBSD's own converter drops every pair; the simulator deliberately
 * does not copy that, so non-BMP text round-trips here but not on a real
 * FreeBSD kernel).
 */

const isHigh = (u: number): boolean => u >= 0xd800 && u <= 0xdbff;
const isLow = (u: number): boolean => u >= 0xdc00 && u <= 0xdfff;

/** `count` UTF-16LE code units from `offset`, stopping at the end of the buffer. */
export function unitsAt(buf: Buffer, offset: number, count: number): number[] {
  const n = Math.max(0, Math.min(count, Math.floor((buf.length - offset) / 2)));
  return Array.from({ length: n }, (_, i) => buf.readUInt16LE(offset + 2 * i));
}

/** Write code units as UTF-16LE at `offset`. */
export function putUnits(buf: Buffer, offset: number, units: readonly number[]): void {
  units.forEach((u, i) => buf.writeUInt16LE(u, offset + 2 * i));
}

/** Code points of units, pairs joined; a lone surrogate is -1. */
function* codePoints(units: readonly number[]): Generator<{ cp: number; width: number }> {
  for (let i = 0; i < units.length; i++) {
    const u = units[i]!;
    if (isHigh(u) && i + 1 < units.length && isLow(units[i + 1]!)) {
      yield { cp: 0x10000 + ((u - 0xd800) << 10) + (units[i + 1]! - 0xdc00), width: 2 };
      i++;
    } else if (isHigh(u) || isLow(u)) yield { cp: -1, width: 1 };
    else yield { cp: u, width: 1 };
  }
}

const utf8Len = (cp: number): number => (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
const utf8Of = (cp: number): Buffer => Buffer.from(String.fromCodePoint(cp), 'utf8');

/**
 * FreeBSD utf16_to_utf8(): converts all `units` (NUL units included, each
 * one 0 byte), writes whole characters while they fit in `dstLen` bytes,
 * and keeps counting after the output is full. The kernel then halves the
 * count to get the daemon's size field (pitfall F5).
 */
export function freebsdUtf16ToUtf8(units: readonly number[], dstLen: number): { bytes: Buffer; count: number } {
  const out: Buffer[] = [];
  let count = 0;
  let full = false;
  for (const { cp } of codePoints(units)) {
    if (cp < 0) continue; // lone surrogate: counted as an error, no output
    const l = utf8Len(cp);
    if (!full && count + l <= dstLen) out.push(utf8Of(cp));
    else full = true;
    count += l;
  }
  return { bytes: Buffer.concat(out), count };
}

/**
 * FreeBSD utf8_to_utf16(): converts the whole string, writes units one by
 * one while they fit in `dstUnits` (a pair can be cut in half), and returns
 * the untruncated unit count (pitfall F7: the host size comes from it).
 * Invalid UTF-8 becomes U+FFFD here; the kernel skips it.
 */
export function freebsdUtf8ToUtf16(bytes: Buffer, dstUnits: number): { units: number[]; count: number } {
  const all = unitsAt(Buffer.from(bytes.toString('utf8'), 'utf16le'), 0, Infinity);
  return { units: all.slice(0, dstUnits), count: all.length };
}

/**
 * Linux utf16s_to_utf8s(): stops at the first NUL unit or after `inUnits`
 * units, skips lone surrogates, and skips (without stopping) a character
 * that no longer fits in `maxOut` bytes. Returns the bytes written.
 */
export function linuxUtf16ToUtf8(units: readonly number[], inUnits: number, maxOut: number): Buffer {
  const out: Buffer[] = [];
  let left = maxOut;
  const end = units.indexOf(0);
  const src = units.slice(0, Math.min(inUnits, end < 0 ? units.length : end));
  for (const { cp } of codePoints(src)) {
    if (left <= 0) break;
    if (cp < 0) continue;
    const b = utf8Of(cp);
    if (b.length > left) continue;
    out.push(b);
    left -= b.length;
  }
  return Buffer.concat(out);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Linux utf8s_to_utf16s(): at most `maxOut` units, never half a pair;
 * undefined (the kernel's -EINVAL) when the bytes are not valid UTF-8.
 */
export function linuxUtf8ToUtf16(bytes: Buffer, maxOut: number): number[] | undefined {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
  const out: number[] = [];
  for (const ch of text) {
    const u = unitsAt(Buffer.from(ch, 'utf16le'), 0, 2);
    if (out.length + u.length > maxOut) break;
    out.push(...u);
  }
  return out;
}

/** The bytes before the first NUL from `offset`, like strlen() on a buffer that may lack a terminator (bounded by its end). */
export function cstrAt(buf: Buffer, offset: number): Buffer {
  const end = buf.indexOf(0, offset);
  return buf.subarray(offset, end < 0 ? buf.length : end);
}
