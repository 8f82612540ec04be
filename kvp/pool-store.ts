/**
 * The pool store: the directory and its five pool files, as the PoolStore
 * the KVP handlers and hvctl use. Per-file behaviour (locks, reload,
 * in-place O(1) changes, the crash journal) is in pool-file.ts.
 *
 * Modes: the directory is created 0755 and the files 0644 on both
 * flavors, exactly, whatever the umask. The FreeBSD C daemon's 0604 for
 * the directory lacks the search bit (pitfall F17) and is not copied.
 * Existing directories and files keep their modes; an existing directory
 * that others may read but not search is reported, not changed, and a
 * world-writable one is refused (EPERM): any user could replace the files.
 *
 * The lock policy follows the running OS, not the flavor: the syscall
 * numbers and the flock/fcntl interplay belong to the kernel we run on.
 *
 * Locks are held only inside one synchronous call, so several stores in
 * one thread never overlap; do not share a pool directory between worker
 * threads of one process (POSIX locks belong to the process).
 */
import { relative, sep, join } from 'node:path';
import type { Logger } from 'pino';
import { currentOs, type Os } from '../common/os/libc.js';
import { lockWholeFile, type LockSys } from '../common/os/locks.js';
import type { Flavor } from '../common/wire/constants.js';
import { codeOf, PoolError } from './pool-error.js';
import { PoolFile, type PoolInfo } from './pool-file.js';
import { POOL_COUNT } from './pool-format.js';
import { nodePoolFs, type PoolFs } from './pool-fs.js';
import type { PoolRecord, PoolStore } from './types.js';

export type { PoolInfo } from './pool-file.js';

/** Modes of what the store creates, per flavor (see the file comment). */
export const POOL_MODES: Record<Flavor, { dir: number; file: number }> = {
  freebsd: { dir: 0o755, file: 0o644 },
  linux: { dir: 0o755, file: 0o644 },
};

export interface PoolStoreOptions {
  dir: string;
  flavor: Flavor;
  log?: Logger;
  /** Longest wait for a pool's locks; default 2000 ms. */
  lockTimeoutMs?: number;
  /** Open the files read-only with shared locks and create nothing (hvctl list/get without root). */
  readOnly?: boolean;
  /** Tests: the file calls, the lock syscalls, whose lock rules, the wall clock. */
  fs?: PoolFs;
  lockSys?: LockSys;
  os?: Os;
  now?: () => number;
}

/** PoolStore plus what hvctl needs. */
export interface FilePoolStore extends PoolStore {
  readonly dir: string;
  readonly readOnly: boolean;
  /** Record count, skipped records and size of one pool. */
  info(pool: number): PoolInfo;
}

/** mkdir -p with `mode` exactly on every directory it creates; an existing one is checked, not changed. */
function ensureDir(fs: PoolFs, dir: string, mode: number, log: Logger | undefined): void {
  const created = fs.mkdirp(dir, mode);
  if (created !== undefined) {
    // mkdir's mode passes through the umask; the daemon's umask must not decide who can read the pools.
    let path = created;
    fs.chmod(path, mode);
    for (const part of relative(created, dir).split(sep).filter(Boolean)) {
      path = join(path, part);
      fs.chmod(path, mode);
    }
    return;
  }
  const st = fs.stat(dir);
  if (st === undefined) throw Object.assign(new Error('vanished after mkdir'), { code: 'ENOENT' });
  if ((st.mode & 0o170000) !== 0o040000) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  if ((st.mode & 0o002) !== 0) {
    // Anyone could plant or swap pool files (or the journal) here; refuse rather than serve the host from them.
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw Object.assign(new Error(`pool directory ${dir} is world-writable (mode ${mode}); refusing to use it (chmod o-w ${dir})`), { code: 'EPERM' });
  }
  if ((st.mode & 0o004) !== 0 && (st.mode & 0o001) === 0) {
    log?.warn({ op: 'open', dir, mode: (st.mode & 0o7777).toString(8) }, 'pool directory is readable but not searchable by others (the C daemon created it 0604); left as is, chmod 755 to let unprivileged readers in');
  }
}

/** Open (creating as needed) the pool directory and its five files; throws PoolError. */
export function openPoolStore(opts: PoolStoreOptions): FilePoolStore {
  const fs = opts.fs ?? nodePoolFs;
  const readOnly = opts.readOnly ?? false;
  const os = opts.os ?? currentOs();
  const files: PoolFile[] = [];
  try {
    if (readOnly) {
      const st = fs.stat(opts.dir);
      if (st === undefined) throw Object.assign(new Error('no such directory'), { code: 'ENOENT' });
    } else {
      ensureDir(fs, opts.dir, POOL_MODES[opts.flavor].dir, opts.log);
    }
    const lock = (fd: number, file: string, mode: 'read' | 'write') => lockWholeFile(fd, file, { mode, os, timeoutMs: opts.lockTimeoutMs, sys: opts.lockSys });
    for (let pool = 0; pool < POOL_COUNT; pool++) {
      files.push(new PoolFile({ fs, dir: opts.dir, pool, readOnly, lock, log: opts.log, now: opts.now }));
    }
    // New names must survive a power loss too (cloud-init complains when the files are missing, P13).
    if (!readOnly) fs.fsyncDir(opts.dir);
    if (!readOnly) {
      for (const f of files) {
        try {
          f.recoverNow();
        } catch (e) {
          // Busy or failing now: every later operation tries again, so opening need not fail for it.
          opts.log?.warn({ op: 'open', file: f.path, errno: codeOf(e) }, `could not check the pool at open: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
  } catch (e) {
    for (const f of files) f.close();
    if (e instanceof PoolError) throw e;
    throw new PoolError(codeOf(e), 'open', `open pool directory ${opts.dir}: ${e instanceof Error ? e.message : String(e)}`, undefined, opts.dir, { cause: e });
  }

  const file = (pool: number, op: string): PoolFile => {
    const f = Number.isInteger(pool) ? files[pool] : undefined;
    if (!f) throw new PoolError('EINVAL', op, `${op}: pool ${pool} does not exist (0-${POOL_COUNT - 1})`, pool);
    return f;
  };
  let closed = false;

  return {
    dir: opts.dir,
    readOnly,
    get: (pool: number, key: Buffer): PoolRecord | undefined => file(pool, 'get').get(key),
    set: (pool: number, key: Buffer, value: Buffer): void => file(pool, 'set').set(key, value),
    delete: (pool: number, key: Buffer): boolean => file(pool, 'delete').delete(key),
    at: (pool: number, index: number): PoolRecord | undefined => file(pool, 'at').at(index),
    list: (pool: number): PoolRecord[] => file(pool, 'list').list(),
    info: (pool: number): PoolInfo => file(pool, 'info').info(),
    close(): void {
      if (closed) return;
      closed = true;
      let first: unknown;
      for (const f of files) {
        try {
          f.close();
        } catch (e) {
          first ??= e;
        }
      }
      if (first !== undefined) throw new PoolError(codeOf(first), 'close', `close pool directory ${opts.dir}: ${String((first as Error).message ?? first)}`, undefined, opts.dir);
    },
  };
}
