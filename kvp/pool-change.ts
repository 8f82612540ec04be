/**
 * Applying a journaled pool change, and finishing or undoing one that a
 * crashed (or failed) writer left half done. See pool-journal.ts for the
 * entries and pool-file.ts for when these run (always with the pool's
 * locks held).
 *
 * Replay never trusts that the file is as the journal saw it: another
 * program may have written since the crash. Each case checks the bytes:
 * every byte of a touched record must equal its "before" or its "after"
 * image (a torn write is a mix of the two); anything else means another
 * writer changed it, and it is left alone (and logged as such).
 */
import { POOL_RECORD_SIZE as R } from './pool-format.js';
import type { PoolFs } from './pool-fs.js';
import type { Journal, JournalEntry } from './pool-journal.js';

/** The pool file a change applies to. */
export interface ChangeTarget {
  fs: PoolFs;
  fd: number;
  journal: Journal;
}

export type ReplayOutcome = 'already done' | 'not started' | 'finished' | 'undone' | 'left alone: changed by another writer since';

/** Every byte of `got` equals the same byte of `a` or of `b`: a torn mix of the two, or either. */
function mixOf(got: Buffer, a: Buffer, b: Buffer): boolean {
  if (got.length !== a.length) return false;
  for (let i = 0; i < got.length; i++) if (got[i] !== a[i] && got[i] !== b[i]) return false;
  return true;
}

const ZERO_RECORD = Buffer.alloc(R);

/** Bring the file from wherever `e` left it to its "after" state (or, for a partial append, its "before" state). */
export function replayChange(t: ChangeTarget, e: JournalEntry): ReplayOutcome {
  const { fs, fd } = t;
  const size = fs.fstat(fd).size;
  const record = (i: number) => fs.pread(fd, R, i * R);
  const other = 'left alone: changed by another writer since' as const;
  /** Finish one record whose write may have been torn: it must hold `post`, or a byte mix of `pre` and `post`. */
  const finishRecord = (index: number, pre: Buffer, post: Buffer): ReplayOutcome => {
    const got = record(index);
    if (got.equals(post)) return 'already done';
    if (!mixOf(got, pre, post)) return other;
    fs.pwrite(fd, post, index * R);
    fs.fdatasync(fd);
    return 'finished';
  };
  switch (e.op) {
    case 'set': {
      if (size < (e.index + 1) * R) return other;
      return finishRecord(e.index, e.pre, e.post);
    }
    case 'append': {
      if (size <= e.size) return size === e.size ? 'undone' : other;
      const got = fs.pread(fd, Math.min(R, size - e.size), e.size);
      if (got.length === R && got.equals(e.post)) return 'already done';
      // Torn: our first p bytes (or zeros a power loss left), then possibly whole records another writer appended behind them.
      const p = (size - e.size) % R;
      if (p === 0) return 'not started'; // whole records from someone else where ours would be: none of ours got there
      if (!mixOf(got.subarray(0, p), e.post.subarray(0, p), ZERO_RECORD.subarray(0, p))) return other;
      if (size - e.size === p) {
        fs.ftruncate(fd, e.size);
        fs.fdatasync(fd);
      } else {
        // Their records start p bytes into ours, misaligned for every reader: move them back where ours began.
        shiftBack(t, e.size, p, size);
      }
      return 'undone';
    }
    case 'shift': {
      const end = e.size + e.data.length;
      if (size === end) {
        if (fs.pread(fd, e.data.length, e.size).equals(e.data)) return 'already done';
        return other;
      }
      if (size < end + e.gap || (size - end - e.gap) % R !== 0) return other;
      fs.pwrite(fd, e.data, e.size);
      if (size === end + e.gap) fs.ftruncate(fd, end);
      fs.fdatasync(fd);
      // More records were appended behind the gap while the repair was unfinished: move those too.
      if (size > end + e.gap) shiftBack(t, end, e.gap, size);
      return 'finished';
    }
    case 'delete': {
      if (e.size % R !== 0 || e.size < (e.index + 1) * R) return other;
      const last = e.size / R - 1;
      const target = e.moved ?? e.pre; // what the last record holds until the change is complete
      if (size === e.size - R) {
        if (!e.moved) return 'already done';
        // The truncate reached the disk before the copy (possible after a power loss): finish the copy.
        return finishRecord(e.index, e.pre, e.moved);
      }
      if (size < e.size || (size - e.size) % R !== 0) return other;
      if (!record(last).equals(target)) return other;
      if (e.moved) {
        const got = record(e.index);
        if (!mixOf(got, e.pre, e.moved)) return other;
        if (!got.equals(e.moved)) fs.pwrite(fd, e.moved, e.index * R);
      }
      if (size === e.size) {
        fs.ftruncate(fd, e.size - R);
        fs.fdatasync(fd);
        return 'finished';
      }
      // Others appended after the crash, so the record to drop is no longer last: drop it like any other (journaled too).
      fs.fdatasync(fd);
      deleteAt(t, last, size);
      return 'finished';
    }
  }
}

/** Journal and apply moving the bytes [at + gap, size) back to `at`, cutting the file after them. */
function shiftBack(t: ChangeTarget, at: number, gap: number, size: number): void {
  const e: JournalEntry = { op: 'shift', size: at, gap, data: t.fs.pread(t.fd, size - at - gap, at + gap) };
  t.journal.write(e);
  applyChange(t, e);
}

/** Journal and apply the removal of record `index` from a file of `size` bytes (whole records). */
function deleteAt(t: ChangeTarget, index: number, size: number): void {
  const record = (i: number) => t.fs.pread(t.fd, R, i * R);
  const last = size / R - 1;
  const pre = record(index);
  const e: JournalEntry = index === last ? { op: 'delete', index, size, pre } : { op: 'delete', index, size, pre, moved: record(last) };
  t.journal.write(e);
  applyChange(t, e);
}

/** Apply `e` to a file in its "before" state. */
export function applyChange(t: ChangeTarget, e: JournalEntry): void {
  const { fs, fd } = t;
  switch (e.op) {
    case 'set':
      fs.pwrite(fd, e.post, e.index * R);
      break;
    case 'append':
      fs.pwrite(fd, e.post, e.size);
      break;
    case 'delete':
      if (e.moved) fs.pwrite(fd, e.moved, e.index * R);
      fs.ftruncate(fd, e.size - R);
      break;
    case 'shift':
      fs.pwrite(fd, e.data, e.size);
      fs.ftruncate(fd, e.size + e.data.length);
      break;
  }
  fs.fdatasync(fd);
}
