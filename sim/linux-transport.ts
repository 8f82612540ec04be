/**
 * Linux hv_utils_transport in chardev mode (spec/devices.md section 3): one
 * opener, a single-slot outgoing queue, blocking one-message reads, writes
 * handed whole to the service, POLLIN only, and reset on close.
 */
import { DriverFile, type FileOps } from './driver-file.js';
import { SIM_POLLIN, SIM_POLLRDNORM, SimErrno, type OpenContext, type SimFile, type SimNode } from './node.js';

/** The service above the transport (hv_kvp.c or hv_snapshot.c). */
export interface TransportService {
  /** on_msg: one daemon write; throw SimErrno to fail it. */
  onMsg(data: Buffer): void;
  /** on_reset: the daemon closed the device. */
  onReset(): void;
}

type Mode = 'init' | 'chardev' | 'destroy';

/** The misc device node of one Linux service and its transport state. */
export class LinuxTransport implements SimNode {
  private mode: Mode = 'init';
  private outmsg: Buffer | undefined;
  private onRead: (() => void) | undefined;
  private file: DriverFile | undefined;
  private svc: TransportService = { onMsg: () => {}, onReset: () => {} };

  constructor(readonly name: string) {}

  /** Connect the service (done once by its driver). */
  bind(svc: TransportService): void {
    this.svc = svc;
  }

  open(_ctx: OpenContext): SimFile {
    // The node is gone once the driver is unloaded; ENOENT like a missing /dev entry.
    if (this.mode === 'destroy') throw new SimErrno('ENOENT', `${this.name}: driver unloaded`);
    if (this.mode === 'chardev') throw new SimErrno('EBUSY', `${this.name}: already open`);
    this.mode = 'chardev';
    const ops: FileOps = {
      read: (f, count, signal) => this.read(f, count, signal),
      write: (_f, data) => {
        // memdup_user then on_msg: the service sees exactly the bytes written.
        this.svc.onMsg(Buffer.from(data));
        return data.length;
      },
      poll: () => (this.outmsg ? SIM_POLLIN | SIM_POLLRDNORM : 0),
      ioctl: () => {
        throw new SimErrno('ENOTTY');
      },
      release: () => this.release(),
    };
    this.file = new DriverFile(ops);
    return this.file;
  }

  get isOpen(): boolean {
    return this.mode === 'chardev';
  }

  /** hvutil_transport_send: queue one message; false when nobody has the device open or the previous one is unread. */
  send(msg: Buffer, onRead?: () => void): boolean {
    if (this.mode !== 'chardev' || this.outmsg) return false;
    this.outmsg = Buffer.from(msg);
    this.onRead = onRead;
    this.deliver();
    this.file?.watchers.notify();
    return true;
  }

  /** Driver unload: readers and pollers of the open file see EBADF and POLLERR|POLLHUP; opens fail. */
  destroy(): void {
    this.mode = 'destroy';
    this.outmsg = undefined;
    this.onRead = undefined;
    this.file?.kill();
    this.file = undefined;
  }

  /** Driver loaded again: a fresh, unopened transport. */
  reload(): void {
    this.mode = 'init';
  }

  private read(f: DriverFile, count: number, signal?: AbortSignal): Promise<Buffer> {
    const p = f.reads.wait(count, signal);
    this.deliver();
    return p;
  }

  /** Hand the queued message to the oldest blocked read, if both exist. */
  private deliver(): void {
    const f = this.file;
    while (f && f.reads.length > 0 && this.outmsg) {
      const r = f.reads.shift()!;
      if (r.count < this.outmsg.length) {
        // The message stays queued for a read with a big enough buffer.
        r.reject(new SimErrno('EINVAL', `read of ${r.count} bytes, message is ${this.outmsg.length}`));
        continue;
      }
      const msg = this.outmsg;
      const cb = this.onRead;
      this.outmsg = undefined;
      this.onRead = undefined;
      r.resolve(msg);
      f.watchers.notify();
      cb?.();
    }
  }

  private release(): void {
    this.file = undefined;
    if (this.mode !== 'destroy') this.mode = 'init';
    // Unread messages are discarded so a new daemon does not see stale ones.
    this.outmsg = undefined;
    this.onRead = undefined;
    this.svc.onReset();
  }
}
