/**
 * Whole-file advisory locks on an open descriptor, with bounded waits.
 *
 * Two lock families exist and they do not agree across systems (spec
 * kvp.md section 2): on Linux flock(2) and fcntl(2) record locks are
 * independent, so cloud-init's flock does not exclude the C daemon's fcntl
 * lock; on FreeBSD both share one lock manager and conflict with each
 * other. hvguest therefore takes both on Linux (flock first, released
 * last) and only the fcntl lock on FreeBSD, where it already excludes
 * flock users and where asking for both could make a process wait on
 * itself (the two locks have different owners).
 *
 * Waits are bounded (pitfall P3): never F_SETLKW or a blocking flock;
 * try without blocking and retry with short sleeps until a deadline
 * (default 2 s), then throw a LockError that names the file, the lock and,
 * for fcntl, the holder's pid. Syscalls are injectable (setLockSys).
 *
 * POSIX record locks belong to the process and are dropped when the
 * process closes any descriptor of the file: callers keep one descriptor.
 */
import { createRequire } from 'node:module';
import { currentOs, errnoName, errnoNumber, type Os } from './libc.js';
import { locate, struct, u16, u32, u64, type Layout } from '../wire/layout.js';

/** fcntl commands and lock types, per OS (verified: FreeBSD sys/sys/fcntl.h, Linux asm-generic/fcntl.h and glibc bits/fcntl.h for x86_64). */
export const FCNTL: Record<Os, { F_GETLK: number; F_SETLK: number; F_SETLKW: number; F_RDLCK: number; F_WRLCK: number; F_UNLCK: number }> = {
  linux: { F_GETLK: 5, F_SETLK: 6, F_SETLKW: 7, F_RDLCK: 0, F_WRLCK: 1, F_UNLCK: 2 }, // F_RDLCK..F_UNLCK: flock.l_type
  freebsd: { F_GETLK: 11, F_SETLK: 12, F_SETLKW: 13, F_RDLCK: 1, F_WRLCK: 3, F_UNLCK: 2 }, // F_RDLCK..F_UNLCK: flock.l_type
};

/** flock(2) operations (the same numbers on both systems). */
export const LOCK_SH = 1; // flock op: shared
export const LOCK_EX = 2; // flock op: exclusive
export const LOCK_NB = 4; // flock op: do not block
export const LOCK_UN = 8; // flock op: unlock

/** SEEK_SET, for flock.l_whence. */
const SEEK_SET = 0;

interface Field {
  offset: number;
  size: 2 | 4 | 8;
}

/**
 * struct flock, declared once per OS (64-bit off_t on both: Linux x86_64
 * and arm64, FreeBSD amd64 and arm64). Linux: short l_type, short
 * l_whence, off_t l_start, off_t l_len, pid_t l_pid. FreeBSD: off_t
 * l_start, off_t l_len, pid_t l_pid, short l_type, short l_whence, int
 * l_sysid. Both 32 bytes with padding.
 */
const P = { packed: false };
/** The two declarations, in the C member order (common/wire/layout.ts places them as the compiler does). */
const FLOCK_STRUCTS: Record<Os, Layout> = {
  linux: struct('flock', [u16('l_type'), u16('l_whence'), u64('l_start'), u64('l_len'), u32('l_pid')], P),
  freebsd: struct('flock', [u64('l_start'), u64('l_len'), u32('l_pid'), u16('l_type'), u16('l_whence'), u32('l_sysid')], P),
};

function fieldsOf(l: Layout) {
  const f = (name: string): Field => {
    const m = locate(l, name).member;
    return { offset: m.offset, size: m.size as Field['size'] };
  };
  return { size: l.size, l_type: f('l_type'), l_whence: f('l_whence'), l_start: f('l_start'), l_len: f('l_len'), l_pid: f('l_pid') };
}

export const FLOCK_LAYOUT: Record<Os, { size: number; l_type: Field; l_whence: Field; l_start: Field; l_len: Field; l_pid: Field }> = {
  linux: fieldsOf(FLOCK_STRUCTS.linux),
  freebsd: fieldsOf(FLOCK_STRUCTS.freebsd),
};

export interface FlockFields {
  type: number;
  whence: number;
  start: number;
  len: number;
  pid: number;
}

function put(buf: Buffer, f: Field, v: number): void {
  if (f.size === 2) buf.writeInt16LE(v, f.offset);
  else if (f.size === 4) buf.writeInt32LE(v, f.offset);
  else buf.writeBigInt64LE(BigInt(v), f.offset);
}

function get(buf: Buffer, f: Field): number {
  if (f.size === 2) return buf.readInt16LE(f.offset);
  if (f.size === 4) return buf.readInt32LE(f.offset);
  return Number(buf.readBigInt64LE(f.offset));
}

/** Encode a struct flock for `os` (little-endian; both supported systems are). */
export function encodeFlock(os: Os, v: Partial<FlockFields> & { type: number }): Buffer {
  const l = FLOCK_LAYOUT[os];
  const buf = Buffer.alloc(l.size);
  put(buf, l.l_type, v.type);
  put(buf, l.l_whence, v.whence ?? SEEK_SET);
  put(buf, l.l_start, v.start ?? 0);
  put(buf, l.l_len, v.len ?? 0);
  put(buf, l.l_pid, v.pid ?? 0);
  return buf;
}

/** Decode a struct flock for `os` (what F_GETLK wrote back). */
export function decodeFlock(os: Os, buf: Buffer): FlockFields {
  const l = FLOCK_LAYOUT[os];
  return { type: get(buf, l.l_type), whence: get(buf, l.l_whence), start: get(buf, l.l_start), len: get(buf, l.l_len), pid: get(buf, l.l_pid) };
}

/** The raw calls, replaceable in tests; each returns -1 and leaves the reason in errno() on failure. */
export interface LockSys {
  /** fcntl(fd, cmd, &flock); the struct is read and (F_GETLK) written in place. */
  fcntl(fd: number, cmd: number, flock: Buffer): number;
  flock(fd: number, op: number): number;
  errno(): number;
  /** Block this thread for `ms` milliseconds. */
  sleep(ms: number): void;
  /** A monotonic clock in milliseconds. */
  now(): number;
}

const LIBC: Record<Os, string> = { linux: 'libc.so.6', freebsd: 'libc.so.7' };

function bindSys(): LockSys {
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load(LIBC[currentOs()]);
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
  const flock = lib.func('int flock(int fd, int op)');
  // Atomics.wait is the only synchronous sleep Node has; the store's API is synchronous.
  const cell = new Int32Array(new SharedArrayBuffer(4));
  return {
    fcntl: (fd, cmd, buf) => fcntl(fd, cmd, 'void *', buf) as number,
    flock: (fd, op) => flock(fd, op) as number,
    errno: () => koffi.errno(),
    sleep: (ms) => void Atomics.wait(cell, 0, 0, ms),
    now: monotonicMs,
  };
}

let sys: LockSys | undefined;

/** The bound lock syscalls (koffi, loaded on first use). */
export function lockSys(): LockSys {
  sys ??= bindSys();
  return sys;
}

/** Replace the lock syscalls for tests; undefined restores the real ones. */
export function setLockSys(fake: LockSys | undefined): void {
  sys = fake;
}

export type LockKind = 'flock' | 'fcntl';
export type LockMode = 'read' | 'write';

/** Which locks to take, in order, per OS (released in reverse). */
export const LOCK_POLICY: Record<Os, readonly LockKind[]> = {
  linux: ['flock', 'fcntl'],
  freebsd: ['fcntl'],
};

/** A lock that could not be taken or released: `code` is ETIMEDOUT after the deadline, else the errno name. */
export class LockError extends Error {
  constructor(
    readonly code: string,
    readonly file: string,
    readonly kind: LockKind,
    readonly mode: LockMode,
    message: string,
    readonly holderPid?: number,
  ) {
    super(message);
    this.name = 'LockError';
  }
}

export interface LockOptions {
  /** Default 'write' (the C daemons take the write lock for reads too). */
  mode?: LockMode;
  /** Give up after this long; default 2000 ms. */
  timeoutMs?: number;
  /** Whose rules and numbers; default the running OS. */
  os?: Os;
  sys?: LockSys;
}

export interface HeldLock {
  /** Release every lock taken, in reverse order; throws the first LockError after trying all. */
  release(): void;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 2000;
// Short first, so an uncontended retry is quick; capped so the deadline is met closely.
const FIRST_SLEEP_MS = 1;
const MAX_SLEEP_MS = 20;

const describe = (kind: LockKind, mode: LockMode): string =>
  kind === 'flock' ? `flock(${mode === 'write' ? 'LOCK_EX' : 'LOCK_SH'})` : `fcntl ${mode === 'write' ? 'F_WRLCK' : 'F_RDLCK'} lock`;

/** The pid holding a conflicting fcntl lock (F_GETLK), or undefined. */
function fcntlHolder(fd: number, os: Os, s: LockSys, mode: LockMode): number | undefined {
  const c = FCNTL[os];
  const buf = encodeFlock(os, { type: mode === 'write' ? c.F_WRLCK : c.F_RDLCK });
  if (s.fcntl(fd, c.F_GETLK, buf) < 0) return undefined;
  const f = decodeFlock(os, buf);
  return f.type === c.F_UNLCK || f.pid <= 0 ? undefined : f.pid;
}

/** One attempt without blocking: true when taken, false on contention; throws LockError on any other failure. */
function tryOnce(fd: number, file: string, kind: LockKind, mode: LockMode, os: Os, s: LockSys): boolean {
  const c = FCNTL[os];
  for (;;) {
    const r =
      kind === 'flock'
        ? s.flock(fd, (mode === 'write' ? LOCK_EX : LOCK_SH) | LOCK_NB)
        : s.fcntl(fd, c.F_SETLK, encodeFlock(os, { type: mode === 'write' ? c.F_WRLCK : c.F_RDLCK }));
    if (r >= 0) return true;
    const e = s.errno();
    const name = errnoName(e);
    if (name === 'EINTR') continue;
    // Contention: flock says EWOULDBLOCK (= EAGAIN), fcntl EAGAIN or EACCES (POSIX allows both).
    if (name === 'EAGAIN' || name === 'EWOULDBLOCK' || (kind === 'fcntl' && name === 'EACCES')) return false;
    throw new LockError(name, file, kind, mode, `lock ${file}: ${describe(kind, mode)}: ${name}`);
  }
}

function unlockOne(fd: number, file: string, kind: LockKind, mode: LockMode, os: Os, s: LockSys): LockError | undefined {
  const c = FCNTL[os];
  for (;;) {
    const r = kind === 'flock' ? s.flock(fd, LOCK_UN) : s.fcntl(fd, c.F_SETLK, encodeFlock(os, { type: c.F_UNLCK }));
    if (r >= 0) return undefined;
    const e = s.errno();
    if (e === errnoNumber('EINTR')) continue;
    return new LockError(errnoName(e), file, kind, mode, `unlock ${file}: ${describe(kind, mode)}: ${errnoName(e)}`);
  }
}

/**
 * Take the whole-file locks the OS policy asks for on `fd` (`file` names
 * it in errors), waiting at most `timeoutMs` in total. On failure nothing
 * stays locked.
 */
export function lockWholeFile(fd: number, file: string, opts: LockOptions = {}): HeldLock {
  const os = opts.os ?? currentOs();
  const s = opts.sys ?? lockSys();
  const mode = opts.mode ?? 'write';
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const start = s.now();
  const deadline = start + timeoutMs;
  const held: LockKind[] = [];
  const release = (): void => {
    let first: LockError | undefined;
    while (held.length > 0) {
      const err = unlockOne(fd, file, held.pop()!, mode, os, s);
      first ??= err;
    }
    if (first) throw first;
  };
  try {
    for (const kind of LOCK_POLICY[os]) {
      let sleep = FIRST_SLEEP_MS;
      while (!tryOnce(fd, file, kind, mode, os, s)) {
        const left = deadline - s.now();
        if (left <= 0) {
          const pid = kind === 'fcntl' ? fcntlHolder(fd, os, s, mode) : undefined;
          const who = pid !== undefined ? `held by pid ${pid}` : kind === 'flock' ? 'another process holds it; cloud-init takes flock' : 'another process holds it';
          throw new LockError(
            'ETIMEDOUT',
            file,
            kind,
            mode,
            `lock ${file}: timed out after ${Math.round(s.now() - start)} ms waiting for the ${describe(kind, mode)} (${who})`,
            pid,
          );
        }
        s.sleep(Math.min(sleep, left));
        sleep = Math.min(sleep * 2, MAX_SLEEP_MS);
      }
      held.push(kind);
    }
  } catch (e) {
    try {
      release();
    } catch {
      // The acquisition error is the one to report; a failed unlock of a half-taken set adds nothing useful.
    }
    throw e;
  }
  return { release };
}

/** Run `fn` while `held` is held, then release it; a failing release never hides fn's own error. */
export function whileHeld<T>(held: { release(): void }, fn: () => T): T {
  let ok = false;
  try {
    const r = fn();
    ok = true;
    return r;
  } finally {
    if (ok) held.release();
    else {
      try {
        held.release();
      } catch {
        /* fn's error wins */
      }
    }
  }
}

/** Run `fn` with the file locked (lockWholeFile), releasing afterwards even when it throws. */
export function withWholeFileLock<T>(fd: number, file: string, opts: LockOptions, fn: () => T): T {
  return whileHeld(lockWholeFile(fd, file, opts), fn);
}

/** A monotonic clock in milliseconds (the `performance` global would load perf_hooks at start for this alone). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
