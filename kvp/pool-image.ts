/**
 * The in-memory copy of one pool file: one slot per whole record, in file
 * order, and an index from key bytes to the slots holding that key, so
 * get/set/delete cost O(1) in the number of records.
 *
 * Slots that are unusable (a field without NUL) stay in the array so that
 * slot i is always record i of the file, but they are not indexed, listed
 * or enumerated. Duplicate keys (written by other programs, pitfall P18)
 * all stay: list and at() show every one, lookups use the first in file
 * order.
 */
import type { PoolRecord } from './types.js';

export interface RecordSlot {
  key: Buffer;
  value: Buffer;
  /** The key bytes as a latin1 string: a lossless Map key. */
  id: string;
}

export type Slot = RecordSlot | { invalid: string };

export const isRecord = (s: Slot | undefined): s is RecordSlot => s !== undefined && !('invalid' in s);

/** Index key for a key's bytes. */
export const keyId = (key: Buffer): string => key.toString('latin1');

export class PoolImage {
  readonly slots: Slot[] = [];
  private readonly index = new Map<string, number[]>();
  private invalidCount = 0;
  /** Slot numbers of the usable records, built only when unusable ones exist. */
  private order: number[] | undefined;

  /** Number of usable records. */
  get count(): number {
    return this.slots.length - this.invalidCount;
  }

  get invalid(): number {
    return this.invalidCount;
  }

  /** Add a slot at the end (record `slots.length` of the file). */
  push(slot: Slot): void {
    const i = this.slots.length;
    this.slots.push(slot);
    if (isRecord(slot)) {
      const list = this.index.get(slot.id);
      if (list) list.push(i);
      else this.index.set(slot.id, [i]);
    } else {
      this.invalidCount++;
    }
    this.order = undefined;
  }

  /** Slot number of the first record with this key. */
  first(key: Buffer): number | undefined {
    return this.index.get(keyId(key))?.[0];
  }

  setValue(i: number, value: Buffer): void {
    (this.slots[i] as RecordSlot).value = value;
  }

  /** Remove slot `i` the way the file does: the last slot moves into its place. */
  remove(i: number): void {
    const last = this.slots.length - 1;
    const gone = this.slots[i]!;
    if (isRecord(gone)) this.unindex(gone.id, i);
    else this.invalidCount--;
    if (i !== last) {
      const moved = this.slots[last]!;
      if (isRecord(moved)) {
        const list = this.index.get(moved.id)!;
        list[list.indexOf(last)] = i;
        // Keep ascending order so index[0] stays the first in file order.
        list.sort((a, b) => a - b);
      }
      this.slots[i] = moved;
    }
    this.slots.pop();
    this.order = undefined;
  }

  private unindex(id: string, i: number): void {
    const list = this.index.get(id)!;
    list.splice(list.indexOf(i), 1);
    if (list.length === 0) this.index.delete(id);
  }

  /** The n-th usable record in file order (the host's ENUMERATE index). */
  at(n: number): RecordSlot | undefined {
    if (this.invalidCount === 0) return this.slots[n] as RecordSlot | undefined;
    this.order ??= this.slots.flatMap((s, i) => (isRecord(s) ? [i] : []));
    const i = this.order[n];
    return i === undefined ? undefined : (this.slots[i] as RecordSlot);
  }

  /** Every usable record in file order. */
  records(): RecordSlot[] {
    return this.slots.filter(isRecord);
  }
}

/** A copy for callers, so they cannot change the cache. */
export const toRecord = (s: RecordSlot): PoolRecord => ({ key: Buffer.from(s.key), value: Buffer.from(s.value) });
