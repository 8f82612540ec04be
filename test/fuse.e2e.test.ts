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
import { closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { FfiDevice } from '../common/device/ffi-device.js';
import { ioctlNumbers } from '../common/device/ioctl.js';
import { DeviceError } from '../common/device/types.js';
import { closeFd, openFd, osFlags, readFd, writeFd } from '../common/os/libc.js';
import { HV_E_FAIL, HV_S_OK, HV_VSS_CHECK, HV_VSS_FREEZE, KVP_OP_REGISTER1, VSS_FAIL, VSS_SUCCESS } from '../common/wire/constants.js';
import { isWireError } from '../common/wire/errors.js';
import { encodeKvp } from '../common/wire/kvp.js';
import { decodeFreebsdVss, encodeFreebsdVss, encodeLinuxVss, linuxVssRegister } from '../common/wire/vss.js';
import { FF_CANCEL, FF_IOCTL, FF_NOTIFY, FF_OPEN, FF_READ, FF_READY, FF_REPLY, FF_WRITE, FrameReader, decodeRequest, encodeFrame, encodeReply, type FuseRequest } from '../sim/fuse-proto.js';
import { FuseServer, fuseBinary, fuseMountsUnder, fuseUnavailable, mountsAt } from '../sim/fuse-server.js';
import { createSimulator } from '../sim/simulator.js';
import { ROOT, bin, killAll, run, start, startArgv, stop, tempDir, type Proc } from './lib/procs.js';
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
    const p = start(bin('hvsim'), ['serve', '--fuse', '--flavor', flavor, '--dir', simDir, '--kvp-timeout', '10', '--vss-timeout', '10', '--vss-freeze-timeout', '10']);
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
    // VSS: the 4-byte handshake reply. O_TRUNC is ignored, as by a character device.
    const vss = openNode('vmbus/hv_vss', fsConstants.O_TRUNC);
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
      if (isWireError(m)) throw new Error(m.message);
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

  it.skipIf(startArgv('x', [])[0] === 'x')('the test worker dying (vitest killing it, ^C) takes hvsim with it: the mount goes, nothing is left running', async () => {
    // A stand-in for the vitest worker: starts hvsim as start() does, prints its pid, then is killed with SIGKILL.
    const [file, argv] = startArgv(process.execPath, [bin('hvsim'), 'serve', '--fuse', '--flavor', 'linux', '--dir', simDir]);
    const worker = start(process.execPath, [
      '-e',
      `const c = require('node:child_process').spawn(process.argv[1], JSON.parse(process.argv[2]), { stdio: ['ignore', 'pipe', 'inherit'] });
       c.stdout.on('data', (d) => { if (/^hvsim: ready/m.test(d)) console.log('sim ' + c.pid); });`,
      file,
      JSON.stringify(argv),
    ]);
    const simPid = Number((await worker.waitFor(/^sim \d+$/, 20_000)).split(' ')[1]);
    const [front] = childrenOf(simPid);
    expect(mountsAt(simDir)).toEqual(['fuse.hvsim']);
    worker.child.kill('SIGKILL');
    await worker.exited;
    expect(await until(() => !alive(simPid))).toBe(true);
    expect(await until(() => !alive(front!))).toBe(true);
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
    expect(fuseMountsUnder(tmp.dir)).toEqual([simDir]);
    expect(fuseMountsUnder(join(tmp.dir, 'si'))).toEqual([]);
    expect(() => readFileSync(join(simDir, 'x'))).toThrow(/ENOTCONN/);
    await serve('linux');
    expect(mountsAt(simDir)).toEqual(['fuse.hvsim']);
    expect(existsSync(node('vmbus/hv_kvp'))).toBe(true);
  });

  it('a second hvsim serve --fuse on a DIR whose simulator still answers is refused and leaves the first one working', async () => {
    await serve('linux');
    const second = await run(bin('hvsim'), ['serve', '--fuse', '--flavor', 'linux', '--dir', simDir]);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/another hvsim serve is running at/);
    expect(mountsAt(simDir)).toEqual(['fuse.hvsim']);
    expect((await json('status')).out.flavor).toBe('linux');
  });

  it('FreeBSD hv_kvp_dev second open: the driver\'s -EBUSY reaches open(2) as EBUSY', async () => {
    await serve('freebsd');
    openNode('hv_kvp_dev');
    expect(() => openNode('hv_kvp_dev')).toThrow(expect.objectContaining({ code: 'EBUSY' }));
  });
});

/**
 * A client for the fake-simulator tests: runs OPS (open, read:N,
 * alarmread:N:SECONDS (SIGALRM then, its handler raising), write:HEX,
 * ioctl:CMD:SIZE, close) on PATH in order, one line each:
 * "ok OP RESULT" or "err OP ERRNO-NAME".
 */
const PY_OPS = `
import os, sys, errno, fcntl, signal
class Alarm(Exception): pass
def on_alarm(sig, frame): raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
fd = None
for op in sys.argv[2:]:
    w = op.split(":")
    try:
        if w[0] == "alarmread":
            signal.setitimer(signal.ITIMER_REAL, float(w[2]))
            try:
                r = os.read(fd, int(w[1])).hex()
            except Alarm:
                r = "alarm"
        elif w[0] == "open":
            fd = os.open(sys.argv[1], os.O_RDWR); r = ""
        elif w[0] == "read":
            r = os.read(fd, int(w[1])).hex()
        elif w[0] == "write":
            r = os.write(fd, bytes.fromhex(w[1]))
        elif w[0] == "ioctl":
            buf = bytearray(int(w[2]))
            r = "%d %s" % (fcntl.ioctl(fd, int(w[1], 0), buf, True), bytes(buf).hex())
        elif w[0] == "close":
            os.close(fd); r = ""
        print("ok", w[0], r, flush=True)
    except OSError as e:
        print("err", w[0], errno.errorcode.get(e.errno, e.errno), flush=True)
`;

/** _IOR('x', 1, u64): the kernel hands the front-end an 8-byte out buffer. */
const IOR_X1 = ((2 << 30) | (8 << 16) | (0x78 << 8) | 1) >>> 0;

/**
 * The front-end (hvsim-fuse) driven by a fake simulator written here, which
 * can send what the real one never does: frames split into single bytes,
 * replies to nobody, unknown frame types, replies that do not fit their
 * request, a malformed length, a channel closed in the middle of a frame.
 */
describe.skipIf(skip !== undefined)(`hvsim-fuse against a fake simulator: split, unknown and malformed frames${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let tmp: { dir: string; remove: () => void };
  let front: ChildProcess | undefined;

  /** Start the front-end on DIR/mnt with one node "dev" and wait for READY. */
  async function startFront() {
    const dir = join(tmp.dir, 'mnt');
    mkdirSync(dir);
    const child = spawn(fuseBinary(), [dir, '/nonexistent/hvsim.ctl', 'dev'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    front = child;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
    const chan = child.stdio[3] as Socket;
    chan.on('error', () => {});
    const reader = new FrameReader();
    const queue: FuseRequest[] = [];
    let wake = () => {};
    let ready = false;
    chan.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        const r = decodeRequest(f);
        if (r instanceof Error) throw r;
        if (r.type === FF_READY) ready = true;
        else queue.push(r);
      }
      wake();
    });
    const next = async <T extends FuseRequest['type']>(type: T, ms = 10_000): Promise<Extract<FuseRequest, { type: T }>> => {
      for (const t0 = Date.now(); Date.now() - t0 < ms; ) {
        const i = queue.findIndex((q) => q.type === type);
        if (i >= 0) return queue.splice(i, 1)[0] as Extract<FuseRequest, { type: T }>;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
      throw new Error(`no request of type ${type} from hvsim-fuse; stderr: ${stderr}`);
    };
    if (!(await until(() => ready || child.exitCode !== null, 10_000)) || !ready) throw new Error(`hvsim-fuse did not mount: ${stderr}`);
    /** Write `buf` one byte at a time, each its own write on the socket. */
    const dribble = async (buf: Buffer) => {
      for (const b of buf) {
        chan.write(Buffer.of(b));
        await sleep(2);
      }
    };
    const client = (...ops: string[]) => {
      const p = start('python3', ['-c', PY_OPS, join(dir, 'dev'), ...ops]);
      /** The client's `n`th output line (1-based), once it is there. */
      const line = async (n: number): Promise<string | undefined> => {
        const lines = () => p.stdout().split('\n').slice(0, -1);
        await until(() => lines().length >= n || p.child.exitCode !== null, 10_000);
        return lines()[n - 1];
      };
      return { ...p, line };
    };
    return { dir, child, chan, next, dribble, client, exited, stderr: () => stderr };
  }

  beforeEach(() => {
    tmp = tempDir('hvguest-fuse-fake-');
  });
  afterEach(async () => {
    // The front-end goes first: a client killed while its request is with the front-end
    // waits (unkillable) for the answer, which only the connection's end gives.
    if (front && front.exitCode === null && front.signalCode === null) {
      const f = front;
      f.kill('SIGKILL');
      await new Promise((r) => f.on('exit', r));
    }
    front = undefined;
    await killAll();
    // Not removed when a mount is left: rm must never walk into a mount.
    noMountLeft(join(tmp.dir, 'mnt'));
    tmp.remove();
  });

  it('frames split into single bytes, replies to unknown requests and unknown frame types are handled; the channel is not leaked to fusermount3', async () => {
    const f = await startFront();
    const py = f.client('open', 'read:16', 'write:0a0b0c');
    const open = await f.next(FF_OPEN);
    expect(open).toMatchObject({ node: 0, pid: py.child.pid });
    // Noise first, then the real reply dribbled a byte at a time.
    f.chan.write(Buffer.concat([encodeReply(999n, 1), encodeFrame(FF_NOTIFY, 77n), encodeFrame(200, 1n, Buffer.alloc(5))]));
    await f.dribble(encodeReply(open.id, 5));
    expect(await py.line(1)).toBe('ok open ');
    const read = await f.next(FF_READ);
    expect(read).toMatchObject({ fh: 5n, count: 16 });
    // The read's reply and the first half of the next frame arrive in one chunk.
    const r1 = encodeReply(read.id, 3, Buffer.from('abcdef', 'hex'));
    const junk = encodeReply(12345n, 0);
    f.chan.write(Buffer.concat([r1, junk.subarray(0, 7)]));
    expect(await py.line(2)).toBe('ok read abcdef');
    f.chan.write(junk.subarray(7));
    const write = await f.next(FF_WRITE);
    expect(write.data.toString('hex')).toBe('0a0b0c');
    f.chan.write(encodeReply(write.id, 3));
    expect(await py.line(3)).toBe('ok write 3');
    expect(f.child.exitCode).toBe(null);
    expect(mountsAt(f.dir)).toEqual(['fuse.hvsim']);
    expect(f.stderr()).toMatch(/reply to an unknown request ignored/);
    // fusermount3 (auto_unmount) lives as long as the mount: it must not hold the channel.
    const chanInode = readlinkSync(`/proc/${f.child.pid}/fd/3`);
    for (const pid of childrenOf(f.child.pid!)) {
      const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      expect(fds, `process ${pid} (${readFileSync(`/proc/${pid}/cmdline`, 'utf8')})`).not.toContain(chanInode);
    }
  });

  it('replies that do not fit their request reach the caller as EIO, and the front-end keeps serving', async () => {
    const f = await startFront();
    const py = f.client('open', 'read:16', 'read:16', 'read:16', 'read:16', `ioctl:${IOR_X1}:8`, `ioctl:${IOR_X1}:8`, 'read:16');
    f.chan.write(encodeReply((await f.next(FF_OPEN)).id, 1));
    const replies: [string, (id: bigint) => Buffer, string][] = [
      ['body shorter than the result', (id) => encodeFrame(FF_REPLY, id, Buffer.alloc(4)), 'err read EIO'],
      ['errno out of range', (id) => encodeReply(id, -(2n ** 32n) - 2n), 'err read EIO'],
      ['the most negative result', (id) => encodeReply(id, -(2n ** 63n)), 'err read EIO'],
      ['more bytes than the read asked for', (id) => encodeReply(id, 17, Buffer.alloc(17, 1)), 'err read EIO'],
    ];
    expect(await py.line(1)).toBe('ok open ');
    let n = 1;
    for (const [what, reply, want] of replies) {
      const r = await f.next(FF_READ);
      f.chan.write(reply(r.id));
      expect(await py.line(++n), what).toBe(want);
    }
    const io1 = await f.next(FF_IOCTL);
    expect(io1).toMatchObject({ cmd: IOR_X1, outSize: 8 });
    f.chan.write(encodeReply(io1.id, 2n ** 31n, Buffer.alloc(8)));
    expect(await py.line(++n), 'ioctl value above INT_MAX').toBe('err ioctl EIO');
    const io2 = await f.next(FF_IOCTL);
    f.chan.write(encodeReply(io2.id, 7, Buffer.from('0102030405060708', 'hex')));
    expect(await py.line(++n)).toBe('ok ioctl 7 0102030405060708');
    const last = await f.next(FF_READ);
    f.chan.write(encodeReply(last.id, 2, Buffer.from('beef', 'hex')));
    expect(await py.line(++n)).toBe('ok read beef');
    expect(await py.exited).toBe(0);
    expect(f.child.exitCode).toBe(null);
  });

  it('a signal during a read: CANCEL names the request; the reply that still comes (data, after the interrupt) completes it, and serving goes on', async () => {
    const f = await startFront();
    const py = f.client('open', 'alarmread:16:0.3', 'read:4');
    f.chan.write(encodeReply((await f.next(FF_OPEN)).id, 1));
    const read = await f.next(FF_READ);
    const cancel = await f.next(FF_CANCEL);
    expect(cancel.id).toBe(read.id);
    // A simulator that did not stop the read in time: the data comes after the interrupt.
    f.chan.write(encodeReply(read.id, 2, Buffer.from('abcd', 'hex')));
    expect(await py.line(2)).toMatch(/^ok alarmread (alarm|abcd)$/);
    const next = await f.next(FF_READ);
    expect(next.id).not.toBe(read.id);
    f.chan.write(encodeReply(next.id, 0));
    expect(await py.line(3)).toBe('ok read ');
    // A late reply to the finished request is ignored.
    f.chan.write(encodeReply(read.id, -4));
    expect(await until(() => /unknown request/.test(f.stderr()))).toBe(true);
    expect(f.child.exitCode).toBe(null);
    expect(await py.exited).toBe(0);
  });

  for (const [what, end, status, message] of [
    ['a frame length below the header size (only 4 bytes sent)', (chan: Socket) => chan.write(Buffer.from('08000000', 'hex')), 65, /malformed frame/],
    ['a frame length above 4 MiB', (chan: Socket) => chan.write(encodeReply(1n, 0).fill(0xff, 0, 4)), 65, /malformed frame/],
    ['the channel closing in the middle of a frame', (chan: Socket) => chan.end(encodeReply(1n, 0).subarray(0, 10)), 0, /middle of a frame/],
  ] as const) {
    it(`${what}: a blocked read fails EIO at once, the mount goes, exit status ${status}`, async () => {
      const f = await startFront();
      const py = f.client('open', 'read:16');
      f.chan.write(encodeReply((await f.next(FF_OPEN)).id, 1));
      await f.next(FF_READ);
      end(f.chan);
      expect(await py.line(2)).toBe('err read EIO');
      expect(await f.exited).toEqual({ code: status, signal: null });
      expect(f.stderr()).toMatch(message);
      expect(await until(() => mountsAt(f.dir).length === 0)).toBe(true);
    });
  }
});

/**
 * The other direction: FuseServer (the simulator's side) driven by a fake
 * front-end, a Python program on the channel (fd 3) that sends what
 * hvsim-fuse never does and writes every REPLY it gets, "ID RESULT" a line,
 * to MOUNTPOINT.replies.
 */
const PY_FAKE_FRONT = `
import os, struct, sys
def frame(t, i, body=b""):
    return struct.pack("<IHHQ", 16 + len(body), t, 0, i) + body
out = open(sys.argv[1] + ".replies", "w")
os.write(3, frame(9, 0))
os.write(3, frame(2, 41, bytes(4)))    # READ with a 4-byte body (needs 16)
os.write(3, frame(5, 42, bytes(8)))    # IOCTL with an 8-byte body (needs 16)
os.write(3, frame(7, 43))              # CANCEL of nothing: no reply
os.write(3, frame(6, 44, bytes(2)))    # RELEASE with a 2-byte body: no reply either
os.write(3, frame(1, 45, struct.pack("<III", 99, 1, 2)))  # OPEN of node 99, which does not exist
buf = b""
while True:
    d = os.read(3, 4096)
    if not d:
        break
    buf += d
    while len(buf) >= 16 and len(buf) >= struct.unpack_from("<I", buf)[0]:
        n, t, _, i = struct.unpack_from("<IHHQ", buf)
        out.write("%d %d %d\\n" % (t, i, struct.unpack_from("<q", buf, 16)[0]))
        out.flush()
        buf = buf[n:]
`;

describe.skipIf(skip !== undefined)(`FuseServer against a fake front-end${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('stop() while the front-end has not mounted yet ends it, and start() rejects instead of hanging', async () => {
    const tmp = tempDir('hvguest-fuse-front-');
    const fake = join(tmp.dir, 'never-ready');
    // Never sends READY; exits when the channel closes.
    writeFileSync(fake, '#!/usr/bin/env python3\nimport os\nwhile os.read(3, 4096): pass\n', { mode: 0o755 });
    const host = createSimulator({ flavor: 'linux' });
    const server = new FuseServer(join(tmp.dir, 'sim'), host.nodes, { controlTarget: '/nonexistent', binary: fake });
    try {
      const starting = server.start();
      const outcome = starting.then(
        () => 'started',
        (e: unknown) => (e instanceof Error ? e.message : String(e)),
      );
      await sleep(300);
      await server.stop(5000);
      expect(await outcome).toMatch(/cannot mount on .*hvsim-fuse exited/);
    } finally {
      await server.stop();
      host.close();
      tmp.remove();
    }
  });

  it('a request frame it cannot decode is reported and still answered with EIO, so its caller does not hang', async () => {
    const tmp = tempDir('hvguest-fuse-front-');
    const fake = join(tmp.dir, 'fake-front');
    const dir = join(tmp.dir, 'sim');
    writeFileSync(fake, `#!/usr/bin/env python3\n${PY_FAKE_FRONT}`, { mode: 0o755 });
    const errors: string[] = [];
    const host = createSimulator({ flavor: 'linux' });
    const server = new FuseServer(dir, host.nodes, { controlTarget: '/nonexistent', binary: fake, onError: (e) => errors.push(e instanceof Error ? e.message : String(e)) });
    try {
      await server.start();
      const replies = () => (existsSync(`${dir}.replies`) ? readFileSync(`${dir}.replies`, 'utf8').split('\n').filter(Boolean) : []);
      expect(await until(() => replies().length >= 3, 10_000)).toBe(true);
      // REPLY (128) with minus EIO (5) for the two undecodable requests, minus ENXIO (6) for the unknown node.
      expect(replies()).toEqual(['128 41 -5', '128 42 -5', '128 45 -6']);
      expect(errors).toEqual(['FUSE front-end: READ frame of 4 bytes, need 16', 'FUSE front-end: IOCTL frame of 8 bytes, need 16', 'FUSE front-end: RELEASE frame of 2 bytes, need 8']);
    } finally {
      await server.stop();
      host.close();
      noMountLeft(dir);
      tmp.remove();
    }
  });
});

describe('hvsim serve --fuse refuses clearly when FUSE cannot work', () => {
  it('names the missing piece: /dev/fuse, root, the built front-end, fusermount3, Linux', () => {
    expect(fuseUnavailable({ platform: 'linux', uid: 0, devFuse: '/nonexistent/fuse' })).toMatch(/\/nonexistent\/fuse is missing .*modprobe fuse/);
    expect(fuseUnavailable({ platform: 'linux', uid: 1000, devFuse: '/dev/null' })).toMatch(/needs root/);
    expect(fuseUnavailable({ platform: 'linux', uid: 0, devFuse: '/dev/null', binary: '/nonexistent/hvsim-fuse' })).toMatch(/not built .*\/nonexistent\/hvsim-fuse/);
    expect(fuseUnavailable({ platform: 'freebsd' })).toMatch(/Linux only/);
    expect(fuseUnavailable({ platform: 'linux', uid: 0, devFuse: '/dev/null', binary: '/dev/null', fusermount: ['/nonexistent/fusermount3'] })).toBe(
      'fusermount3 is missing (/nonexistent/fusermount3; Debian package fuse3)',
    );
    expect(fuseUnavailable({ platform: 'linux', uid: 0, devFuse: '/dev/null', binary: '/dev/null', fusermount: ['/dev/null'] })).toBe(undefined);
  });

  it('build/native.sh without a C compiler prints one line and succeeds', async () => {
    const r = await run('sh', [join(ROOT, 'build/native.sh')], { env: { CC: 'no-such-cc' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('native.sh: native freeze guard and FUSE front-end not built (no C compiler: no-such-cc)\n');
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
