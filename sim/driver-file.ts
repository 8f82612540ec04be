/**
 * One open file description of a simulated node. The driver supplies the
 * operations; this class owns what every file shares: it dies on close or
 * on device removal (pending reads fail EBADF, poll reports POLLERR|POLLHUP,
 * every other call fails EBADF), and it keeps its poll watchers and its
 * blocked reads.
 */
import { BlockedReads } from './blocked-reads.js';
import { SIM_POLLERR, SIM_POLLHUP, SimErrno, type SimFile } from './node.js';
import { Watchers } from './watchers.js';

/** What a driver does for each system call on a live file. */
export interface FileOps {
  read(f: DriverFile, count: number, signal?: AbortSignal): Promise<Buffer>;
  write(f: DriverFile, data: Buffer): number;
  poll(f: DriverFile): number;
  ioctl(f: DriverFile, cmd: number, arg: Buffer): { ret: number; out: Buffer };
  /** close(): called once, on a file that is still live. */
  release(f: DriverFile): void;
}

/** A SimFile whose system calls go to a driver's FileOps while it lives. */
export class DriverFile implements SimFile {
  private isDead = false;
  readonly watchers = new Watchers();
  readonly reads = new BlockedReads();

  constructor(private readonly ops: FileOps) {}

  get dead(): boolean {
    return this.isDead;
  }

  read(count: number, signal?: AbortSignal): Promise<Buffer> {
    if (this.isDead) return Promise.reject(new SimErrno('EBADF'));
    try {
      return this.ops.read(this, count, signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  write(data: Buffer): number {
    if (this.isDead) throw new SimErrno('EBADF');
    return this.ops.write(this, data);
  }

  poll(): number {
    return this.isDead ? SIM_POLLERR | SIM_POLLHUP : this.ops.poll(this);
  }

  onPollChange(cb: () => void): () => void {
    return this.watchers.add(cb);
  }

  ioctl(cmd: number, arg: Buffer): { ret: number; out: Buffer } {
    if (this.isDead) throw new SimErrno('EBADF');
    return this.ops.ioctl(this, cmd, arg);
  }

  release(): void {
    if (this.isDead) return;
    this.isDead = true;
    this.reads.failAll('EBADF', 'file closed');
    this.ops.release(this);
  }

  /** The device went away under this file: it stays dead even if the driver comes back. */
  kill(): void {
    if (this.isDead) return;
    this.isDead = true;
    this.reads.failAll('EBADF', 'device removed');
    this.watchers.notify();
  }
}
