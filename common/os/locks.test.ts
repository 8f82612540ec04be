/**
 * Whole-file locks: the struct flock layouts against bytes built by hand,
 * the per-OS policy and the bounded wait with scripted syscalls, then real
 * locks held by a child process (its own koffi binding, not this module).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errnoNumber } from './libc.js';
import {
  decodeFlock,
  encodeFlock,
  FCNTL,
  FLOCK_LAYOUT,
  LOCK_EX,
  LOCK_NB,
  LOCK_POLICY,
  LOCK_SH,
  LOCK_UN,
  LockError,
  lockWholeFile,
  withWholeFileLock,
  type LockSys,
} from './locks.js';

const EAGAIN = errnoNumber('EAGAIN')!;
const EACCES = errnoNumber('EACCES')!;
const EINTR = errnoNumber('EINTR')!;
const EBADF = errnoNumber('EBADF')!;

describe('struct flock', () => {
  it('Linux x86_64: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid = 32 bytes', () => {
    const b = encodeFlock('linux', { type: 1, whence: 0, start: 0x0102, len: 0x0304, pid: 0x0506 });
    const want = Buffer.alloc(32);
    want[0] = 1; // l_type F_WRLCK
    want[8] = 0x02; // l_start
    want[9] = 0x01;
    want[16] = 0x04; // l_len
    want[17] = 0x03;
    want[24] = 0x06; // l_pid
    want[25] = 0x05;
    expect(b.toString('hex')).toBe(want.toString('hex'));
    expect(decodeFlock('linux', b)).toEqual({ type: 1, whence: 0, start: 0x0102, len: 0x0304, pid: 0x0506 });
  });

  it('FreeBSD amd64: off_t l_start, off_t l_len, pid_t l_pid, short l_type, short l_whence, int l_sysid = 32 bytes', () => {
    const b = encodeFlock('freebsd', { type: 3, whence: 1, start: 0x0102, len: 0x0304, pid: 0x0506 });
    const want = Buffer.alloc(32);
    want[0] = 0x02; // l_start
    want[1] = 0x01;
    want[8] = 0x04; // l_len
    want[9] = 0x03;
    want[16] = 0x06; // l_pid
    want[17] = 0x05;
    want[20] = 3; // l_type F_WRLCK
    want[22] = 1; // l_whence
    expect(b.toString('hex')).toBe(want.toString('hex'));
    expect(decodeFlock('freebsd', b)).toEqual({ type: 3, whence: 1, start: 0x0102, len: 0x0304, pid: 0x0506 });
  });

  it('whole file by default: start 0, length 0, SEEK_SET', () => {
    for (const os of ['linux', 'freebsd'] as const) expect(decodeFlock(os, encodeFlock(os, { type: 2 }))).toEqual({ type: 2, whence: 0, start: 0, len: 0, pid: 0 });
  });

  it('constants are the headers\' numbers', () => {
    expect(FCNTL.linux).toEqual({ F_GETLK: 5, F_SETLK: 6, F_SETLKW: 7, F_RDLCK: 0, F_WRLCK: 1, F_UNLCK: 2 });
    expect(FCNTL.freebsd).toEqual({ F_GETLK: 11, F_SETLK: 12, F_SETLKW: 13, F_RDLCK: 1, F_WRLCK: 3, F_UNLCK: 2 });
    expect([LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN]).toEqual([1, 2, 4, 8]);
    expect(FLOCK_LAYOUT.linux.size).toBe(32);
    expect(FLOCK_LAYOUT.freebsd.size).toBe(32);
  });
});

/** Scripted syscalls: each call is logged; `fcntlResults`/`flockResults` give errno per attempt (0 = success). */
function scripted(opts: { os: 'linux' | 'freebsd'; fcntl?: number[]; flock?: number[]; holder?: number; unlockErrno?: number }) {
  const calls: string[] = [];
  const fc = [...(opts.fcntl ?? [])];
  const fl = [...(opts.flock ?? [])];
  let clock = 0;
  let err = 0;
  const sys: LockSys = {
    fcntl(fd, cmd, buf) {
      const f = decodeFlock(opts.os, buf);
      calls.push(`fcntl ${fd} ${cmd} type=${f.type} start=${f.start} len=${f.len}`);
      const c = FCNTL[opts.os];
      if (cmd === c.F_GETLK) {
        if (opts.holder !== undefined) {
          const filled = encodeFlock(opts.os, { type: c.F_WRLCK, pid: opts.holder });
          filled.copy(buf);
        } else encodeFlock(opts.os, { type: c.F_UNLCK }).copy(buf);
        return 0;
      }
      if (f.type === c.F_UNLCK && opts.unlockErrno) return ((err = opts.unlockErrno), -1);
      const e = f.type === c.F_UNLCK ? 0 : (fc.shift() ?? EAGAIN);
      if (e === 0) return 0;
      err = e;
      return -1;
    },
    flock(fd, op) {
      calls.push(`flock ${fd} ${op}`);
      if (op === LOCK_UN && opts.unlockErrno) return ((err = opts.unlockErrno), -1);
      const e = op === LOCK_UN ? 0 : (fl.shift() ?? EAGAIN);
      if (e === 0) return 0;
      err = e;
      return -1;
    },
    errno: () => err,
    sleep(ms) {
      calls.push(`sleep ${ms}`);
      clock += ms;
    },
    now: () => clock,
  };
  return { sys, calls, clock: () => clock };
}

describe('lock policy (scripted syscalls)', () => {
  it('Linux: flock(LOCK_EX|LOCK_NB), then fcntl F_SETLK F_WRLCK on the whole file; released in reverse', () => {
    const s = scripted({ os: 'linux', fcntl: [0], flock: [0] });
    const l = lockWholeFile(7, '/p/.kvp_pool_1', { os: 'linux', sys: s.sys });
    expect(s.calls).toEqual(['flock 7 6', 'fcntl 7 6 type=1 start=0 len=0']);
    l.release();
    expect(s.calls.slice(2)).toEqual(['fcntl 7 6 type=2 start=0 len=0', 'flock 7 8']);
    expect(LOCK_POLICY.linux).toEqual(['flock', 'fcntl']);
  });

  it('FreeBSD: the fcntl lock only (it already excludes flock users there)', () => {
    const s = scripted({ os: 'freebsd', fcntl: [0] });
    lockWholeFile(3, 'f', { os: 'freebsd', sys: s.sys }).release();
    expect(s.calls).toEqual(['fcntl 3 12 type=3 start=0 len=0', 'fcntl 3 12 type=2 start=0 len=0']);
  });

  it('read mode: LOCK_SH and F_RDLCK', () => {
    const s = scripted({ os: 'linux', fcntl: [0], flock: [0] });
    lockWholeFile(3, 'f', { os: 'linux', sys: s.sys, mode: 'read' }).release();
    expect(s.calls.slice(0, 2)).toEqual([`flock 3 ${LOCK_SH | LOCK_NB}`, 'fcntl 3 6 type=0 start=0 len=0']);
  });

  it('contention: retries with short growing sleeps, never a blocking call', () => {
    const s = scripted({ os: 'freebsd', fcntl: [EAGAIN, EACCES, EAGAIN, 0] });
    lockWholeFile(3, 'f', { os: 'freebsd', sys: s.sys }).release();
    expect(s.calls.filter((c) => c.startsWith('sleep'))).toEqual(['sleep 1', 'sleep 2', 'sleep 4']);
    expect(s.calls.some((c) => / 13 | 7 /.test(c))).toBe(false); // no F_SETLKW
  });

  it('EINTR is retried at once', () => {
    const s = scripted({ os: 'linux', fcntl: [EINTR, 0], flock: [EINTR, 0] });
    lockWholeFile(3, 'f', { os: 'linux', sys: s.sys }).release();
    expect(s.calls.filter((c) => c.startsWith('sleep'))).toEqual([]);
  });

  it('times out at the deadline with a clear error naming file, lock and holder; the flock taken first is released', () => {
    const s = scripted({ os: 'linux', fcntl: [], flock: [0], holder: 4242 });
    let err: unknown;
    try {
      lockWholeFile(9, '/var/lib/hyperv/.kvp_pool_1', { os: 'linux', sys: s.sys, timeoutMs: 300 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LockError);
    const le = err as LockError;
    expect(le.code).toBe('ETIMEDOUT');
    expect(le.kind).toBe('fcntl');
    expect(le.holderPid).toBe(4242);
    expect(le.message).toBe('lock /var/lib/hyperv/.kvp_pool_1: timed out after 300 ms waiting for the fcntl F_WRLCK lock (held by pid 4242)');
    expect(s.clock()).toBe(300);
    expect(Math.max(...s.calls.filter((c) => c.startsWith('sleep')).map((c) => Number(c.split(' ')[1])))).toBeLessThanOrEqual(20);
    expect(s.calls.at(-1)).toBe(`flock 9 ${LOCK_UN}`);
  });

  it('a flock timeout says so and holds nothing', () => {
    const s = scripted({ os: 'linux', flock: [] });
    expect(() => lockWholeFile(9, 'f', { os: 'linux', sys: s.sys, timeoutMs: 50 })).toThrow(/lock f: timed out after 50 ms waiting for the flock\(LOCK_EX\) \(another process holds it; cloud-init takes flock\)/);
    expect(s.calls.some((c) => c.startsWith('fcntl'))).toBe(false);
  });

  it('other errors fail at once with the errno name', () => {
    const s = scripted({ os: 'freebsd', fcntl: [EBADF] });
    expect(() => lockWholeFile(9, 'f', { os: 'freebsd', sys: s.sys })).toThrow(expect.objectContaining({ code: 'EBADF', message: 'lock f: fcntl F_WRLCK lock: EBADF' }));
  });

  it('release tries every lock and reports the first failure', () => {
    const s = scripted({ os: 'linux', fcntl: [0], flock: [0], unlockErrno: EBADF });
    const l = lockWholeFile(9, 'f', { os: 'linux', sys: s.sys });
    expect(() => l.release()).toThrow(/unlock f: fcntl F_WRLCK lock: EBADF/);
    expect(s.calls.slice(-2)).toEqual(['fcntl 9 6 type=2 start=0 len=0', `flock 9 ${LOCK_UN}`]);
  });

  it('withWholeFileLock releases when the body throws, and the body\'s error wins', () => {
    const s = scripted({ os: 'freebsd', fcntl: [0] });
    expect(() =>
      withWholeFileLock(3, 'f', { os: 'freebsd', sys: s.sys }, () => {
        throw new Error('body');
      }),
    ).toThrow('body');
    expect(s.calls.at(-1)).toBe('fcntl 3 12 type=2 start=0 len=0');
    const s2 = scripted({ os: 'freebsd', fcntl: [0] });
    expect(withWholeFileLock(3, 'f', { os: 'freebsd', sys: s2.sys }, () => 42)).toBe(42);
  });
});

// ---- real locks ------------------------------------------------------------

const ROOT = resolve(import.meta.dirname, '../..');
const isLinux = process.platform === 'linux';

/** A child that takes a lock with its own koffi binding, prints "locked", and holds it for `holdMs`. */
const HOLDER = `
import { createRequire } from 'node:module';
import fs from 'node:fs';
const require = createRequire(${JSON.stringify(join(ROOT, 'package.json'))});
const koffi = require('koffi');
const lib = koffi.load(process.platform === 'freebsd' ? 'libc.so.7' : 'libc.so.6');
const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
const flock = lib.func('int flock(int fd, int op)');
const [file, kind, holdMs] = process.argv.slice(2);
const fd = fs.openSync(file, 'r+');
let r;
if (kind === 'flock') r = flock(fd, 2);
else {
  const bsd = process.platform === 'freebsd';
  const b = Buffer.alloc(32);
  if (bsd) b.writeInt16LE(3, 20); else b.writeInt16LE(1, 0);
  r = fcntl(fd, bsd ? 12 : 6, 'void *', b);
}
if (r !== 0) { console.log('failed ' + koffi.errno()); process.exit(1); }
console.log('locked');
setTimeout(() => process.exit(0), Number(holdMs));
`;

describe.skipIf(process.platform !== 'linux' && process.platform !== 'freebsd')('real locks against another process', () => {
  let dir: string;
  let file: string;
  const children: ChildProcess[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hvguest-locks-'));
    file = join(dir, '.kvp_pool_1');
    writeFileSync(file, '');
    writeFileSync(join(dir, 'holder.mjs'), HOLDER);
  });
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /** Start a holder and resolve once it holds the lock. */
  function hold(kind: 'fcntl' | 'flock', holdMs: number): Promise<ChildProcess> {
    const c = spawn(process.execPath, [join(dir, 'holder.mjs'), file, kind, String(holdMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(c);
    return new Promise((res, rej) => {
      c.stdout!.on('data', (d: Buffer) => (d.toString().includes('locked') ? res(c) : rej(new Error(d.toString()))));
      c.on('exit', (code) => rej(new Error(`holder exited ${code}`)));
    });
  }

  it('a child holding the fcntl lock makes us wait, then time out naming the file, the lock and the pid', async () => {
    const child = await hold('fcntl', 10_000);
    const fd = openSync(file, 'r+');
    try {
      const t0 = performance.now();
      let err: LockError | undefined;
      try {
        lockWholeFile(fd, file, { timeoutMs: 400 });
      } catch (e) {
        err = e as LockError;
      }
      const waited = performance.now() - t0;
      expect(err?.code).toBe('ETIMEDOUT');
      expect(err?.kind).toBe('fcntl');
      expect(err?.message).toMatch(new RegExp(`^lock ${file}: timed out after \\d+ ms waiting for the fcntl F_WRLCK lock \\(held by pid ${child.pid}\\)$`));
      expect(waited).toBeGreaterThanOrEqual(390);
      expect(waited).toBeLessThan(1500);
      if (isLinux) expect(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')).not.toMatch(/^lock:/m); // nothing left held by us
    } finally {
      closeSync(fd);
      child.kill('SIGKILL');
    }
  });

  it('gets the lock once the holder lets go within the deadline', async () => {
    const child = await hold('fcntl', 200);
    const fd = openSync(file, 'r+');
    try {
      const t0 = performance.now();
      const l = lockWholeFile(fd, file, { timeoutMs: 3000 });
      const waited = performance.now() - t0;
      l.release();
      expect(waited).toBeGreaterThan(100);
      expect(waited).toBeLessThan(2500);
    } finally {
      closeSync(fd);
      child.kill('SIGKILL');
    }
  });

  it.skipIf(!isLinux)('Linux: a child holding flock(LOCK_EX) (as cloud-init does) also blocks us', async () => {
    const child = await hold('flock', 10_000);
    const fd = openSync(file, 'r+');
    try {
      expect(() => lockWholeFile(fd, file, { timeoutMs: 300 })).toThrow(/waiting for the flock\(LOCK_EX\)/);
      expect(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')).not.toMatch(/^lock:/m);
    } finally {
      closeSync(fd);
      child.kill('SIGKILL');
    }
  });

  it.skipIf(!isLinux)('Linux: both locks are really held while locked, and gone after release', () => {
    const fd = openSync(file, 'r+');
    try {
      const l = lockWholeFile(fd, file);
      const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
      expect(info).toMatch(/^lock:.*FLOCK\s+ADVISORY\s+WRITE/m);
      expect(info).toMatch(/^lock:.*POSIX\s+ADVISORY\s+WRITE/m);
      l.release();
      expect(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')).not.toMatch(/^lock:/m);
    } finally {
      closeSync(fd);
    }
  });
});
