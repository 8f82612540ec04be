/**
 * Serves simulated device nodes as files of a FUSE mount at a directory
 * (DIR/hv_kvp_dev, DIR/vmbus/hv_kvp), the third transport beside the
 * SOCK_SEQPACKET server and the in-memory device. The FUSE side is a small
 * C program (sim/fuse/hvsim-fuse.c, built into dist/native/hvsim-fuse);
 * every open/read/write/poll/ioctl/release a process makes on a node comes
 * here as a frame (sim/fuse-proto.ts) and goes to the node's driver, the
 * same SimNode the other transports use. Unlike a socket, a FUSE file has
 * the character device's semantics: a short read fails EINVAL and keeps
 * the message, reads block whatever O_NONBLOCK says, restricted _IOR/_IOW
 * ioctls carry their bytes, and poll wakes up through FUSE notifications.
 *
 * The front-end unmounts and exits when this side closes the channel (stop,
 * or this process dying); it mounts with auto_unmount, so its own crash
 * unmounts too. A stale mount left at DIR is removed before mounting.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Socket } from 'node:net';
import { errnoNumber } from '../common/os/libc.js';
import {
  FF_CANCEL,
  FF_IOCTL,
  FF_NOTIFY,
  FF_OPEN,
  FF_POLL,
  FF_READ,
  FF_READY,
  FF_RELEASE,
  FF_WRITE,
  FrameReader,
  decodeRequest,
  encodeFrame,
  encodeReply,
  type FuseRequest,
} from './fuse-proto.js';
import { SimErrno, type SimFile, type SimNode } from './node.js';
import { readMounts, type MountEntry } from '../vss/mounts-linux.js';

/** Where `npm run build` puts the front-end: dist/native/hvsim-fuse (also found from the TypeScript sources). */
export function fuseBinary(): string {
  const here = import.meta.dirname;
  const candidates = [resolve(here, '../native/hvsim-fuse'), resolve(here, '../dist/native/hvsim-fuse')];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

const FUSERMOUNT = ['/usr/bin/fusermount3', '/bin/fusermount3'];

/** What fuseUnavailable looks at; the defaults are this process and machine. */
export interface FuseHost {
  platform?: string;
  uid?: number;
  devFuse?: string;
  binary?: string;
  /** Candidate paths of fusermount3 (default /usr/bin, /bin). */
  fusermount?: string[];
}

/**
 * Why FUSE cannot be served here, or undefined when it can: Linux, root,
 * /dev/fuse, the built front-end, and fusermount3 (the front-end mounts
 * with auto_unmount, which libfuse does only through fusermount3, also as
 * root; without it the mount fails).
 */
export function fuseUnavailable(h: FuseHost = {}): string | undefined {
  const platform = h.platform ?? process.platform;
  const devFuse = h.devFuse ?? '/dev/fuse';
  const binary = h.binary ?? fuseBinary();
  if (platform !== 'linux') return `the FUSE front-end runs on Linux only (this is ${platform})`;
  if (!existsSync(devFuse)) return `${devFuse} is missing (load the fuse kernel module: modprobe fuse)`;
  if ((h.uid ?? process.getuid?.()) !== 0) return 'serving device nodes over FUSE needs root (the nodes are root-only like the real ones)';
  if (!existsSync(binary)) return `the FUSE front-end was not built (${binary} is missing; install a C compiler, pkg-config and libfuse3-dev, then run npm run build)`;
  const fusermount = h.fusermount ?? FUSERMOUNT;
  if (!fusermount.some((p) => existsSync(p))) return `fusermount3 is missing (${fusermount.join(', ')}; Debian package fuse3)`;
  return undefined;
}

/** This process's mount table, or nothing when /proc cannot be read. */
function mountTable(): MountEntry[] {
  try {
    return readMounts();
  } catch {
    return [];
  }
}

/** File system types mounted exactly at `dir`, last mounted last. */
export function mountsAt(dir: string): string[] {
  return mountTable()
    .filter((m) => m.mountPoint === dir)
    .map((m) => m.fsType);
}

/** FUSE mount points at `dir` or below it, deepest first. */
export function fuseMountsUnder(dir: string): string[] {
  const root = resolve(dir);
  const found = new Set<string>();
  for (const m of mountTable()) {
    if (m.fsType.startsWith('fuse') && (m.mountPoint === root || m.mountPoint.startsWith(`${root}/`))) found.add(m.mountPoint);
  }
  return [...found].sort((a, b) => b.length - a.length);
}

const UMOUNT = ['/usr/bin/umount', '/bin/umount'];

function runFixed(candidates: string[], args: string[]): boolean {
  const cmd = candidates.find((p) => existsSync(p));
  if (!cmd) return false;
  const r = spawnSync(cmd, args, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

/**
 * Remove FUSE mounts left at `dir` by a simulator that did not clean up
 * (fusermount3 -u -z, then umount -l). Returns how many were removed;
 * throws when `dir` holds a mount that is not FUSE (it is not ours to remove).
 */
export function cleanStaleMounts(dir: string): number {
  let removed = 0;
  for (let i = 0; i < 8; i++) {
    const types = mountsAt(dir);
    const top = types.at(-1);
    if (top === undefined) return removed;
    if (!top.startsWith('fuse')) throw new Error(`${dir} is a mount point of type ${top}; refusing to serve FUSE nodes over it`);
    if (!runFixed(FUSERMOUNT, ['-u', '-z', '-q', dir])) runFixed(UMOUNT, ['-l', dir]);
    if (mountsAt(dir).length >= types.length) throw new Error(`cannot remove the stale FUSE mount at ${dir} (fusermount3 -u and umount -l failed)`);
    removed++;
  }
  return removed;
}

/** Request types the front-end keeps waiting on until their REPLY. */
const ANSWERED = new Set([FF_OPEN, FF_READ, FF_WRITE, FF_POLL, FF_IOCTL]);

/** Linux errno number for a driver's errno name; FreeBSD's "-EBUSY" becomes EBUSY (FUSE replies carry positive errnos only). */
function errnoOf(e: unknown): number {
  const name = e instanceof SimErrno ? e.errno.replace(/^-/, '') : 'EIO';
  return errnoNumber(name) ?? errnoNumber('EIO')!;
}

interface OpenFile {
  file: SimFile;
  /** The kernel asked to be told of the next poll change. */
  armed: boolean;
  unsubscribe: () => void;
}

export interface FuseServerOptions {
  /** What DIR/hvsim.ctl points to (the control socket). */
  controlTarget: string;
  /** Driver or channel trouble worth a line on stderr. */
  onError?: (e: unknown) => void;
  /** The front-end went away while serving (crash, kill, unmounted from outside). */
  onExit?: (why: string) => void;
  /** Front-end binary (default fuseBinary()). */
  binary?: string;
  /** libfuse debug output on stderr. */
  debug?: boolean;
}

export class FuseServer {
  private child: ChildProcess | undefined;
  private chan: Socket | undefined;
  private readonly files = new Map<bigint, OpenFile>();
  /** Blocked reads by request id, so a CANCEL (signal) can interrupt them. */
  private readonly reads = new Map<bigint, AbortController>();
  private nextFh = 1n;
  private stopping = false;
  private exited: Promise<void> | undefined;
  private stderrTail = '';
  readonly dir: string;

  constructor(
    dir: string,
    private readonly nodes: readonly SimNode[],
    private readonly opts: FuseServerOptions,
  ) {
    this.dir = resolve(dir);
  }

  /** Paths of the served nodes. */
  get paths(): string[] {
    return this.nodes.map((n) => join(this.dir, n.name));
  }

  /** Mount and resolve once the nodes can be opened; rejects with the reason when they cannot. */
  async start(): Promise<void> {
    const why = fuseUnavailable({ binary: this.opts.binary ?? fuseBinary() });
    if (why) throw new Error(`hvsim serve --fuse: ${why}`);
    cleanStaleMounts(this.dir);
    const args = [...(this.opts.debug ? ['-d'] : []), this.dir, this.opts.controlTarget, ...this.nodes.map((n) => n.name)];
    // Own process group: a terminal's ^C reaches hvsim, which then stops the front-end in order.
    const child = spawn(this.opts.binary ?? fuseBinary(), args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => {
      const s = d.toString();
      this.stderrTail = (this.stderrTail + s).slice(-4096);
      process.stderr.write(s);
    });
    const chan = child.stdio[3] as Socket;
    this.chan = chan;
    const reader = new FrameReader();
    let ready!: () => void;
    const readyP = new Promise<void>((r) => (ready = r));
    chan.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (e) {
        this.opts.onError?.(e);
        chan.destroy();
        return;
      }
      for (const f of frames) {
        const req = decodeRequest(f);
        if (req instanceof Error) {
          this.opts.onError?.(req);
          // A request the front-end waits on is answered even when it cannot be read, or its caller would hang.
          if (ANSWERED.has(f.type)) this.reply(f.id, -errnoNumber('EIO')!);
        } else if (req.type === FF_READY) ready();
        else this.handle(req);
      }
    });
    chan.on('error', () => {});
    this.exited = new Promise((resolveExit) =>
      child.on('exit', (code, signal) => {
        this.releaseAll();
        const why = signal ? `killed by ${signal}` : `exited with status ${code}`;
        if (!this.stopping) this.opts.onExit?.(`the FUSE front-end (hvsim-fuse) ${why}${this.stderrTail ? `: ${this.stderrTail.trim().split('\n').at(-1)}` : ''}`);
        resolveExit();
      }),
    );
    const failed = this.exited.then(() => {
      throw new Error(`hvsim serve --fuse: cannot mount on ${this.dir}: ${this.stderrTail.trim() || 'hvsim-fuse exited'}`);
    });
    await Promise.race([readyP, failed]);
  }

  private send(frame: Buffer): void {
    if (this.chan && !this.chan.destroyed) this.chan.write(frame);
  }

  private reply(id: bigint, result: number | bigint, data?: Buffer): void {
    this.send(encodeReply(id, result, data));
  }

  private handle(req: FuseRequest): void {
    if (req.type === FF_OPEN) return this.open(req.id, req.node, req.pid);
    if (req.type === FF_CANCEL) {
      this.reads.get(req.id)?.abort();
      return;
    }
    if (req.type === FF_READY) return;
    const of = this.files.get(req.fh);
    if (req.type === FF_RELEASE) {
      if (of) {
        this.files.delete(req.fh);
        of.unsubscribe();
        this.guard(() => of.file.release());
      }
      return;
    }
    if (!of) return this.reply(req.id, -errnoNumber('EBADF')!);
    const f = of.file;
    try {
      switch (req.type) {
        case FF_READ: {
          const ac = new AbortController();
          this.reads.set(req.id, ac);
          // O_NONBLOCK (req.flags) arrives but, as in both kernels, the driver ignores it: the read blocks.
          f.read(req.count, ac.signal).then(
            (data) => this.reply(req.id, data.length, data),
            (e: unknown) => this.reply(req.id, -errnoOf(e)),
          ).finally(() => this.reads.delete(req.id));
          return;
        }
        case FF_WRITE:
          return this.reply(req.id, f.write(Buffer.from(req.data)));
        case FF_POLL:
          if (req.notify) of.armed = true;
          return this.reply(req.id, f.poll());
        case FF_IOCTL: {
          // The kernel hands the driver a buffer of the command's size; an _IOR's starts zeroed.
          const arg = Buffer.alloc(Math.max(req.outSize, req.data.length));
          req.data.copy(arg);
          const r = f.ioctl(req.cmd, arg);
          return this.reply(req.id, r.ret, r.out.subarray(0, req.outSize));
        }
      }
    } catch (e) {
      this.reply(req.id, -errnoOf(e));
    }
  }

  private open(id: bigint, index: number, pid: number): void {
    const node = this.nodes[index];
    if (!node) return this.reply(id, -errnoNumber('ENXIO')!);
    let file: SimFile;
    try {
      file = node.open({ pid });
    } catch (e) {
      return this.reply(id, -errnoOf(e));
    }
    const fh = this.nextFh++;
    const of: OpenFile = { file, armed: false, unsubscribe: () => {} };
    of.unsubscribe = file.onPollChange(() => {
      if (!of.armed) return;
      of.armed = false;
      this.send(encodeFrame(FF_NOTIFY, fh));
    });
    this.files.set(fh, of);
    this.reply(id, fh);
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.opts.onError?.(e);
    }
  }

  /** Every file still open is closed (the drivers see release), as when the kernel tears the mount down. */
  private releaseAll(): void {
    for (const ac of this.reads.values()) ac.abort();
    for (const [fh, of] of this.files) {
      this.files.delete(fh);
      of.unsubscribe();
      this.guard(() => of.file.release());
    }
  }

  /** Unmount: close the channel, wait for the front-end (SIGKILL after `ms`), release every open file, remove any mount left. */
  async stop(ms = 5000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const child = this.child;
    if (child && this.exited) {
      this.chan?.end();
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      await this.exited;
      clearTimeout(t);
    }
    this.releaseAll();
    try {
      cleanStaleMounts(this.dir);
    } catch (e) {
      this.opts.onError?.(e);
    }
  }
}
