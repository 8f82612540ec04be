/**
 * The simulator's kernel side, shaped like the system calls a character
 * device sees. One driver state machine per node implements SimNode; every
 * transport (the SOCK_SEQPACKET server, the in-memory device, later FUSE)
 * only forwards open/read/write/poll/ioctl/release to it.
 */

/** Poll bits reported by SimFile.poll() (Linux values). */
export const SIM_POLLIN = 0x001;
export const SIM_POLLERR = 0x008;
export const SIM_POLLHUP = 0x010;
export const SIM_POLLRDNORM = 0x040;

/**
 * A system call failure. `errno` is the errno name ('EBUSY', 'EINVAL', ...)
 * or, to reproduce FreeBSD hv_kvp's negative return (pitfall F1), a name
 * with a leading minus ('-EBUSY'); transports send it on as they get it.
 */
export class SimErrno extends Error {
  constructor(
    readonly errno: string,
    detail?: string,
  ) {
    super(detail ? `${errno}: ${detail}` : errno);
    this.name = 'SimErrno';
  }
}

/** Who opens a node (the kernel records "the daemon"). */
export interface OpenContext {
  pid: number;
}

/** One open file description of a simulated node. */
export interface SimFile {
  /**
   * Blocks (the promise stays pending) until a message is available; rejects with SimErrno. Returns at most `count` bytes, per the driver's rules.
   * `signal` is the caller being interrupted (a signal to a process blocked in read): a read still blocked then fails EINTR and takes nothing.
   */
  read(count: number, signal?: AbortSignal): Promise<Buffer>;
  /** Returns the count accepted; throws SimErrno. */
  write(data: Buffer): number;
  /** Current poll state: SIM_POLLIN|SIM_POLLRDNORM when readable, SIM_POLLERR|SIM_POLLHUP when gone, else 0. */
  poll(): number;
  /** Called whenever poll() may have changed (message posted, consumed, device gone). Returns an unsubscribe function. */
  onPollChange(cb: () => void): () => void;
  /** `cmd` is encoded for the host OS (see common/device/ioctl.ts); returns the ioctl's return value and the bytes copied out. Throws SimErrno. */
  ioctl(cmd: number, arg: Buffer): { ret: number; out: Buffer };
  /** close(): idempotent; a pending read rejects with EBADF. */
  release(): void;
}

/** A simulated device node. */
export interface SimNode {
  /** Name relative to the device directory: 'hv_kvp_dev', 'hv_fsvss_dev', 'hv_appvss_dev', 'vmbus/hv_kvp', 'vmbus/hv_vss'. */
  readonly name: string;
  /** Throws SimErrno (EBUSY, -EBUSY, EBADF...). */
  open(ctx: OpenContext): SimFile;
}
