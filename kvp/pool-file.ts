/**
 * One pool file (.kvp_pool_N), shared with other writers.
 *
 * Every operation runs under the whole-file locks (common/os/locks.ts) on
 * the one long-lived descriptor and, in order: reopens the file if it was
 * replaced or removed; finishes a change a dead writer left in the
 * journal; re-reads the whole file only if it changed since our last look
 * (inode, size, mtime, ctime, or the journal's generation counter, which
 * every hvguest writer bumps); then works on the in-memory copy.
 *
 * Changes are in place on the same inode, never by rename (the C daemon
 * and others keep long-lived descriptors and locks on it), and each costs
 * O(1) bytes: SET of an existing key rewrites that one record, a new key
 * appends one, DELETE copies the last record into the hole and truncates
 * one record off the end. Record order is therefore not kept on delete
 * (the C daemons shift; Microsoft's sample moves the last record, as here);
 * readers must not depend on order (spec kvp.md section 1).
 *
 * Crash safety: each change is first written to the journal with the
 * before and after bytes and synced, then applied and synced, then the
 * journal is emptied. After a kill -9 at any point the next locked
 * operation by any hvguest process (and the store's open) leaves the pool
 * with either the old or the new content: a torn or unstarted append is
 * undone (even when another writer appended behind the torn bytes: their
 * records are moved back into line), a started SET or DELETE is finished
 * (pool-change.ts). Until then, readers that know nothing of the journal
 * may see a torn record or, mid-delete, the moved record twice.
 *
 * A trailing partial record (a writer died mid-append, or a tool wrote
 * garbage) is ignored by readers and left in place until the file length
 * must change; then its bytes move to `.hvguest_torn_N_<ms>_<pid>` in the
 * pool directory, with a warning, before the file is cut back to whole
 * records. Nothing is destroyed silently.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { monotonicMs, whileHeld, type HeldLock, type LockMode } from '../common/os/locks.js';
import { applyChange, replayChange, type ChangeTarget } from './pool-change.js';
import { codeOf, poolError, PoolError } from './pool-error.js';
import { decodeRecord, encodeRecord, POOL_RECORD_SIZE as R, poolFileName } from './pool-format.js';
import { O, type FileStat, type PoolFs } from './pool-fs.js';
import { keyId, PoolImage, toRecord, type RecordSlot } from './pool-image.js';
import { Journal, journalFileName, type JournalEntry } from './pool-journal.js';
import type { PoolRecord } from './types.js';

export interface PoolFileOptions {
  fs: PoolFs;
  dir: string;
  pool: number;
  /** Open O_RDONLY, take read locks, never write (for unprivileged hvctl list/get). */
  readOnly: boolean;
  /** Take the whole-file locks on `fd`. */
  lock: (fd: number, file: string, mode: LockMode) => HeldLock;
  log?: Logger;
  /** Wall clock in ms (tests move it). */
  now?: () => number;
}

/** Counts for one pool (hvctl and logs report pool sizes, pitfall P23). */
export interface PoolInfo {
  pool: number;
  file: string;
  /** Usable records. */
  records: number;
  /** Whole records skipped because a field has no NUL (kept on disk). */
  unusable: number;
  /** Bytes after the last whole record (kept on disk). */
  tailBytes: number;
  bytes: number;
}

interface Seen extends FileStat {
  gen: bigint;
  /** False when the file changed so recently that another same-size write in the same clock tick would not show. */
  trusted: boolean;
}

// Records per read when loading, so a large pool never needs one huge buffer.
const CHUNK_RECORDS = 400;
// A file whose times are this close to "now" may still change without its mtime/ctime changing (timestamp granularity).
const RACY_MS = 100;
const RACY_MS_COARSE = 2000;
/** open() failures that concern only what sits under the pool file's name (a symlink: ELOOP on Linux, EMLINK on FreeBSD). */
const UNUSABLE_NAME = new Set(['ELOOP', 'EMLINK', 'EISDIR', 'EFTYPE', 'ENXIO', 'EOPNOTSUPP']);

/** Above this many records a pool is reported once (growth is unbounded unless writers truncate, P23). */
export const POOL_WARN_RECORDS = 50_000;

export class PoolFile {
  readonly path: string;
  private fd: number | undefined;
  private readonly journal: Journal;
  private image = new PoolImage();
  private tail = 0;
  private seen: Seen | undefined;
  private lastIssues = '';
  private warnedSize = false;
  private warnedReadOnlyJournal = false;
  private closed = false;

  constructor(private readonly o: PoolFileOptions) {
    this.path = join(o.dir, poolFileName(o.pool));
    try {
      this.open();
    } catch (e) {
      // A bad name for this one pool (symlink, directory, FIFO) must not keep the daemon from serving the
      // others: the pool stays closed, and each of its operations tries again and fails with this reason.
      if (o.readOnly || !UNUSABLE_NAME.has(codeOf(e))) throw e;
      o.log?.error({ op: 'open', pool: o.pool, file: this.path, errno: codeOf(e) }, `pool file unusable, its requests will fail until it is fixed: ${e instanceof Error ? e.message : String(e)}`);
    }
    try {
      this.journal = new Journal(o.fs, join(o.dir, journalFileName(o.pool)), o.readOnly);
    } catch (e) {
      this.closeFd();
      throw e;
    }
  }

  private get now(): number {
    return (this.o.now ?? Date.now)();
  }

  /**
   * Open (or, writable, create mode 0644 whatever the umask) the pool file.
   * Never through a symbolic link, and only a regular file: anything else
   * under the name is refused with ELOOP/EMLINK or EFTYPE, and left alone.
   */
  private open(): void {
    const { fs } = this.o;
    const safe = O.NOFOLLOW | O.NONBLOCK;
    if (this.o.readOnly) {
      try {
        this.fd = this.regular(fs.open(this.path, O.RDONLY | safe, 0));
      } catch (e) {
        if (codeOf(e) !== 'ENOENT') throw e;
        this.fd = undefined;
      }
      return;
    }
    try {
      this.fd = fs.open(this.path, O.RDWR | O.CREAT | O.EXCL | safe, 0o644);
      // We created it: make it 0644 exactly (Microsoft's tests check it, P13); existing files keep their mode.
      fs.fchmod(this.fd, 0o644);
    } catch (e) {
      if (codeOf(e) !== 'EEXIST') throw e;
      this.fd = this.regular(fs.open(this.path, O.RDWR | safe, 0));
    }
  }

  /** `fd` when it is a regular file; otherwise closed, and an EFTYPE error naming the file. */
  private regular(fd: number): number {
    const type = this.o.fs.fstat(fd).mode & 0o170000;
    if (type === 0o100000) return fd;
    this.o.fs.close(fd);
    throw Object.assign(new Error(`${this.path} is not a regular file (type ${type.toString(8)}); refusing to use it as a pool file`), { code: 'EFTYPE' });
  }

  private closeFd(): void {
    if (this.fd !== undefined) this.o.fs.close(this.fd);
    this.fd = undefined;
  }

  /** Reopen when the name now points at another file (replaced) or at nothing (removed; recreated unless read-only). */
  private ensureCurrent(): void {
    const onDisk = this.o.fs.stat(this.path);
    if (this.fd !== undefined) {
      const mine = this.o.fs.fstat(this.fd);
      if (onDisk && onDisk.ino === mine.ino && onDisk.dev === mine.dev) return;
      this.o.log?.warn({ op: 'reopen', pool: this.o.pool, file: this.path }, onDisk ? 'pool file was replaced; reopening' : 'pool file was removed; recreating');
      // No lock is held here, so closing drops nothing.
      this.closeFd();
    }
    this.seen = undefined;
    if (onDisk || !this.o.readOnly) this.open();
  }

  private sameFile(): boolean {
    const onDisk = this.o.fs.stat(this.path);
    const mine = this.o.fs.fstat(this.fd!);
    return onDisk !== undefined && onDisk.ino === mine.ino && onDisk.dev === mine.dev;
  }

  /** Run `fn` with the pool locked, recovered and current; errors become PoolError. */
  private run<T>(op: string, fn: () => T, load = true): T {
    if (this.closed) throw new PoolError('EBADF', op, `${op} ${this.path}: the pool store is closed`, this.o.pool, this.path);
    try {
      for (let attempt = 0; ; attempt++) {
        this.ensureCurrent();
        this.journal.ensureCurrent();
        if (this.fd === undefined) {
          // Read-only and the file does not exist: an empty pool.
          this.image = new PoolImage();
          this.tail = 0;
          return fn();
        }
        const lock = this.o.lock(this.fd, this.path, this.o.readOnly ? 'read' : 'write');
        const done = whileHeld(lock, () => {
          // Replaced between our check and the lock: the lock sits on a file nobody else will use. Start over.
          if (!this.sameFile() && attempt < 3) return undefined;
          const look = this.journal.look();
          const gen = look.pending ? (this.recover(look.pending) ?? look.gen) : look.gen;
          if (load) this.refresh(gen);
          return { value: fn() };
        });
        if (done) return done.value;
      }
    } catch (e) {
      throw poolError(e, op, this.o.pool, this.path);
    }
  }

  // ---- reading -------------------------------------------------------------

  private refresh(gen: bigint): void {
    const st = this.o.fs.fstat(this.fd!);
    const s = this.seen;
    if (s && s.trusted && s.gen === gen && s.ino === st.ino && s.dev === st.dev && s.size === st.size && s.mtimeNs === st.mtimeNs && s.ctimeNs === st.ctimeNs) {
      return;
    }
    this.reload(st, gen);
  }

  private racy(st: FileStat): boolean {
    const newest = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
    const coarse = st.mtimeNs % 1_000_000_000n === 0n && st.ctimeNs % 1_000_000_000n === 0n;
    return BigInt(Math.floor(this.now)) * 1_000_000n - newest < BigInt(coarse ? RACY_MS_COARSE : RACY_MS) * 1_000_000n;
  }

  /** Read the whole file into a fresh image. */
  private reload(st: FileStat, gen: bigint): void {
    const started = monotonicMs();
    const whole = Math.floor(st.size / R);
    const img = new PoolImage();
    const invalid = new Map<string, number[]>();
    let notUtf8 = 0;
    let shortRead = false;
    for (let first = 0; first < whole && !shortRead; first += CHUNK_RECORDS) {
      const n = Math.min(CHUNK_RECORDS, whole - first);
      const buf = this.o.fs.pread(this.fd!, n * R, first * R);
      const got = Math.floor(buf.length / R);
      if (got < n) shortRead = true; // shrank while we read: only a writer that ignores the locks can do that
      for (let j = 0; j < got; j++) {
        const d = decodeRecord(buf, j * R);
        if (d.ok) {
          if (!d.utf8) notUtf8++;
          img.push({ key: d.key, value: d.value, id: keyId(d.key) });
        } else {
          img.push({ invalid: d.reason });
          const l = invalid.get(d.reason) ?? [];
          l.push(first + j);
          invalid.set(d.reason, l);
        }
      }
    }
    this.image = img;
    this.tail = shortRead ? 0 : st.size - whole * R;
    this.seen = { ...st, gen, trusted: !shortRead && !this.racy(st) };
    this.o.log?.debug({ op: 'load', pool: this.o.pool, records: img.count, ms: Math.round(monotonicMs() - started) }, 'pool loaded');
    this.reportIssues(invalid, notUtf8);
  }

  /** Log what the load skipped or found odd, once per distinct finding. */
  private reportIssues(invalid: Map<string, number[]>, notUtf8: number): void {
    const parts: string[] = [];
    for (const [reason, idx] of invalid) {
      parts.push(`${idx.length} record(s) skipped, ${reason} (record ${idx.slice(0, 5).join(', ')}${idx.length > 5 ? ', ...' : ''})`);
    }
    if (notUtf8 > 0) parts.push(`${notUtf8} record(s) not valid UTF-8 (returned as bytes)`);
    if (this.tail > 0) parts.push(`${this.tail} trailing byte(s) after the last whole record ignored`);
    const text = parts.join('; ');
    if (text !== '' && text !== this.lastIssues) {
      this.o.log?.warn({ op: 'load', pool: this.o.pool, file: this.path }, `pool file is not clean, nothing was changed on disk: ${text}`);
    }
    this.lastIssues = text;
    if (!this.warnedSize && this.image.slots.length > POOL_WARN_RECORDS) {
      this.warnedSize = true;
      this.o.log?.warn({ op: 'load', pool: this.o.pool, records: this.image.slots.length, bytes: this.image.slots.length * R }, 'pool is very large; nothing truncates it but its writers');
    }
  }

  // ---- the journal ---------------------------------------------------------

  private record(i: number): Buffer {
    return this.o.fs.pread(this.fd!, R, i * R);
  }

  private target(): ChangeTarget {
    return { fs: this.o.fs, fd: this.fd!, journal: this.journal };
  }

  /** Finish or undo a change left in the journal (by a dead writer, or by our own failed one); returns the generation after it. */
  private recover(e: JournalEntry): bigint | undefined {
    if (this.o.readOnly) {
      if (!this.warnedReadOnlyJournal) {
        this.warnedReadOnlyJournal = true;
        this.o.log?.warn({ op: 'replay', pool: this.o.pool, file: this.journal.path }, `an unfinished ${e.op} is in the journal; it is finished by the next writer (read-only here)`);
      }
      return undefined;
    }
    const outcome = replayChange(this.target(), e);
    this.journal.clear();
    this.seen = undefined;
    const level = outcome.startsWith('left') ? 'error' : 'warn';
    this.o.log?.[level]({ op: 'replay', pool: this.o.pool, change: e.op, ...('index' in e ? { index: e.index } : {}) }, `unfinished ${e.op} from a crashed or failed writer: ${outcome}`);
    return this.journal.generation();
  }

  /** Journal, apply, sync, forget; then update the image. On failure, resolve the half-done change before reporting it. */
  private commit(e: JournalEntry, update: () => void): void {
    const gen = this.journal.write(e);
    try {
      applyChange(this.target(), e);
    } catch (err) {
      this.seen = undefined;
      try {
        const p = this.journal.look().pending;
        if (p) this.recover(p);
      } catch {
        // Left in the journal; the next operation tries again.
      }
      throw err;
    }
    this.journal.clear();
    update();
    // We held the lock from the load to here, so this state is exactly what we know.
    this.seen = { ...this.o.fs.fstat(this.fd!), gen, trusted: true };
  }

  /** Move a trailing partial record out of the way before the file length changes (see the file comment). */
  private sealTail(): void {
    if (this.tail === 0) return;
    const fs = this.o.fs;
    const whole = this.image.slots.length * R;
    const bytes = fs.pread(this.fd!, this.tail, whole);
    const keep = join(this.o.dir, `.hvguest_torn_${this.o.pool}_${Date.now()}_${process.pid}`);
    const kfd = fs.open(keep, O.WRONLY | O.CREAT | O.EXCL, 0o600);
    try {
      fs.pwrite(kfd, bytes, 0);
      fs.fdatasync(kfd);
    } finally {
      fs.close(kfd);
    }
    fs.fsyncDir(this.o.dir);
    fs.ftruncate(this.fd!, whole);
    fs.fdatasync(this.fd!);
    this.o.log?.warn({ op: 'seal', pool: this.o.pool, file: this.path, bytes: bytes.length, kept: keep }, 'moved a partial record at the end of the pool file aside before changing its length');
    this.tail = 0;
    this.seen = { ...fs.fstat(this.fd!), gen: this.seen!.gen, trusted: true };
  }

  private writable(op: string): void {
    if (this.o.readOnly) throw new PoolError('EROFS', op, `${op} ${this.path}: the pool store was opened read-only`, this.o.pool, this.path);
  }

  // ---- the operations ------------------------------------------------------

  get(key: Buffer): PoolRecord | undefined {
    return this.run('get', () => {
      const i = this.image.first(key);
      return i === undefined ? undefined : toRecord(this.image.slots[i] as RecordSlot);
    });
  }

  set(key: Buffer, value: Buffer): void {
    this.writable('set');
    const post = encodeRecord(key, value); // throws EINVAL before any lock is taken
    this.run('set', () => {
      const i = this.image.first(key);
      if (i !== undefined) {
        const pre = this.record(i);
        if (pre.length !== R) throw new PoolError('EIO', 'set', `set ${this.path}: record ${i} vanished under the lock (a writer that ignores the locks?)`, this.o.pool, this.path);
        if (pre.equals(post)) {
          // Already there byte for byte; make sure it is on disk, as promised.
          this.o.fs.fdatasync(this.fd!);
          return;
        }
        this.commit({ op: 'set', index: i, size: this.image.slots.length * R, pre, post }, () => this.image.setValue(i, Buffer.from(value)));
        return;
      }
      this.sealTail();
      const size = this.image.slots.length * R;
      this.commit({ op: 'append', size, post }, () => this.image.push({ key: Buffer.from(key), value: Buffer.from(value), id: keyId(key) }));
    });
  }

  delete(key: Buffer): boolean {
    this.writable('delete');
    return this.run('delete', () => {
      const i = this.image.first(key);
      if (i === undefined) return false;
      this.sealTail();
      const size = this.image.slots.length * R;
      const last = this.image.slots.length - 1;
      const pre = this.record(i);
      const e: JournalEntry = i === last ? { op: 'delete', index: i, size, pre } : { op: 'delete', index: i, size, pre, moved: this.record(last) };
      this.commit(e, () => this.image.remove(i));
      return true;
    });
  }

  at(index: number): PoolRecord | undefined {
    return this.run('at', () => {
      const s = Number.isSafeInteger(index) && index >= 0 ? this.image.at(index) : undefined;
      return s ? toRecord(s) : undefined;
    });
  }

  list(): PoolRecord[] {
    return this.run('list', () => this.image.records().map(toRecord));
  }

  /** Finish a change a crashed writer left (done by every operation anyway; the store calls it at open so a restarted daemon repairs at once). */
  recoverNow(): void {
    this.run('recover', () => undefined, false);
  }

  info(): PoolInfo {
    return this.run('info', () => ({
      pool: this.o.pool,
      file: this.path,
      records: this.image.count,
      unusable: this.image.invalid,
      tailBytes: this.tail,
      bytes: this.image.slots.length * R + this.tail,
    }));
  }

  /** Close the descriptors (dropping nothing: no lock is held between operations). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.journal.close();
    } finally {
      this.closeFd();
    }
  }
}
