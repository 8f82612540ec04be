/**
 * The ";" lists of the KVP IP strings and the size limits they must fit.
 *
 * Two list styles exist (wire.md section 6): FreeBSD's daemon ends every
 * item with ";" ("10.0.0.5;"), Linux's daemon joins ip_addr and sub_net
 * with ";" and no trailing ";" but still ends each gateway and DNS item
 * with ";" (both come from the same line-reader in the C code).
 *
 * A list that does not fit is cut after the last whole item, never inside
 * one: a half address is worse than a missing one.
 */

/** How the items of one list are written. */
export type ListStyle = 'terminated' | 'joined';

/**
 * A text field's capacity. `bytes` is the daemon-side UTF-8 field without
 * its NUL; `units` is what survives the kernel's conversion to UTF-16 for
 * the host (wire.md section 7), so text over it would be cut mid-item by
 * the kernel instead of by us.
 */
export interface FieldLimit {
  bytes: number;
  units: number;
}

/**
 * Auto-pool values: 2047 UTF-8 bytes in the 2048-byte field, and the
 * kernel hands the host at most 1022 UTF-16 units (pitfalls F7).
 */
export const VALUE_LIMIT: FieldLimit = { bytes: 2047, units: 1022 };

/**
 * GET_IP_INFO ip_addr / sub_net / dns_addr: 2048-byte daemon fields, but the
 * Linux kernel converts at most 1024 bytes into a 1024-unit host field with
 * no terminator; 1023 leaves the host a zero unit after the text.
 */
export const IP_LIST_LIMIT: FieldLimit = { bytes: 2047, units: 1023 };

/** GET_IP_INFO gate_way: 1024-byte daemon field, 512 units on the host side. */
export const GATEWAY_LIMIT: FieldLimit = { bytes: 1023, units: 511 };

/** True when `text` fits the field. */
export function fits(text: string, limit: FieldLimit): boolean {
  return text.length <= limit.units && Buffer.byteLength(text, 'utf8') <= limit.bytes;
}

/** Items written in one style, without any size check. */
export function renderList(items: readonly string[], style: ListStyle): string {
  return style === 'terminated' ? items.map((i) => `${i};`).join('') : items.join(';');
}

/** How many leading items of the list fit the field when written in `style`. */
export function fittingCount(items: readonly string[], style: ListStyle, limit: FieldLimit): number {
  let n = 0;
  // Grows item by item: lists are short and this keeps the rule obvious.
  while (n < items.length && fits(renderList(items.slice(0, n + 1), style), limit)) n++;
  return n;
}

/** A rendered list cut after the last whole item that fits, and how many items were dropped. */
export function fitList(items: readonly string[], style: ListStyle, limit: FieldLimit): { text: string; dropped: number } {
  const n = fittingCount(items, style, limit);
  return { text: renderList(items.slice(0, n), style), dropped: items.length - n };
}

/** Plain text cut at a character boundary so it fits the field (never splits a surrogate pair). */
export function fitText(text: string, limit: FieldLimit): string {
  if (fits(text, limit)) return text;
  let units = 0;
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    units += ch.length;
    bytes += Buffer.byteLength(ch, 'utf8');
    if (units > limit.units || bytes > limit.bytes) break;
    end += ch.length;
  }
  return text.slice(0, end);
}
