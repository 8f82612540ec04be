/**
 * The in-memory Device: the daemon-side Device contract
 * (common/device/types.ts) directly on a SimNode, with no socket in between.
 * It is the fake the contract suite runs beside the FFI device, and what
 * unit tests drive simulated daemons with.
 */
import { registerDevice } from '../common/device/handshake.js';
import { DeviceError, ERRNO_HINTS, type Device, type Registration, type Service } from '../common/device/types.js';
import type { Flavor } from '../common/wire/constants.js';
import { kvpMsgSize, vssMsgSize } from '../common/wire/structs.js';
import { SIM_POLLERR, SIM_POLLHUP, SIM_POLLIN, SimErrno, type SimFile, type SimNode } from './node.js';

export interface MemoryDeviceOptions {
  flavor: Flavor;
  service: Service;
  /** Shown in errors; default /dev/<node name>. */
  path?: string;
  /** The "daemon" process the kernel records; default this process. */
  pid?: number;
}

/** A DeviceError from anything a node threw; on open any negative or odd errno means busy (pitfall F1). */
function deviceError(e: unknown, op: string, path: string): DeviceError {
  if (e instanceof DeviceError) return e;
  if (e instanceof SimErrno) {
    // "-EBUSY", a bare number or "E16" (an errno without a name) are all odd.
    const odd = e.errno.startsWith('-') || /^E?\d+$/.test(e.errno) || !/^E[A-Z0-9]+$/.test(e.errno);
    const code = op === 'open' && odd ? 'EBUSY' : e.errno.replace(/^-/, '');
    return new DeviceError(code, op, path, ERRNO_HINTS[code] ?? e.message);
  }
  return new DeviceError('EIO', op, path, e instanceof Error ? e.message : String(e));
}

class MemoryDevice implements Device {
  readonly path: string;
  readonly flavor: Flavor;
  readonly service: Service;
  private file: SimFile | undefined;
  /** Waits to fail when the device is closed under them. */
  private readonly waits = new Set<(e: DeviceError) => void>();

  constructor(
    private readonly node: SimNode,
    private readonly opts: MemoryDeviceOptions,
  ) {
    this.path = opts.path ?? `/dev/${node.name}`;
    this.flavor = opts.flavor;
    this.service = opts.service;
  }

  private live(op: string): SimFile {
    if (!this.file) throw new DeviceError('EBADF', op, this.path, 'device not open');
    return this.file;
  }

  async open(): Promise<void> {
    if (this.file) throw new DeviceError('EBUSY', 'open', this.path, 'this Device is already open');
    try {
      this.file = this.node.open({ pid: this.opts.pid ?? process.pid });
    } catch (e) {
      throw deviceError(e, 'open', this.path);
    }
  }

  register(): Promise<Registration> {
    return registerDevice(this);
  }

  waitReadable(signal?: AbortSignal): Promise<boolean> {
    let f: SimFile;
    try {
      f = this.live('poll');
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      let unsubscribe = (): void => {};
      const done = (): void => {
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
        this.waits.delete(fail);
      };
      const onAbort = (): void => {
        done();
        resolve(false);
      };
      const fail = (e: DeviceError): void => {
        done();
        reject(e);
      };
      const check = (): boolean => {
        const ev = f.poll();
        if (ev & (SIM_POLLERR | SIM_POLLHUP)) fail(new DeviceError('EGONE', 'poll', this.path, ERRNO_HINTS.ENODEV));
        else if (ev & SIM_POLLIN) {
          done();
          resolve(true);
        } else return false;
        return true;
      };
      if (signal?.aborted) return resolve(false);
      if (check()) return;
      // No polling loop: the driver says when poll() may have changed.
      unsubscribe = f.onPollChange(() => void check());
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waits.add(fail);
    });
  }

  async read(size?: number): Promise<Buffer> {
    const f = this.live('read');
    const n = size ?? (this.service === 'kvp' ? kvpMsgSize(this.flavor) : vssMsgSize(this.flavor));
    try {
      return await f.read(n);
    } catch (e) {
      throw deviceError(e, 'read', this.path);
    }
  }

  async write(buf: Buffer): Promise<void> {
    const f = this.live('write');
    let n: number;
    try {
      n = f.write(buf);
    } catch (e) {
      throw deviceError(e, 'write', this.path);
    }
    if (n !== buf.length) throw new DeviceError('ESHORT', 'write', this.path, `${n} of ${buf.length} bytes written`);
  }

  async ioctl(cmd: number, arg: Buffer): Promise<Buffer> {
    const f = this.live('ioctl');
    try {
      const r = f.ioctl(cmd, arg);
      if (r.ret < 0) throw new DeviceError('EIO', 'ioctl', this.path, `ioctl returned ${r.ret}`);
      return r.out;
    } catch (e) {
      throw deviceError(e, 'ioctl', this.path);
    }
  }

  close(): void {
    const f = this.file;
    if (!f) return;
    this.file = undefined;
    for (const fail of [...this.waits]) fail(new DeviceError('EBADF', 'poll', this.path, 'device closed'));
    f.release();
  }
}

/** A Device on a simulated node, for in-process daemons and tests (the contract suite's fake). */
export function createMemoryDevice(node: SimNode, opts: MemoryDeviceOptions): Device {
  return new MemoryDevice(node, opts);
}
