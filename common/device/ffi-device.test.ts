/**
 * The FFI device's errno paths, with the C library replaced by a scripted
 * one (common/os/libc.ts setLibc): EINTR retries, EBADF, ENOTTY, short
 * writes, FreeBSD's negative -EBUSY on open, hang-ups while waiting, and an
 * abort waking a wait. No real descriptor is touched.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { FfiDevice } from './ffi-device.js';
import { DeviceError } from './types.js';
import { POLLHUP, POLLIN, setLibc, type RawLibc } from '../os/libc.js';
import { tempDir } from '../../test/lib/procs.js';

const E = constants.errno;
const DEV_FD = 7;
const WAKE_R = 100;
const WAKE_W = 101;

/** A scripted libc: each call takes the next scripted result for its name; errno is set with it. */
class Script implements RawLibc {
  private err = 0;
  readonly calls: string[] = [];
  readonly queue: Record<string, Array<{ ret: number; errno?: number; data?: Buffer; revents?: number[] }>> = {};
  private pending: { fds: Buffer; cb: (err: unknown, res: number) => void } | undefined;
  private wakeBytes = 0;

  push(name: string, ...results: Array<{ ret: number; errno?: number; data?: Buffer; revents?: number[] }>): this {
    (this.queue[name] ??= []).push(...results);
    return this;
  }

  private take(name: string, fallback: number) {
    this.calls.push(name);
    const r = this.queue[name]?.shift() ?? { ret: fallback };
    this.err = r.errno ?? 0;
    return r;
  }

  open(): number {
    return this.take('open', DEV_FD).ret;
  }
  close(): number {
    this.calls.push('close');
    return 0;
  }
  read(fd: number, buf: Buffer, n: number): number {
    if (fd === WAKE_R) {
      if (!this.wakeBytes) {
        this.err = E.EAGAIN;
        return -1;
      }
      this.wakeBytes = 0;
      return 1;
    }
    const r = this.take('read', 0);
    if (r.data) r.data.copy(buf, 0, 0, Math.min(n, r.data.length));
    return r.ret;
  }
  write(fd: number, _buf: Buffer, n: number): number {
    if (fd === WAKE_W) {
      this.wakeBytes++;
      // The wake-up makes a pending poll return with the pipe readable.
      const p = this.pending;
      this.pending = undefined;
      if (p) {
        p.fds.writeInt16LE(POLLIN, 8 + 6);
        setImmediate(() => p.cb(null, 1));
      }
      return n;
    }
    return this.take('write', n).ret;
  }
  ioctl(): number {
    return this.take('ioctl', 0).ret;
  }
  poll(): number {
    return this.take('poll', 0).ret;
  }
  pollAsync(fds: Buffer, _n: number, _t: number, cb: (err: unknown, res: number) => void): void {
    const r = this.queue.pollAsync?.shift();
    this.calls.push('pollAsync');
    if (!r) {
      this.pending = { fds, cb }; // waits until the wake pipe is written
      return;
    }
    (r.revents ?? []).forEach((v, i) => fds.writeInt16LE(v, i * 8 + 6));
    setImmediate(() => cb(null, r.ret));
  }
  pipe2(fds: number[]): number {
    fds[0] = WAKE_R;
    fds[1] = WAKE_W;
    return 0;
  }
  socket(): number {
    return -1;
  }
  connect(): number {
    return -1;
  }
  bind(): number {
    return -1;
  }
  listen(): number {
    return -1;
  }
  accept4(): number {
    return -1;
  }
  fcntl(): number {
    return 0;
  }
  errno(): number {
    return this.err;
  }
}

describe('FfiDevice with scripted system calls', () => {
  let tmp: { dir: string; remove: () => void };
  let path: string;
  let s: Script;

  beforeEach(() => {
    tmp = tempDir();
    path = join(tmp.dir, 'hv_kvp_dev');
    writeFileSync(path, ''); // a plain file stands in for the node: open(2) must not require S_ISCHR
    s = new Script();
    setLibc(s);
  });
  afterEach(() => {
    setLibc(undefined);
    tmp.remove();
  });

  const device = () => new FfiDevice({ path, flavor: 'freebsd', service: 'kvp' });
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error('expected a failure');
      },
      (e: unknown) => e as DeviceError,
    );

  it('a negative errno from open (FreeBSD hv_kvp returns -EBUSY) is reported as EBUSY', async () => {
    s.push('open', { ret: -1, errno: -16 });
    const e = await failure(device().open());
    expect(e).toBeInstanceOf(DeviceError);
    expect(e.code).toBe('EBUSY');
    expect(e.message).toContain(`open ${path}: EBUSY`);
  });

  it('a missing node names the path and suggests the driver', async () => {
    const d = new FfiDevice({ path: join(tmp.dir, 'nope'), flavor: 'linux', service: 'kvp' });
    const e = await failure(d.open());
    expect(e.code).toBe('ENOENT');
    expect(e.message).toMatch(/hv_kvp driver|Hyper-V driver/);
  });

  it('read retries EINTR and returns the message', async () => {
    const d = device();
    await d.open();
    s.push('read', { ret: -1, errno: E.EINTR }, { ret: 5, data: Buffer.from('hello') });
    expect((await d.read(5)).toString()).toBe('hello');
    expect(s.calls.filter((c) => c === 'read')).toHaveLength(2);
  });

  it('read EBADF becomes a DeviceError naming the operation and path', async () => {
    const d = device();
    await d.open();
    s.push('read', { ret: -1, errno: E.EBADF });
    const e = await failure(d.read());
    expect(e.code).toBe('EBADF');
    expect(e.op).toBe('read');
    expect(e.path).toBe(path);
  });

  it('a short write is an error (ESHORT), never silently accepted', async () => {
    const d = device();
    await d.open();
    s.push('write', { ret: 100 });
    const e = await failure(d.write(Buffer.alloc(7430)));
    expect(e.code).toBe('ESHORT');
    expect(e.message).toContain('100 of 7430');
  });

  it('write EINVAL (a late reply on Linux) is reported as EINVAL', async () => {
    const d = device();
    await d.open();
    s.push('write', { ret: -1, errno: E.EINVAL });
    expect((await failure(d.write(Buffer.alloc(10)))).code).toBe('EINVAL');
  });

  it('ioctl ENOTTY is reported with the request number', async () => {
    const d = device();
    await d.open();
    s.push('ioctl', { ret: -1, errno: E.ENOTTY });
    const e = await failure(d.ioctl(0x40407602, Buffer.alloc(64)));
    expect(e.code).toBe('ENOTTY');
    expect(e.op).toBe('ioctl 0x40407602');
  });

  it('waitReadable: POLLIN resolves true; a hang-up rejects EGONE', async () => {
    const d = device();
    await d.open();
    s.push('pollAsync', { ret: 1, revents: [POLLIN, 0] });
    expect(await d.waitReadable()).toBe(true);
    s.push('pollAsync', { ret: 1, revents: [POLLHUP, 0] });
    expect((await failure(d.waitReadable())).code).toBe('EGONE');
  });

  it('waitReadable: a failed async poll is re-checked on this thread (EINTR loops, EBADF fails)', async () => {
    const d = device();
    await d.open();
    s.push('pollAsync', { ret: -1 }, { ret: 1, revents: [POLLIN, 0] });
    s.push('poll', { ret: -1, errno: E.EINTR });
    expect(await d.waitReadable()).toBe(true);
    s.push('pollAsync', { ret: -1 });
    s.push('poll', { ret: -1, errno: E.EBADF });
    expect((await failure(d.waitReadable())).code).toBe('EBADF');
  });

  it('an abort wakes a pending wait through the wake-up pipe', async () => {
    const d = device();
    await d.open();
    const ac = new AbortController();
    const w = d.waitReadable(ac.signal);
    await new Promise((r) => setImmediate(r));
    expect(s.calls).toContain('pollAsync');
    ac.abort();
    expect(await w).toBe(false);
  });

  it('close while a wait is pending closes the descriptors only after the wait ends', async () => {
    const d = device();
    await d.open();
    const w = d.waitReadable();
    await new Promise((r) => setImmediate(r));
    d.close();
    expect(s.calls.filter((c) => c === 'close')).toHaveLength(0);
    await w;
    // wake pipe (2) and the device
    expect(s.calls.filter((c) => c === 'close')).toHaveLength(3);
  });
});
