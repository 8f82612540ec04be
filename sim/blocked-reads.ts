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

  /** Park a read of `count` bytes until the driver settles it, or until `signal` interrupts it (EINTR; it takes nothing). */
  wait(count: number, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) return Promise.reject(new SimErrno('EINTR', 'read interrupted'));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.q.indexOf(r);
        if (i < 0) return;
        this.q.splice(i, 1);
        reject(new SimErrno('EINTR', 'read interrupted'));
      };
      const settled = () => signal?.removeEventListener('abort', onAbort);
      const r: BlockedRead = {
        count,
        resolve: (b) => (settled(), resolve(b)),
        reject: (e) => (settled(), reject(e)),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.q.push(r);
    });
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
