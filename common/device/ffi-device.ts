/**
 * The production Device: the kernel's character device through FFI, or,
 * when the path is a Unix socket, the simulator's SOCK_SEQPACKET transport
 * (common/device/sockproto.ts). The node is opened with plain open(2) and
 * is not required to be a character device (test nodes are FUSE files).
 *
 * Waiting runs poll(2) on a libuv worker thread, on the device and on a
 * wake-up pipe: the event loop stays free, an idle daemon makes no system
 * calls, and an abort (SIGTERM) wakes the wait at once.
 */
import { statSync } from 'node:fs';
import type { Flavor } from '../wire/constants.js';
import {
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  PollSet,
  SyscallError,
  closeFd,
  connectSeqpacket,
  ioctlFd,
  makePipe,
  openFd,
  osFlags,
  pollAsync,
  pollNow,
  readFd,
  writeFd,
} from '../os/libc.js';
import { registerDevice } from './handshake.js';
import { SP_CANCEL, SP_IOCTL, SP_MAX_DATAGRAM, SP_OPEN, SP_POLL, SP_READ, SP_WRITE, decodeAnswer, encodeRequest } from './sockproto.js';
import { ERRNO_HINTS, DeviceError, type Device, type Registration, type Service } from './types.js';
import { kvpMsgSize, vssMsgSize } from '../wire/structs.js';

export interface FfiDeviceOptions {
  path: string;
  flavor: Flavor;
  service: Service;
}

/** How long a non-blocking call's answer is awaited on the calling thread before handing the wait to a worker. */
const QUICK_ANSWER_MS = 20;

/** Turn a failed call into a DeviceError; any odd errno on open means busy (FreeBSD hv_kvp returns -EBUSY, pitfall F1). */
function deviceError(e: unknown, op: string, path: string): DeviceError {
  if (e instanceof DeviceError) return e;
  if (e instanceof SyscallError) {
    let code = e.code;
    if (op === 'open' && (e.errno < 0 || /^E\d+$/.test(code) || code.startsWith('-'))) code = 'EBUSY';
    return new DeviceError(code, op, path, ERRNO_HINTS[code]);
  }
  return new DeviceError('EIO', op, path, e instanceof Error ? e.message : String(e));
}

/** Errno names from the simulator, normalised the same way. */
function simErrno(name: string, op: string, path: string): DeviceError {
  const code = op === 'open' && (name.startsWith('-') || !/^E[A-Z]+$/.test(name)) ? 'EBUSY' : name;
  return new DeviceError(code, op, path, ERRNO_HINTS[code]);
}

/** poll(2) on one descriptor plus the wake-up pipe, on a worker thread. */
class Waiter {
  private readonly wakeR: number;
  private readonly wakeW: number;
  private inFlight = 0;
  private closing = false;

  constructor(private readonly onClosed: () => void) {
    [this.wakeR, this.wakeW] = makePipe();
  }

  /** Resolves with fd's revents, or 'woken' when wake() was called. */
  async wait(fd: number, target: string): Promise<number | 'woken'> {
    const set = new PollSet([fd, this.wakeR], POLLIN);
    this.inFlight++;
    try {
      for (;;) {
        if (this.closing) return 'woken';
        const r = await pollAsync(set);
        if (r < 0) {
          // errno does not cross threads: ask again without waiting to learn it (EINTR just loops).
          pollNow(set, target);
          continue;
        }
        if (set.revents(1)) {
          this.drain();
          return 'woken';
        }
        const rv = set.revents(0);
        if (rv) return rv;
      }
    } finally {
      this.inFlight--;
      if (this.closing && this.inFlight === 0) this.release();
    }
  }

  wake(): void {
    try {
      writeFd(this.wakeW, Buffer.from([1]), 'wake-up pipe');
    } catch {
      // A full pipe already holds a wake-up; nothing else can fail here.
    }
  }

  private drain(): void {
    try {
      while (readFd(this.wakeR, 64, 'wake-up pipe').length > 0);
    } catch {
      // EAGAIN: drained.
    }
  }

  /** Close the pipe once no worker thread still polls on it (a closed, reused fd number must never be polled). */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.inFlight > 0) this.wake();
    else this.release();
  }

  private release(): void {
    closeFd(this.wakeR);
    closeFd(this.wakeW);
    this.onClosed();
  }
}

/** How the bytes move: a device node, or the simulator's socket. */
interface Transport {
  waitReadable(signal?: AbortSignal): Promise<boolean>;
  read(size: number): Promise<Buffer>;
  write(buf: Buffer): Promise<number>;
  ioctl(cmd: number, arg: Buffer): Promise<Buffer>;
  close(): void;
}

/** A descriptor with its wake-up pipe; closing it waits for any poll in flight (see Waiter.close). */
abstract class FdTransport {
  protected readonly waiter: Waiter;
  private closed = false;

  constructor(
    protected readonly fd: number,
    protected readonly path: string,
  ) {
    this.waiter = new Waiter(() => closeFd(this.fd));
  }

  /** What poll's revents mean for a daemon: readable, gone (EGONE), or nothing yet. */
  protected readable(revents: number): boolean {
    if (revents & POLLIN) return true;
    if (revents & (POLLERR | POLLHUP | POLLNVAL)) throw new DeviceError('EGONE', 'poll', this.path, ERRNO_HINTS.ENODEV);
    return false;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.waiter.close();
  }
}

class NodeTransport extends FdTransport implements Transport {
  async waitReadable(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    const onAbort = () => this.waiter.wake();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const rv = await this.waiter.wait(this.fd, this.path);
      return rv !== 'woken' && this.readable(rv);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async read(size: number): Promise<Buffer> {
    return readFd(this.fd, size, this.path);
  }

  async write(buf: Buffer): Promise<number> {
    return writeFd(this.fd, buf, this.path);
  }

  async ioctl(cmd: number, arg: Buffer): Promise<Buffer> {
    const b = Buffer.from(arg);
    ioctlFd(this.fd, cmd, b, this.path);
    return b;
  }
}

class SocketTransport extends FdTransport implements Transport {
  /**
   * Send one call and wait for its answer; the answer may take as long as
   * the driver blocks. Calls that do not block in the driver (read after
   * POLLIN, write, ioctl) are answered within microseconds, so they wait
   * briefly on this thread first: a hop through the worker pool costs more
   * than the answer itself. Only POLL, or a simulator that is slow, goes
   * to the worker thread.
   */
  async call(call: number, arg: number, payload: Buffer | undefined, op: string, onSent?: () => void) {
    writeFd(this.fd, encodeRequest(call, arg, payload), this.path);
    onSent?.();
    for (;;) {
      const quick = call !== SP_POLL && pollNow(new PollSet([this.fd], POLLIN), this.path, QUICK_ANSWER_MS) > 0;
      const rv = quick ? POLLIN : await this.waiter.wait(this.fd, this.path);
      if (rv === 'woken') throw new DeviceError('ECANCELED', op, this.path, 'device closed');
      const dgram = readFd(this.fd, SP_MAX_DATAGRAM, this.path);
      if (dgram.length === 0) throw new DeviceError('EGONE', op, this.path, 'the simulator closed the connection');
      const ans = decodeAnswer(dgram);
      if (!ans || ans.call !== call) throw new DeviceError('EPROTO', op, this.path, 'malformed answer from the simulator');
      if (ans.errno) throw simErrno(ans.errno, op, this.path);
      return ans;
    }
  }

  async open(): Promise<void> {
    await this.call(SP_OPEN, process.pid, undefined, 'open');
  }

  async waitReadable(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    // An abort asks the simulator to end the pending poll; its answer still arrives and is consumed here.
    const onAbort = () => {
      try {
        writeFd(this.fd, encodeRequest(SP_CANCEL, 0), this.path);
      } catch {
        this.waiter.wake();
      }
    };
    let sent = false;
    try {
      const ans = await this.call(SP_POLL, POLLIN, undefined, 'poll', () => {
        sent = true;
        if (signal?.aborted) onAbort();
        else signal?.addEventListener('abort', onAbort, { once: true });
      });
      return !signal?.aborted && this.readable(ans.result);
    } finally {
      if (sent) signal?.removeEventListener('abort', onAbort);
    }
  }

  async read(size: number): Promise<Buffer> {
    return Buffer.from((await this.call(SP_READ, size, undefined, 'read')).payload);
  }

  async write(buf: Buffer): Promise<number> {
    return (await this.call(SP_WRITE, buf.length, buf, 'write')).result;
  }

  async ioctl(cmd: number, arg: Buffer): Promise<Buffer> {
    const ans = await this.call(SP_IOCTL, cmd, arg, 'ioctl');
    // _IOW copies nothing out: the caller keeps its own bytes.
    const out = Buffer.from(arg);
    ans.payload.copy(out, 0, 0, Math.min(out.length, ans.payload.length));
    return out;
  }
}

/** Device over FFI: a device node or a simulator socket. */
export class FfiDevice implements Device {
  readonly path: string;
  readonly flavor: Flavor;
  readonly service: Service;
  private t: Transport | undefined;

  constructor(opts: FfiDeviceOptions) {
    this.path = opts.path;
    this.flavor = opts.flavor;
    this.service = opts.service;
  }

  private get transport(): Transport {
    if (!this.t) throw new DeviceError('EBADF', 'use', this.path, 'device is not open');
    return this.t;
  }

  async open(): Promise<void> {
    if (this.t) throw new DeviceError('EBUSY', 'open', this.path, 'already open in this process');
    let isSocket = false;
    try {
      isSocket = statSync(this.path).isSocket();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'ENOENT';
      throw new DeviceError(code, 'open', this.path, ERRNO_HINTS[code]);
    }
    try {
      if (isSocket) {
        const s = new SocketTransport(connectSeqpacket(this.path), this.path);
        try {
          await s.open();
        } catch (e) {
          s.close();
          throw e;
        }
        this.t = s;
      } else {
        const f = osFlags();
        this.t = new NodeTransport(openFd(this.path, f.O_RDWR | f.O_CLOEXEC), this.path);
      }
    } catch (e) {
      throw deviceError(e, 'open', this.path);
    }
  }

  register(): Promise<Registration> {
    return registerDevice(this);
  }

  async waitReadable(signal?: AbortSignal): Promise<boolean> {
    try {
      return await this.transport.waitReadable(signal);
    } catch (e) {
      throw deviceError(e, 'poll', this.path);
    }
  }

  /** The flavor's message size for this service. */
  defaultSize(): number {
    return this.service === 'kvp' ? kvpMsgSize(this.flavor) : vssMsgSize(this.flavor);
  }

  async read(size = this.defaultSize()): Promise<Buffer> {
    try {
      return await this.transport.read(size);
    } catch (e) {
      throw deviceError(e, 'read', this.path);
    }
  }

  async write(buf: Buffer): Promise<void> {
    let n: number;
    try {
      n = await this.transport.write(buf);
    } catch (e) {
      throw deviceError(e, 'write', this.path);
    }
    if (n !== buf.length) throw new DeviceError('ESHORT', 'write', this.path, `${n} of ${buf.length} bytes written`);
  }

  async ioctl(cmd: number, arg: Buffer): Promise<Buffer> {
    try {
      return await this.transport.ioctl(cmd, arg);
    } catch (e) {
      throw deviceError(e, `ioctl 0x${cmd.toString(16)}`, this.path);
    }
  }

  close(): void {
    this.t?.close();
    this.t = undefined;
  }
}

/** A factory for daemons: a fresh unopened FfiDevice per call. */
export const ffiDeviceFactory = (opts: FfiDeviceOptions) => (): Device => new FfiDevice(opts);
