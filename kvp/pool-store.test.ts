/**
 * The pool store on real files in temporary directories: creation and
 * modes, byte-exact layout against records built by hand, other writers
 * (cloud-init style appends under flock, rewrites, replaced files, a
 * second hvguest process), duplicates, odd and corrupt files, errors, and
 * O(1) cost per operation on a 100,000-record pool (bytes counted through
 * an injected fs, not timed). Crashes and concurrent writers have their
 * own files (pool-crash.test.ts, pool-interleave.test.ts).
 */
import { spawn } from 'node:child_process';
import * as nfs from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { lockSys, LOCK_EX, LOCK_UN } from '../common/os/locks.js';
import { PoolError } from './pool-error.js';
import { nodePoolFs, type PoolFs } from './pool-fs.js';
import { openPoolStore, type FilePoolStore, type PoolStoreOptions } from './pool-store.js';

const R = 2560;
const isLinux = process.platform === 'linux';

/** A record built by hand (not with encodeRecord); `fill` puts stale bytes after the NULs, as the C daemons leave them. */
function rec(key: string | Buffer, value: string | Buffer, fill = 0): Buffer {
  const b = Buffer.alloc(R, fill);
  const k = Buffer.from(key);
  k.copy(b, 0);
  b[k.length] = 0;
  const v = Buffer.from(value);
  v.copy(b, 512);
  b[512 + v.length] = 0;
  return b;
}

const dirs: string[] = [];
const stores: FilePoolStore[] = [];
function tmp(): string {
  const d = nfs.mkdtempSync(join(tmpdir(), 'hvguest-pool-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) nfs.rmSync(d, { recursive: true, force: true });
});

function logger() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines, warnings: () => lines.filter((l) => (l.level as number) >= 40) };
}

function open(dir: string, extra: Partial<PoolStoreOptions> = {}): FilePoolStore {
  const s = openPoolStore({ dir, flavor: 'linux', ...extra });
  stores.push(s);
  return s;
}

const pathOf = (dir: string, n: number) => join(dir, `.kvp_pool_${n}`);
const kv = (s: FilePoolStore, pool: number) => s.list(pool).map((r) => `${r.key}=${r.value}`);
const B = (t: string) => Buffer.from(t);

/** Append like cloud-init: open for append, flock(LOCK_EX), write whole records, unlock, close. */
function flockAppend(path: string, records: Buffer[]): void {
  const fd = nfs.openSync(path, 'a');
  try {
    expect(lockSys().flock(fd, LOCK_EX)).toBe(0);
    nfs.writeSync(fd, Buffer.concat(records));
    lockSys().flock(fd, LOCK_UN);
  } finally {
    nfs.closeSync(fd);
  }
}

/** An fs that counts bytes and calls per file name. */
function countingFs() {
  const names = new Map<number, string>();
  const opened: string[] = [];
  const c = new Map<string, { read: number; written: number; writes: number; truncates: number; syncs: number }>();
  const of = (fd: number) => {
    const n = names.get(fd) ?? `fd${fd}`;
    if (!c.has(n)) c.set(n, { read: 0, written: 0, writes: 0, truncates: 0, syncs: 0 });
    return c.get(n)!;
  };
  const fs: PoolFs = {
    ...nodePoolFs,
    open(path, flags, mode) {
      const fd = nodePoolFs.open(path, flags, mode);
      names.set(fd, path.split('/').pop()!);
      opened.push(path.split('/').pop()!);
      return fd;
    },
    pread(fd, length, position) {
      const b = nodePoolFs.pread(fd, length, position);
      of(fd).read += b.length;
      return b;
    },
    pwrite(fd, data, position) {
      of(fd).written += data.length;
      of(fd).writes++;
      nodePoolFs.pwrite(fd, data, position);
    },
    ftruncate(fd, length) {
      of(fd).truncates++;
      nodePoolFs.ftruncate(fd, length);
    },
    fdatasync(fd) {
      of(fd).syncs++;
      nodePoolFs.fdatasync(fd);
    },
  };
  return {
    fs,
    opened,
    get: (name: string) => c.get(name) ?? { read: 0, written: 0, writes: 0, truncates: 0, syncs: 0 },
    reset: () => c.clear(),
  };
}

describe('creating the pools', () => {
  it('creates the directory (and missing parents) 0755 and all five files 0644, whatever the umask', () => {
    const base = tmp();
    const dir = join(base, 'db', 'hyperv', 'pool');
    const old = process.umask(0o077);
    try {
      open(dir);
    } finally {
      process.umask(old);
    }
    for (const d of [join(base, 'db'), join(base, 'db', 'hyperv'), dir]) expect((nfs.statSync(d).mode & 0o7777).toString(8)).toBe('755');
    for (let n = 0; n < 5; n++) {
      const st = nfs.statSync(pathOf(dir, n));
      expect((st.mode & 0o7777).toString(8)).toBe('644');
      expect(st.size).toBe(0);
    }
    expect(nfs.readdirSync(dir).filter((f) => f.startsWith('.kvp_pool_')).sort()).toEqual([0, 1, 2, 3, 4].map((n) => `.kvp_pool_${n}`));
    // Our own files never match the .kvp_pool_* pattern third-party readers glob for.
    expect(nfs.readdirSync(dir).filter((f) => !f.startsWith('.kvp_pool_')).every((f) => f.startsWith('.hvguest_journal_'))).toBe(true);
  });

  it('leaves existing modes alone and reports a directory others may read but not search (the C daemon\'s 0604)', () => {
    const dir = join(tmp(), 'pool');
    nfs.mkdirSync(dir);
    nfs.chmodSync(dir, 0o744);
    nfs.writeFileSync(pathOf(dir, 0), rec('a', '1'));
    nfs.chmodSync(pathOf(dir, 0), 0o604);
    const l = logger();
    const s = open(dir, { log: l.log });
    expect(kv(s, 0)).toEqual(['a=1']);
    expect((nfs.statSync(dir).mode & 0o7777).toString(8)).toBe('744');
    expect((nfs.statSync(pathOf(dir, 0)).mode & 0o7777).toString(8)).toBe('604');
    expect(l.warnings().map((w) => w.msg)).toEqual([expect.stringMatching(/readable but not searchable/)]);
  });

  it('read-only: creates nothing, a missing directory is ENOENT, missing files are empty pools, writes are EROFS', () => {
    const base = tmp();
    expect(() => open(join(base, 'none'), { readOnly: true })).toThrow(expect.objectContaining({ code: 'ENOENT', op: 'open' }));
    nfs.writeFileSync(pathOf(base, 3), Buffer.concat([rec('HostName', 'h1'), rec('VirtualMachineName', 'vm')]));
    const s = open(base, { readOnly: true });
    expect(kv(s, 3)).toEqual(['HostName=h1', 'VirtualMachineName=vm']);
    expect(s.list(1)).toEqual([]);
    expect(s.get(1, B('x'))).toBeUndefined();
    expect(() => s.set(3, B('a'), B('b'))).toThrow(expect.objectContaining({ code: 'EROFS' }));
    expect(() => s.delete(3, B('HostName'))).toThrow(expect.objectContaining({ code: 'EROFS' }));
    expect(nfs.readdirSync(base)).toEqual(['.kvp_pool_3']);
  });

  it('keeps one close-on-exec descriptor per pool file and never opens a pool file again', () => {
    const dir = tmp();
    const cf = countingFs();
    const s = open(dir, { fs: cf.fs });
    const opensAfterOpen = cf.opened.filter((n) => n.startsWith('.kvp_pool_')).length;
    expect(opensAfterOpen).toBe(5);
    const fdsBefore = isLinux ? nfs.readdirSync('/proc/self/fd').length : 0;
    for (let i = 0; i < 50; i++) {
      s.set(i % 5, B(`k${i % 7}`), B(`v${i}`));
      s.get(i % 5, B('k1'));
      s.list(i % 5);
      if (i % 3 === 0) s.delete(i % 5, B(`k${i % 7}`));
    }
    expect(cf.opened.filter((n) => n.startsWith('.kvp_pool_')).length).toBe(5);
    if (isLinux) {
      expect(nfs.readdirSync('/proc/self/fd').length).toBe(fdsBefore);
      // The descriptor of a pool file: find it among ours and check O_CLOEXEC (02000000) in its flags.
      const target = nfs.realpathSync(pathOf(dir, 1));
      const fd = nfs.readdirSync('/proc/self/fd').find((f) => {
        try {
          return nfs.readlinkSync(`/proc/self/fd/${f}`) === target;
        } catch {
          return false;
        }
      });
      expect(fd).toBeDefined();
      const flags = parseInt(/flags:\s+(\d+)/.exec(nfs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
      expect(flags & 0o2000000).toBe(0o2000000);
    }
  });
});

describe('file layout', () => {
  it('is byte-exact: appends, in-place overwrite zero-filled, delete moves the last record and truncates', () => {
    const dir = tmp();
    const s = open(dir);
    s.set(1, B('alpha'), B('first value'));
    s.set(1, B('beta'), B('2'));
    s.set(1, B('gamma'), B('ünïcödé'));
    const file = () => nfs.readFileSync(pathOf(dir, 1));
    expect(file().equals(Buffer.concat([rec('alpha', 'first value'), rec('beta', '2'), rec('gamma', 'ünïcödé')]))).toBe(true);
    s.set(1, B('alpha'), B('x'));
    expect(file().equals(Buffer.concat([rec('alpha', 'x'), rec('beta', '2'), rec('gamma', 'ünïcödé')]))).toBe(true);
    expect(s.delete(1, B('alpha'))).toBe(true);
    expect(file().equals(Buffer.concat([rec('gamma', 'ünïcödé'), rec('beta', '2')]))).toBe(true);
    expect(s.delete(1, B('beta'))).toBe(true);
    expect(file().equals(rec('gamma', 'ünïcödé'))).toBe(true);
    expect(s.delete(1, B('gamma'))).toBe(true);
    expect(file().length).toBe(0);
    expect(s.delete(1, B('gamma'))).toBe(false);
    for (const n of [0, 2, 3, 4]) expect(nfs.statSync(pathOf(dir, n)).size).toBe(0);
  });

  it('leaves records it did not change byte for byte (stale bytes after the NUL included)', () => {
    const dir = tmp();
    const a = rec('a', '1', 0x41);
    const b = rec('b', '2', 0x42);
    const c = rec('c', '3', 0x43);
    nfs.writeFileSync(pathOf(dir, 0), Buffer.concat([a, b, c]));
    const s = open(dir);
    expect(kv(s, 0)).toEqual(['a=1', 'b=2', 'c=3']);
    s.set(0, B('b'), B('22'));
    s.set(0, B('d'), B('4'));
    expect(nfs.readFileSync(pathOf(dir, 0)).equals(Buffer.concat([a, rec('b', '22'), c, rec('d', '4')]))).toBe(true);
    s.delete(0, B('a'));
    expect(nfs.readFileSync(pathOf(dir, 0)).equals(Buffer.concat([rec('d', '4'), rec('b', '22'), c]))).toBe(true);
  });

  it('matches the key bytes before the NUL exactly, case-sensitive; values may be empty', () => {
    const s = open(tmp());
    s.set(0, B('Key'), B(''));
    expect(s.get(0, B('key'))).toBeUndefined();
    expect(s.get(0, B('Ke'))).toBeUndefined();
    expect(s.get(0, B('Key'))).toEqual({ key: B('Key'), value: B('') });
    const bin = Buffer.from([0xc3, 0x28]); // not UTF-8, still a key
    s.set(0, bin, B('v'));
    expect(s.get(0, bin)?.value).toEqual(B('v'));
    // Returned buffers are copies.
    s.get(0, B('Key'))!.key.fill(0);
    expect(s.get(0, B('Key'))?.key).toEqual(B('Key'));
  });

  it('at() walks the records in file order and ends with undefined', () => {
    const s = open(tmp());
    for (const k of ['a', 'b', 'c']) s.set(4, B(k), B(k.toUpperCase()));
    expect([0, 1, 2, 3].map((i) => s.at(4, i)?.key.toString())).toEqual(['a', 'b', 'c', undefined]);
    expect(s.at(4, -1)).toBeUndefined();
    expect(s.at(4, 1.5)).toBeUndefined();
  });
});

describe('other writers', () => {
  it('sees records a cloud-init style writer appended under flock', () => {
    const dir = tmp();
    const s = open(dir);
    s.set(1, B('mine'), B('1'));
    flockAppend(pathOf(dir, 1), [rec('CLOUD_INIT|1|start|init-local|u1', '{"name":"init-local"}'), rec('CLOUD_INIT|1|finish|init-local|u2', '{}')]);
    expect(s.get(1, B('CLOUD_INIT|1|start|init-local|u1'))?.value.toString()).toBe('{"name":"init-local"}');
    s.set(1, B('mine'), B('2'));
    s.set(1, B('after'), B('3'));
    expect(kv(s, 1)).toEqual(['mine=2', 'CLOUD_INIT|1|start|init-local|u1={"name":"init-local"}', 'CLOUD_INIT|1|finish|init-local|u2={}', 'after=3']);
  });

  it('sees an external rewrite in place (same size) and a whole-file rewrite (C daemon style)', async () => {
    const dir = tmp();
    const s = open(dir);
    s.set(0, B('a'), B('1'));
    s.set(0, B('b'), B('2'));
    // Past one timestamp tick, as any real external edit is (see the racy test below for the same tick).
    await new Promise((r) => setTimeout(r, 30));
    const fd = nfs.openSync(pathOf(dir, 0), 'r+');
    nfs.writeSync(fd, rec('b', '9'), 0, R, R);
    nfs.closeSync(fd);
    expect(kv(s, 0)).toEqual(['a=1', 'b=9']);
    // Truncate and write everything again, as the C daemons do after each change.
    nfs.writeFileSync(pathOf(dir, 0), Buffer.concat([rec('c', '3'), rec('a', '1'), rec('b', '9')]));
    expect(kv(s, 0)).toEqual(['c=3', 'a=1', 'b=9']);
    expect(s.delete(0, B('c'))).toBe(true);
    expect(nfs.readFileSync(pathOf(dir, 0)).equals(Buffer.concat([rec('b', '9'), rec('a', '1')]))).toBe(true);
  });

  it('sees a same-size change by another hvguest process at once, even with coarse file times (generation counter)', () => {
    const dir = tmp();
    const a = open(dir);
    // B sees whole-second times, and a clock far ahead so nothing it loads counts as "too recent to trust".
    const coarse = (t: bigint) => t - (t % 1_000_000_000n);
    const cf = countingFs();
    const bfs: PoolFs = {
      ...cf.fs,
      fstat: (fd) => {
        const st = nodePoolFs.fstat(fd);
        return { ...st, mtimeNs: coarse(st.mtimeNs), ctimeNs: coarse(st.ctimeNs) };
      },
    };
    const b = open(dir, { fs: bfs, now: () => Date.now() + 60_000 });
    a.set(3, B('k'), B('1'));
    expect(b.get(3, B('k'))?.value.toString()).toBe('1');
    cf.reset();
    expect(b.get(3, B('k'))?.value.toString()).toBe('1');
    expect(cf.get('.kvp_pool_3').read).toBe(0); // unchanged: served from memory
    a.set(3, B('k'), B('2'));
    expect(b.get(3, B('k'))?.value.toString()).toBe('2');
    b.set(3, B('k'), B('3'));
    expect(a.get(3, B('k'))?.value.toString()).toBe('3');
  });

  it('re-reads a foreign change loaded within the racy window on the next call, then trusts the cache', () => {
    const dir = tmp();
    let now = Date.now();
    const cf = countingFs();
    const s = open(dir, { fs: cf.fs, now: () => now });
    nfs.writeFileSync(pathOf(dir, 2), rec('x', '1'));
    now = Number(nfs.statSync(pathOf(dir, 2), { bigint: true }).mtimeNs / 1_000_000n);
    cf.reset();
    expect(kv(s, 2)).toEqual(['x=1']);
    expect(cf.get('.kvp_pool_2').read).toBe(R);
    // Within the window: a same-size write in the same clock tick would not show in mtime, so read again.
    expect(kv(s, 2)).toEqual(['x=1']);
    expect(cf.get('.kvp_pool_2').read).toBe(2 * R);
    now += 5000;
    expect(kv(s, 2)).toEqual(['x=1']); // one more load, now trusted
    expect(kv(s, 2)).toEqual(['x=1']);
    expect(cf.get('.kvp_pool_2').read).toBe(3 * R);
  });

  it('reopens a pool file replaced by rename, and recreates a removed one', () => {
    const dir = tmp();
    const s = open(dir);
    s.set(1, B('a'), B('1'));
    nfs.writeFileSync(join(dir, 'new'), rec('b', '2'));
    nfs.renameSync(join(dir, 'new'), pathOf(dir, 1));
    expect(kv(s, 1)).toEqual(['b=2']);
    s.set(1, B('c'), B('3'));
    expect(nfs.readFileSync(pathOf(dir, 1)).equals(Buffer.concat([rec('b', '2'), rec('c', '3')]))).toBe(true);
    nfs.unlinkSync(pathOf(dir, 1));
    expect(kv(s, 1)).toEqual([]);
    expect((nfs.statSync(pathOf(dir, 1)).mode & 0o7777).toString(8)).toBe('644');
    nfs.unlinkSync(join(dir, '.hvguest_journal_1'));
    s.set(1, B('d'), B('4'));
    expect(kv(s, 1)).toEqual(['d=4']);
    expect(nfs.existsSync(join(dir, '.hvguest_journal_1'))).toBe(true);
  });

  it('a lock held by another process past the timeout is PoolError ETIMEDOUT naming the file', async () => {
    const dir = tmp();
    const s = open(dir, { lockTimeoutMs: 200 });
    const script = join(dir, 'holder.mjs');
    nfs.writeFileSync(
      script,
      `import { createRequire } from 'node:module'; import fs from 'node:fs';
const koffi = createRequire(${JSON.stringify(resolve(import.meta.dirname, '../package.json'))})('koffi');
const lib = koffi.load(process.platform === 'freebsd' ? 'libc.so.7' : 'libc.so.6');
const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
const bsd = process.platform === 'freebsd'; const b = Buffer.alloc(32);
if (bsd) b.writeInt16LE(3, 20); else b.writeInt16LE(1, 0);
const fd = fs.openSync(process.argv[2], 'r+');
if (fcntl(fd, bsd ? 12 : 6, 'void *', b) !== 0) process.exit(1);
console.log('locked'); setTimeout(() => {}, 10000);`,
    );
    const child = spawn(process.execPath, [script, pathOf(dir, 1)], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((res, rej) => {
        child.stdout.on('data', () => res());
        child.on('exit', (c) => rej(new Error(`holder exited ${c}`)));
      });
      let err: PoolError | undefined;
      try {
        s.get(1, B('k'));
      } catch (e) {
        err = e as PoolError;
      }
      expect(err).toBeInstanceOf(PoolError);
      expect(err!.code).toBe('ETIMEDOUT');
      expect(err!.pool).toBe(1);
      expect(err!.message).toContain(`lock ${pathOf(dir, 1)}: timed out after`);
      expect(err!.message).toContain(`held by pid ${child.pid}`);
      // Other pools are not blocked.
      s.set(0, B('k'), B('v'));
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('duplicate keys written by others (P18)', () => {
  it('are all kept and listed; get, set and delete act on the first in file order', () => {
    const dir = tmp();
    nfs.writeFileSync(pathOf(dir, 1), Buffer.concat([rec('k', 'a'), rec('x', '1'), rec('k', 'b')]));
    const s = open(dir);
    expect(kv(s, 1)).toEqual(['k=a', 'x=1', 'k=b']);
    expect(s.get(1, B('k'))?.value.toString()).toBe('a');
    s.set(1, B('k'), B('c'));
    expect(kv(s, 1)).toEqual(['k=c', 'x=1', 'k=b']);
    expect(s.delete(1, B('k'))).toBe(true);
    // The last record moved into the hole: the remaining duplicate is now the first.
    expect(kv(s, 1)).toEqual(['k=b', 'x=1']);
    expect(s.get(1, B('k'))?.value.toString()).toBe('b');
  });
});

describe('odd and corrupt files', () => {
  function corrupt(dir: string): Buffer {
    const noKeyNul = Buffer.alloc(R, 0x41);
    const noValueNul = rec('v', '');
    noValueNul.fill(0x42, 512);
    const latin1 = rec(Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'x');
    const bytes = Buffer.concat([rec('good1', '1'), noKeyNul, rec('good2', '2'), noValueNul, latin1, Buffer.alloc(100, 0x5a)]);
    nfs.writeFileSync(pathOf(dir, 0), bytes);
    return bytes;
  }

  it('loads what is valid, logs once what it skipped, and changes nothing on disk', () => {
    const dir = tmp();
    const bytes = corrupt(dir);
    const l = logger();
    const s = open(dir, { log: l.log });
    expect(s.list(0).map((r) => [...r.key])).toEqual([[...B('good1')], [...B('good2')], [0x63, 0x61, 0x66, 0xe9]]);
    expect(s.info(0)).toEqual({ pool: 0, file: pathOf(dir, 0), records: 3, unusable: 2, tailBytes: 100, bytes: bytes.length });
    expect([0, 1, 2, 3].map((i) => s.at(0, i)?.key.toString('latin1'))).toEqual(['good1', 'good2', 'café', undefined]);
    s.list(0);
    s.get(0, B('good1'));
    const warns = l.warnings().filter((w) => w.op === 'load');
    expect(warns).toHaveLength(1);
    expect(warns[0]!.msg).toMatch(/1 record\(s\) skipped, key field has no NUL \(record 1\); 1 record\(s\) skipped, value field has no NUL \(record 3\); 1 record\(s\) not valid UTF-8 \(returned as bytes\); 100 trailing byte\(s\)/);
    expect(nfs.readFileSync(pathOf(dir, 0)).equals(bytes)).toBe(true);
    // An in-place SET does not change the length, so the trailing bytes stay where they are.
    s.set(0, B('good2'), B('22'));
    expect(nfs.statSync(pathOf(dir, 0)).size).toBe(bytes.length);
  });

  it('moves a trailing partial record aside, byte for byte, before the file length changes', () => {
    const dir = tmp();
    const bytes = corrupt(dir);
    const l = logger();
    const s = open(dir, { log: l.log });
    s.set(0, B('new'), B('n'));
    const kept = nfs.readdirSync(dir).filter((f) => f.startsWith('.hvguest_torn_0_'));
    expect(kept).toHaveLength(1);
    expect(nfs.readFileSync(join(dir, kept[0]!)).equals(Buffer.alloc(100, 0x5a))).toBe(true);
    expect(nfs.readFileSync(pathOf(dir, 0)).equals(Buffer.concat([bytes.subarray(0, 5 * R), rec('new', 'n')]))).toBe(true);
    expect(l.warnings().some((w) => w.op === 'seal' && w.bytes === 100)).toBe(true);
  });

  it('keeps unusable records on disk even when a delete moves them', () => {
    const dir = tmp();
    const noKeyNul = Buffer.alloc(R, 0x41);
    nfs.writeFileSync(pathOf(dir, 0), Buffer.concat([rec('a', '1'), rec('b', '2'), noKeyNul]));
    const s = open(dir);
    expect(s.delete(0, B('a'))).toBe(true);
    expect(nfs.readFileSync(pathOf(dir, 0)).equals(Buffer.concat([noKeyNul, rec('b', '2')]))).toBe(true);
    expect(kv(s, 0)).toEqual(['b=2']);
    expect(s.info(0).unusable).toBe(1);
  });

  it('reads a file written by the C daemons with garbage after every NUL', () => {
    const dir = tmp();
    const recs = Array.from({ length: 60 }, (_, i) => rec(`key${i}`, `value${i}`, 0x20 + (i % 90)));
    nfs.writeFileSync(pathOf(dir, 3), Buffer.concat(recs));
    const s = open(dir);
    expect(kv(s, 3)).toEqual(recs.map((_, i) => `key${i}=value${i}`));
  });
});

describe('errors', () => {
  it('are PoolErrors with a code and the operation', () => {
    const s = open(tmp());
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(PoolError);
        return `${(e as PoolError).code} ${(e as PoolError).op}`;
      }
      return 'no error';
    };
    expect(code(() => s.get(5, B('k')))).toBe('EINVAL get');
    expect(code(() => s.list(-1))).toBe('EINVAL list');
    expect(code(() => s.set(0, Buffer.alloc(512, 0x61), B('v')))).toBe('EINVAL set');
    expect(code(() => s.set(0, B('k'), Buffer.alloc(2048, 0x61)))).toBe('EINVAL set');
    expect(code(() => s.set(0, B('k\0'), B('v')))).toBe('EINVAL set');
    s.close();
    expect(code(() => s.get(0, B('k')))).toBe('EBADF get');
    s.close(); // twice is fine
  });

  it('an I/O failure mid-change is reported, and the pool is left old or new', () => {
    const dir = tmp();
    let fail = false;
    const fs: PoolFs = {
      ...nodePoolFs,
      ftruncate(fd, len) {
        if (fail) throw Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' });
        nodePoolFs.ftruncate(fd, len);
      },
    };
    const s = open(dir, { fs });
    s.set(0, B('a'), B('1'));
    s.set(0, B('b'), B('2'));
    fail = true;
    expect(() => s.delete(0, B('a'))).toThrow(expect.objectContaining({ code: 'EIO', op: 'delete', pool: 0 }));
    fail = false;
    const after = kv(s, 0).sort();
    expect([['a=1', 'b=2'], ['b=2']]).toContainEqual(after);
    expect(nfs.statSync(join(dir, '.hvguest_journal_0')).size).toBe(64);
  });
});

describe('cost per operation on a 100,000-record pool', () => {
  it('get touches no record, set/append/delete one (bytes counted through the fs)', () => {
    const dir = tmp();
    const N = 100_000;
    const fd = nfs.openSync(pathOf(dir, 1), 'w');
    const chunk = 1000;
    for (let i = 0; i < N; i += chunk) {
      const recs: Buffer[] = [];
      for (let j = i; j < i + chunk; j++) recs.push(rec(`CLOUD_INIT|${j}|event`, `{"n":${j}}`));
      nfs.writeSync(fd, Buffer.concat(recs));
    }
    nfs.closeSync(fd);
    const cf = countingFs();
    let t = performance.now();
    const s = open(dir, { fs: cf.fs });
    expect(s.info(1).records).toBe(N);
    const loadMs = performance.now() - t;
    expect(cf.get('.kvp_pool_1').read).toBe(N * R);

    const pool = () => cf.get('.kvp_pool_1');
    const rnd = (n: number) => Math.floor(Math.random() * n);
    const timed = (n: number, f: (i: number) => void) => {
      cf.reset();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) f(i);
      return (performance.now() - t0) / n;
    };

    const getMs = timed(1000, () => expect(s.get(1, B(`CLOUD_INIT|${rnd(N)}|event`))).toBeDefined());
    expect(pool()).toMatchObject({ read: 0, written: 0 });

    const setMs = timed(100, (i) => s.set(1, B(`CLOUD_INIT|${rnd(N)}|event`), B(`changed ${i}`)));
    expect(pool()).toMatchObject({ written: 100 * R, writes: 100, read: 100 * R, truncates: 0 });

    const appendMs = timed(100, (i) => s.set(1, B(`new${i}`), B('v')));
    expect(pool()).toMatchObject({ written: 100 * R, writes: 100, read: 0, truncates: 0 });

    const deleteMs = timed(100, (i) => expect(s.delete(1, B(`CLOUD_INIT|${i * 997}|event`))).toBe(true));
    // Each delete reads the hole's and the last record's old bytes (for the journal), copies one record and truncates once.
    expect(pool()).toMatchObject({ written: 100 * R, writes: 100, read: 200 * R, truncates: 100 });

    t = performance.now();
    const listed = s.list(1).length;
    const listMs = performance.now() - t;
    expect(listed).toBe(N);
    expect(nfs.statSync(pathOf(dir, 1)).size).toBe(N * R);
    console.log(
      `pool of ${N} records (${(N * R) / 1e6} MB): load ${loadMs.toFixed(0)} ms, get ${(getMs * 1000).toFixed(1)} µs, ` +
        `set ${setMs.toFixed(2)} ms, append ${appendMs.toFixed(2)} ms, delete ${deleteMs.toFixed(2)} ms, list ${listMs.toFixed(0)} ms`,
    );
  }, 60_000);
});
