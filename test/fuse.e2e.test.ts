/**
 * What only the FUSE transport of `hvsim serve --fuse` can show, because a
 * socket cannot behave like the kernel's character device: a short read
 * fails EINVAL and keeps the message, reads block whatever O_NONBLOCK says
 * (and a signal ends them with EINTR), FreeBSD's VSS _IOR/_IOW ioctls carry
 * their bytes, poll wakes up when a request is posted, removal reaches
 * pollers. And the mount's lifecycle: SIGTERM, kill -9 of either process and
 * a stale mount at start leave no mount behind.
 *
 * The simulator always runs in another process: this process makes plain,
 * blocking system calls on the nodes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { FfiDevice } from '../common/device/ffi-device.js';
import { ioctlNumbers } from '../common/device/ioctl.js';
import { DeviceError } from '../common/device/types.js';
import { closeFd, openFd, osFlags, readFd, writeFd } from '../common/os/libc.js';
import { HV_E_FAIL, HV_S_OK, HV_VSS_CHECK, HV_VSS_FREEZE, KVP_OP_REGISTER1, VSS_FAIL, VSS_SUCCESS } from '../common/wire/constants.js';
import { encodeKvp } from '../common/wire/kvp.js';
import { decodeFreebsdVss, encodeFreebsdVss, encodeLinuxVss, linuxVssRegister } from '../common/wire/vss.js';
import { fuseUnavailable, mountsAt } from '../sim/fuse-server.js';
import { bin, killAll, run, start, stop, tempDir, type Proc } from './lib/procs.js';
import { noMountLeft } from './lib/transports.js';

const skip = fuseUnavailable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Child process ids of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Wait up to `ms` for `cond`; returns whether it came true. */
async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(25)) if (cond()) return true;
  return cond();
}

/**
 * A Linux VSS client in Python: opens the node with O_NONBLOCK, registers,
 * then reads twice. The first read is ended by SIGALRM after 0.5 s (printed
 * as EINTR with the time it blocked); the second waits for the host request
 * and answers it.
 */
const PY_NONBLOCK = `
import os, sys, signal, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NONBLOCK)
os.write(fd, bytes.fromhex(sys.argv[2]))
print("handshake", len(os.read(fd, 4)), flush=True)
class Alarm(Exception): pass
def on_alarm(sig, frame): raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.5)
t0 = time.monotonic()
try:
    os.read(fd, 12)
    print("read returned without a message", flush=True)
except Alarm:
    print("EINTR after %.2f" % (time.monotonic() - t0), flush=True)
print("reading", flush=True)
msg = os.read(fd, 12)
print("got", msg.hex(), flush=True)
os.write(fd, bytes(12))  # error (bytes 0..3, over the op) = 0: success
print("answered", flush=True)
`;

describe.skipIf(skip !== undefined)(`hvsim serve --fuse: what a socket cannot show${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let tmp: { dir: string; remove: () => void };
  let simDir: string;
  let sim: Proc | undefined;
  const opened: number[] = [];
  const devices: FfiDevice[] = [];

  const hvsim = (...args: string[]) => run(bin('hvsim'), ['--dir', simDir, ...args]);
  const json = async (...args: string[]) => {
    const r = await hvsim('--json', ...args);
    return { code: r.code, out: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
  };
  const serve = async (flavor: 'freebsd' | 'linux') => {
    const p = start(bin('hvsim'), ['serve', '--fuse', '--flavor', flavor, '--dir', simDir, '--kvp-timeout', '3', '--vss-timeout', '3', '--vss-freeze-timeout', '3']);
    await p.waitFor(/^hvsim: ready/);
    sim = p;
    return p;
  };
  const node = (name: string) => join(simDir, name);
  const openNode = (name: string, extra = 0) => {
    const fd = openFd(node(name), osFlags().O_RDWR | extra);
    opened.push(fd);
    return fd;
  };
  const device = (name: string, flavor: 'freebsd' | 'linux', service: 'kvp' | 'vss') => {
    const d = new FfiDevice({ path: node(name), flavor, service });
    devices.push(d);
    return d;
  };

  beforeEach(() => {
    tmp = tempDir('hvguest-fuse-');
    simDir = join(tmp.dir, 'sim');
  });
  afterEach(async () => {
    for (const fd of opened.splice(0)) closeFd(fd);
    for (const d of devices.splice(0)) d.close();
    if (sim) await stop(sim);
    sim = undefined;
    await killAll();
    noMountLeft(simDir);
    tmp.remove();
  });

  it('Linux: a read shorter than the queued message fails EINVAL and the message stays for the next read', async () => {
    await serve('linux');
    // VSS: the 4-byte handshake reply.
    const vss = openNode('vmbus/hv_vss');
    expect(writeFd(vss, linuxVssRegister(), 'hv_vss')).toBe(12);
    expect(() => readFd(vss, 2, 'hv_vss')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const reply = readFd(vss, 12, 'hv_vss');
    expect(reply.length).toBe(4);
    expect(reply.readUInt32LE(0)).toBe(129);
    // KVP: the 7432-byte REGISTER1 reply, after a read of one byte too few.
    const kvp = openNode('vmbus/hv_kvp');
    expect(writeFd(kvp, encodeKvp('linux', { operation: KVP_OP_REGISTER1, pool: 0 }), 'hv_kvp')).toBe(7432);
    expect(() => readFd(kvp, 7431, 'hv_kvp')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const k = readFd(kvp, 8000, 'hv_kvp');
    expect(k.length).toBe(7432);
    expect(k.readUInt8(0)).toBe(KVP_OP_REGISTER1);
    const st = await json('status');
    expect(st.out).toMatchObject({ kvp: { registered: true, version: '3.1' }, vss: { registered: true } });
  });

  it('Linux: a read blocks even with O_NONBLOCK; a signal ends it with EINTR and takes no message; the next read gets the request', async () => {
    await serve('linux');
    const py = start('python3', ['-c', PY_NONBLOCK, node('vmbus/hv_vss'), linuxVssRegister().toString('hex')]);
    await py.waitFor(/^handshake 4$/);
    const eintr = await py.waitFor(/^EINTR after|^read returned/);
    expect(eintr).toMatch(/^EINTR after/);
    expect(Number(eintr.split(' ').at(-1))).toBeGreaterThanOrEqual(0.45);
    await py.waitFor(/^reading$/);
    await sleep(300);
    expect(py.stdout()).not.toMatch(/^got/m);
    const check = await json('vss', 'check');
    expect(check.out, check.stderr).toMatchObject({ outcome: 'answered', status: HV_S_OK, flags: 5 });
    expect(await py.waitFor(/^got /)).toBe(`got ${encodeLinuxVss({ operation: 2 }).toString('hex')}`);
    await py.waitFor(/^answered$/);
  });

  it('FreeBSD: IOCHVVSSREAD (_IOR) copies the request out, IOCHVVSSWRITE (_IOW) carries the answer in', async () => {
    await serve('freebsd');
    const ioc = ioctlNumbers('linux');
    const fs = device('hv_fsvss_dev', 'freebsd', 'vss');
    await fs.open();
    // Nothing queued: the read reports status 1, the ioctl itself succeeds.
    const empty = decodeFreebsdVss(await fs.ioctl(ioc.IOCHVVSSREAD, encodeFreebsdVss({ opt: 0x55, status: 7 })));
    expect(empty).toMatchObject({ opt: 0, status: VSS_FAIL });

    for (const [op, want, answer, status] of [
      ['check', HV_VSS_CHECK, VSS_SUCCESS, HV_S_OK],
      ['freeze', HV_VSS_FREEZE, VSS_FAIL, HV_E_FAIL],
    ] as const) {
      const host = json('vss', op);
      expect(await fs.waitReadable()).toBe(true);
      const out = await fs.ioctl(ioc.IOCHVVSSREAD, Buffer.alloc(64, 0xee));
      const m = decodeFreebsdVss(out);
      if (m instanceof Error) throw m;
      expect(m.opt).toBe(want);
      expect(m.status).toBe(VSS_SUCCESS);
      expect(m.msgid).not.toBe(0n);
      // Bytes past the header come from the kernel (zero), not from the caller's 0xee.
      expect(out.subarray(16).equals(Buffer.alloc(48))).toBe(true);
      const reply = encodeFreebsdVss({ opt: m.opt, msgid: m.msgid, status: answer });
      const back = await fs.ioctl(ioc.IOCHVVSSWRITE, reply);
      expect(back.equals(reply)).toBe(true);
      expect((await host).out).toMatchObject({ outcome: 'answered', status });
    }
  });

  it('poll sleeps until the driver posts a request, then wakes with POLLIN', async () => {
    await serve('linux');
    const d = device('vmbus/hv_kvp', 'linux', 'kvp');
    await d.open();
    await d.register();
    let woke = false;
    const wait = d.waitReadable().then((v) => ((woke = true), v));
    await sleep(300);
    expect(woke).toBe(false);
    const host = json('kvp', 'get', '0', 'k');
    expect(await wait).toBe(true);
    const req = await d.read();
    expect(req.length).toBe(7432);
    d.close();
    expect((await host).out.outcome).toBe('daemon-closed');
  });

  for (const flavor of ['linux', 'freebsd'] as const) {
    it(`${flavor}: device removal fails the poll; opens fail until restore; then a daemon registers again`, async () => {
      await serve(flavor);
      const name = flavor === 'linux' ? 'vmbus/hv_kvp' : 'hv_kvp_dev';
      const d = device(name, flavor, 'kvp');
      await d.open();
      await d.register();
      const wait = d.waitReadable().then(
        (v) => ({ v }),
        (e: unknown) => ({ e }),
      );
      expect((await hvsim('remove')).code).toBe(0);
      const r = await wait;
      expect('e' in r && r.e instanceof DeviceError && r.e.code).toBe('EGONE');
      d.close();
      const again = device(name, flavor, 'kvp');
      await expect(again.open()).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await hvsim('restore')).code).toBe(0);
      await again.open();
      await again.register();
      expect((await json('status')).out.kvp.registered).toBe(true);
    });
  }

  it('SIGTERM unmounts, stops the front-end and removes the control socket', async () => {
    const p = await serve('linux');
    expect(mountsAt(simDir)).toEqual(['fuse.hvsim']);
    const [front] = childrenOf(p.child.pid!);
    expect(readFileSync(`/proc/${front}/cmdline`, 'utf8')).toMatch(/hvsim-fuse/);
    const ctl = readFileSync(`/proc/${front}/cmdline`, 'utf8').split('\0')[2]!;
    expect(existsSync(ctl)).toBe(true);
    expect(await stop(p)).toBe(0);
    expect(mountsAt(simDir)).toEqual([]);
    expect(await until(() => !alive(front!))).toBe(true);
    expect(existsSync(ctl)).toBe(false);
  });

  it('kill -9 of hvsim: the front-end sees the channel close, unmounts and exits', async () => {
    const p = await serve('freebsd');
    const [front] = childrenOf(p.child.pid!);
    p.child.kill('SIGKILL');
    await p.exited;
    expect(await until(() => mountsAt(simDir).length === 0)).toBe(true);
    expect(await until(() => !alive(front!))).toBe(true);
  });

  it('kill -9 of the front-end: hvsim reports it and exits non-zero; auto_unmount leaves no mount', async () => {
    const p = await serve('linux');
    const [front] = childrenOf(p.child.pid!);
    process.kill(front!, 'SIGKILL');
    const code = await p.exited;
    expect(code).not.toBe(0);
    expect(p.stderr()).toMatch(/hvsim-fuse\) killed by SIGKILL/);
    expect(await until(() => mountsAt(simDir).length === 0)).toBe(true);
  });

  it('a stale FUSE mount at DIR (server gone, ENOTCONN) is removed before mounting', async () => {
    mkdirSync(simDir, { recursive: true });
    // A FUSE mount whose /dev/fuse descriptor is closed right away: exactly what a crashed server leaves.
    const fd = openSync('/dev/fuse', 'r+');
    const mount = spawn('/usr/bin/mount', ['-i', '-t', 'fuse.hvsim', '-o', 'fd=3,rootmode=40000,user_id=0,group_id=0', 'stale', simDir], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    const mounted = await new Promise<number | null>((r) => mount.on('exit', r));
    closeSync(fd);
    expect(mounted).toBe(0);
    expect(mountsAt(simDir)).toEqual(['fuse.hvsim']);
    expect(() => readFileSync(join(simDir, 'x'))).toThrow(/ENOTCONN/);
    await serve('linux');
    expect(mountsAt(simDir)).toEqual(['fuse.hvsim']);
    expect(existsSync(node('vmbus/hv_kvp'))).toBe(true);
  });

  it('FreeBSD hv_kvp_dev second open: the driver\'s -EBUSY reaches open(2) as EBUSY', async () => {
    await serve('freebsd');
    openNode('hv_kvp_dev');
    expect(() => openNode('hv_kvp_dev')).toThrow(expect.objectContaining({ code: 'EBUSY' }));
  });
});

describe('hvsim serve --fuse refuses clearly when FUSE cannot work', () => {
  it('names the missing piece: /dev/fuse, root, the built front-end, Linux', () => {
    expect(fuseUnavailable({ platform: 'linux', uid: 0, devFuse: '/nonexistent/fuse' })).toMatch(/\/nonexistent\/fuse is missing .*modprobe fuse/);
    expect(fuseUnavailable({ platform: 'linux', uid: 1000, devFuse: '/dev/null' })).toMatch(/needs root/);
    expect(fuseUnavailable({ platform: 'linux', uid: 0, devFuse: '/dev/null', binary: '/nonexistent/hvsim-fuse' })).toMatch(/not built .*\/nonexistent\/hvsim-fuse/);
    expect(fuseUnavailable({ platform: 'freebsd' })).toMatch(/Linux only/);
  });

  it.skipIf(process.getuid?.() !== 0 || !existsSync('/usr/bin/setpriv'))('as a non-root user: exit status 2 and the reason on stderr, nothing mounted', async () => {
    const tmp = tempDir('hvguest-fuse-user-');
    try {
      const dir = join(tmp.dir, 'sim');
      const r = await run('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bin('hvsim'), 'serve', '--fuse', '--flavor', 'linux', '--dir', dir], { env: { TMPDIR: tmp.dir } });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/hvsim: .*needs root/);
      expect(mountsAt(dir)).toEqual([]);
    } finally {
      tmp.remove();
    }
  });
});
