/**
 * read() calls blocked in a driver. Reads are blocking in both kernels
 * whatever O_NONBLOCK says, so a read with nothing to return stays pending
 * until the driver hands it a message or fails it.
 */
import { SimErrno } from './node.js';

export interface BlockedRead {
  count: number;
  resolve(b: Buffer): void;
  reject(e: SimErrno): void;
}

/** The reads blocked on one file, oldest first. */
export class BlockedReads {
  private readonly q: BlockedRead[] = [];

  /** Park a read of `count` bytes until the driver settles it. */
  wait(count: number): Promise<Buffer> {
    return new Promise((resolve, reject) => this.q.push({ count, resolve, reject }));
  }

  get length(): number {
    return this.q.length;
  }

  /** The oldest blocked read, removed from the queue. */
  shift(): BlockedRead | undefined {
    return this.q.shift();
  }

  /** Fail every blocked read (release, device removal). */
  failAll(errno: string, detail?: string): void {
    for (const r of this.q.splice(0)) r.reject(new SimErrno(errno, detail));
  }
}
