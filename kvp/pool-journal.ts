/**
 * The intent journal that makes pool changes crash-safe, one small file
 * per pool next to the pools (`.hvguest_journal_N`; the name does not
 * match the `.kvp_pool_*` pattern readers glob for).
 *
 * A change is written here and fdatasync'ed before the pool file is
 * touched, and the journal is emptied after the pool file is synced. A
 * process that takes the pool's locks and finds an entry knows its writer
 * died (or failed) half way and finishes or undoes the change (see
 * pool-file.ts, replay). Each entry carries the before and after bytes of
 * every record it touches, so replay can tell "not started", "torn",
 * "finished" and "changed by someone else since" apart.
 *
 * Layout: a 64-byte header (magic, generation), then entries, each
 * [u32 length][u32 json length][json][byte parts (record images)][sha256 of all before].
 * Entries are appended, so a torn write of a new entry leaves the
 * previous one valid; replay uses the last valid entry.
 *
 * The generation counter in the header is bumped by every change an
 * hvguest process makes, under the pool's lock. Other hvguest processes
 * compare it to notice a same-size in-place rewrite that the file's
 * timestamps may not show (their granularity is a clock tick).
 */
import { createHash } from 'node:crypto';
import { POOL_RECORD_SIZE } from './pool-format.js';
import { O, type PoolFs } from './pool-fs.js';

export const JOURNAL_MAGIC = Buffer.from('HVGJRNL1', 'latin1');
export const JOURNAL_HEADER_SIZE = 64;
const GEN_OFFSET = 8;
const HASH_SIZE = 32;

/** File name of pool `n`'s journal. */
export const journalFileName = (n: number): string => `.hvguest_journal_${n}`;

/**
 * One change. `size` is the pool file's length before it; records are raw
 * 2560-byte images.
 * - set: record `index` goes from `pre` to `post` in place.
 * - append: `post` is written at `size`.
 * - delete: record `index` (`pre`) goes away: `moved` (the last record) is
 *   copied over it and the file shrinks by one record; without `moved`
 *   the deleted record was the last one.
 * - shift: repair after a torn append that another writer appended behind
 *   (their records start `gap` bytes into our partial one): `data`, their
 *   records as found, is written back at `size` and the file cut after it.
 */
export type JournalEntry =
  | { op: 'set'; index: number; size: number; pre: Buffer; post: Buffer }
  | { op: 'append'; size: number; post: Buffer }
  | { op: 'delete'; index: number; size: number; pre: Buffer; moved?: Buffer }
  | { op: 'shift'; size: number; gap: number; data: Buffer };

interface EntryHead {
  op: JournalEntry['op'];
  index?: number;
  size: number;
  gap?: number;
  /** Name and length of each byte part after the JSON, in order. */
  parts: [string, number][];
}

function partsOf(e: JournalEntry): [string, Buffer][] {
  switch (e.op) {
    case 'set':
      return [['pre', e.pre], ['post', e.post]];
    case 'append':
      return [['post', e.post]];
    case 'delete':
      return e.moved ? [['pre', e.pre], ['moved', e.moved]] : [['pre', e.pre]];
    case 'shift':
      return [['data', e.data]];
  }
}

/** Encode one entry. */
export function encodeEntry(e: JournalEntry): Buffer {
  const parts = partsOf(e);
  const head: EntryHead = {
    op: e.op,
    size: e.size,
    parts: parts.map(([n, b]) => [n, b.length]),
    ...('index' in e ? { index: e.index } : {}),
    ...('gap' in e ? { gap: e.gap } : {}),
  };
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  const length = 8 + json.length + parts.reduce((n, [, b]) => n + b.length, 0) + HASH_SIZE;
  const buf = Buffer.alloc(length);
  buf.writeUInt32LE(length, 0);
  buf.writeUInt32LE(json.length, 4);
  json.copy(buf, 8);
  let off = 8 + json.length;
  for (const [, b] of parts) off += b.copy(buf, off);
  createHash('sha256').update(buf.subarray(0, length - HASH_SIZE)).digest().copy(buf, length - HASH_SIZE);
  return buf;
}

function decodeOne(buf: Buffer): JournalEntry | undefined {
  const jsonLen = buf.readUInt32LE(4);
  if (8 + jsonLen + HASH_SIZE > buf.length) return undefined;
  const digest = createHash('sha256').update(buf.subarray(0, buf.length - HASH_SIZE)).digest();
  if (!digest.equals(buf.subarray(buf.length - HASH_SIZE))) return undefined;
  let head: EntryHead;
  try {
    head = JSON.parse(buf.subarray(8, 8 + jsonLen).toString('utf8')) as EntryHead;
  } catch {
    return undefined;
  }
  const int = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!int(head.size) || !Array.isArray(head.parts)) return undefined;
  const b: Record<string, Buffer> = {};
  let off = 8 + jsonLen;
  for (const part of head.parts) {
    if (!Array.isArray(part) || typeof part[0] !== 'string' || !int(part[1])) return undefined;
    b[part[0]] = Buffer.from(buf.subarray(off, off + part[1]));
    off += part[1];
  }
  if (off + HASH_SIZE !== buf.length) return undefined;
  const rec = (x: Buffer | undefined): x is Buffer => x !== undefined && x.length === POOL_RECORD_SIZE;
  switch (head.op) {
    case 'set':
      return int(head.index) && rec(b.pre) && rec(b.post) ? { op: 'set', index: head.index, size: head.size, pre: b.pre, post: b.post } : undefined;
    case 'append':
      return rec(b.post) ? { op: 'append', size: head.size, post: b.post } : undefined;
    case 'delete':
      if (!int(head.index) || !rec(b.pre) || (b.moved !== undefined && !rec(b.moved))) return undefined;
      return { op: 'delete', index: head.index, size: head.size, pre: b.pre, ...(b.moved ? { moved: b.moved } : {}) };
    case 'shift':
      return int(head.gap) && b.data ? { op: 'shift', size: head.size, gap: head.gap, data: b.data } : undefined;
    default:
      return undefined;
  }
}

/** The valid entries in a journal's bytes after the header, in order, and where the valid part ends; stops at the first torn or foreign one. */
export function decodeEntries(body: Buffer): { entries: JournalEntry[]; end: number } {
  const entries: JournalEntry[] = [];
  let off = 0;
  while (off + 8 <= body.length) {
    const len = body.readUInt32LE(off);
    if (len < 8 + HASH_SIZE || off + len > body.length) break;
    const e = decodeOne(body.subarray(off, off + len));
    if (!e) break;
    entries.push(e);
    off += len;
  }
  return { entries, end: off };
}

function header(generation: bigint): Buffer {
  const h = Buffer.alloc(JOURNAL_HEADER_SIZE);
  JOURNAL_MAGIC.copy(h, 0);
  h.writeBigUInt64LE(generation, GEN_OFFSET);
  return h;
}

/** One pool's journal file, on a long-lived descriptor. */
export class Journal {
  private fd: number | undefined;

  constructor(
    private readonly fs: PoolFs,
    readonly path: string,
    private readonly readOnly: boolean,
  ) {
    this.open();
  }

  private open(): void {
    // Only open here: initialising the header happens under the pool's lock (generation()), since
    // another process may be writing its first entry into a journal it has just created.
    try {
      this.fd = this.fs.open(this.path, (this.readOnly ? O.RDONLY : O.RDWR | O.CREAT) | O.NOFOLLOW | O.NONBLOCK, 0o644);
    } catch (e) {
      if (!this.readOnly || (e as { code?: string }).code !== 'ENOENT') throw e;
      this.fd = undefined;
    }
  }

  /** Reopen when the file was removed or replaced since we opened it (someone cleaned the directory). */
  ensureCurrent(): void {
    const onDisk = this.fs.stat(this.path);
    if (this.fd === undefined) {
      if (onDisk) this.open();
      return;
    }
    const mine = this.fs.fstat(this.fd);
    if (onDisk && onDisk.ino === mine.ino && onDisk.dev === mine.dev) return;
    this.close();
    if (onDisk || !this.readOnly) this.open();
  }

  /**
   * The change counter and the unfinished change, if any (the last complete entry).
   * Call with the pool locked: a journal that is empty or not ours gets a fresh
   * header (a file that is not our journal holds no change of ours).
   */
  look(): { gen: bigint; pending?: JournalEntry } {
    if (this.fd === undefined) return { gen: 0n };
    const all = this.fs.pread(this.fd, this.fs.fstat(this.fd).size, 0);
    if (all.length < JOURNAL_HEADER_SIZE || !all.subarray(0, 8).equals(JOURNAL_MAGIC)) {
      if (!this.readOnly) {
        this.fs.pwrite(this.fd, header(0n), 0);
        this.fs.ftruncate(this.fd, JOURNAL_HEADER_SIZE);
      }
      return { gen: 0n };
    }
    const gen = all.readBigUInt64LE(GEN_OFFSET);
    if (all.length === JOURNAL_HEADER_SIZE) return { gen };
    const { entries } = decodeEntries(all.subarray(JOURNAL_HEADER_SIZE));
    const pending = entries[entries.length - 1];
    return pending ? { gen, pending } : { gen };
  }

  /** The change counter (reads only the header). */
  generation(): bigint {
    if (this.fd === undefined) return 0n;
    const h = this.fs.pread(this.fd, JOURNAL_HEADER_SIZE, 0);
    return h.length === JOURNAL_HEADER_SIZE && h.subarray(0, 8).equals(JOURNAL_MAGIC) ? h.readBigUInt64LE(GEN_OFFSET) : 0n;
  }

  /**
   * Record `e` durably after the complete entries already there (replay may chain a
   * second change after the one it is finishing; anything torn after them is
   * overwritten) and bump the generation. Returns the new generation.
   */
  write(e: JournalEntry): bigint {
    const fd = this.writableFd();
    const all = this.fs.pread(fd, this.fs.fstat(fd).size, 0);
    const valid = all.length >= JOURNAL_HEADER_SIZE && all.subarray(0, 8).equals(JOURNAL_MAGIC);
    const gen = (valid ? all.readBigUInt64LE(GEN_OFFSET) : 0n) + 1n;
    const end = valid ? JOURNAL_HEADER_SIZE + decodeEntries(all.subarray(JOURNAL_HEADER_SIZE)).end : JOURNAL_HEADER_SIZE;
    const entry = encodeEntry(e);
    if (end === JOURNAL_HEADER_SIZE) {
      // The common case: header and entry in one write, then one fdatasync.
      this.fs.pwrite(fd, Buffer.concat([header(gen), entry]), 0);
    } else {
      this.fs.pwrite(fd, entry, end);
      this.fs.pwrite(fd, header(gen), 0);
    }
    this.fs.fdatasync(fd);
    return gen;
  }

  /** Forget the entries (the change is complete). Not synced: a stale entry found after a power loss replays as "already done". */
  clear(): void {
    this.fs.ftruncate(this.writableFd(), JOURNAL_HEADER_SIZE);
  }

  private writableFd(): number {
    if (this.fd === undefined || this.readOnly) throw Object.assign(new Error(`${this.path}: journal is read-only`), { code: 'EROFS' });
    return this.fd;
  }

  close(): void {
    if (this.fd !== undefined) this.fs.close(this.fd);
    this.fd = undefined;
  }
}
