/**
 * Serves simulated device nodes as SOCK_SEQPACKET sockets under a
 * directory, named like the real nodes (DIR/hv_kvp_dev, DIR/vmbus/hv_kvp).
 * Each connection is one open file description; every datagram is one
 * system call (common/device/sockproto.ts) forwarded to the node's driver.
 * A connection that goes away is a close(): the driver sees release().
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  PollSet,
  SyscallError,
  acceptConn,
  closeFd,
  listenSeqpacket,
  makePipe,
  pollAsync,
  readFd,
  writeFd,
} from '../common/os/libc.js';
import {
  SP_CANCEL,
  SP_IOCTL,
  SP_MAX_DATAGRAM,
  SP_OPEN,
  SP_POLL,
  SP_READ,
  SP_WRITE,
  decodeRequest,
  encodeAnswer,
} from '../common/device/sockproto.js';
import { SIM_POLLERR, SIM_POLLHUP, SimErrno, type SimFile, type SimNode } from './node.js';

interface Listener {
  fd: number;
  node: SimNode;
  path: string;
}

interface Conn {
  fd: number;
  node: SimNode;
  file?: SimFile;
  /** A POLL waiting for the driver: the events asked and how to stop listening. */
  poll?: { events: number; unsubscribe: () => void };
  closed: boolean;
}

/** Errno name of anything a driver threw (a driver bug becomes EIO, never a crash). */
function errnoOf(e: unknown): string {
  return e instanceof SimErrno ? e.errno : 'EIO';
}

export class SocketServer {
  private readonly listeners: Listener[] = [];
  private readonly conns = new Set<Conn>();
  private readonly wakeR: number;
  private readonly wakeW: number;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Answers that could not be sent (peer gone or buffer full); for diagnostics. */
  lostAnswers = 0;

  constructor(
    dir: string,
    nodes: readonly SimNode[],
    private readonly onError: (e: unknown) => void = () => {},
  ) {
    [this.wakeR, this.wakeW] = makePipe();
    for (const node of nodes) {
      const path = join(dir, node.name);
      mkdirSync(dirname(path), { recursive: true });
      rmSync(path, { force: true });
      this.listeners.push({ fd: listenSeqpacket(path), node, path });
    }
  }

  /** Paths of the served nodes. */
  get paths(): string[] {
    return this.listeners.map((l) => l.path);
  }

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const conns = [...this.conns];
      const set = new PollSet([this.wakeR, ...this.listeners.map((l) => l.fd), ...conns.map((c) => c.fd)], POLLIN);
      const r = await pollAsync(set);
      if (this.stopped) break;
      if (r < 0) continue;
      if (set.revents(0)) this.drainWake();
      this.listeners.forEach((l, i) => {
        if (set.revents(1 + i)) this.accept(l);
      });
      conns.forEach((c, i) => {
        const rv = set.revents(1 + this.listeners.length + i);
        if (rv && !c.closed) this.service(c, rv);
      });
    }
  }

  private drainWake(): void {
    try {
      while (readFd(this.wakeR, 64, 'wake-up pipe').length > 0);
    } catch {
      // EAGAIN: empty.
    }
  }

  private accept(l: Listener): void {
    for (;;) {
      let fd: number | undefined;
      try {
        fd = acceptConn(l.fd, l.path);
      } catch (e) {
        this.onError(e);
        return;
      }
      if (fd === undefined) return;
      this.conns.add({ fd, node: l.node, closed: false });
    }
  }

  /** Read every pending datagram of a connection; a hang-up or EOF closes it. */
  private service(c: Conn, revents: number): void {
    for (;;) {
      let dgram: Buffer;
      try {
        dgram = readFd(c.fd, SP_MAX_DATAGRAM, 'connection');
      } catch (e) {
        if (e instanceof SyscallError && (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK')) break;
        this.drop(c);
        return;
      }
      if (dgram.length === 0) {
        this.drop(c);
        return;
      }
      this.handle(c, dgram);
      if (c.closed) return;
    }
    if (revents & (POLLHUP | POLLERR | POLLNVAL)) this.drop(c);
  }

  private answer(c: Conn, call: number, result: number, errno?: string, payload?: Buffer): void {
    if (c.closed) return;
    try {
      writeFd(c.fd, encodeAnswer(call, result, errno, payload), 'connection');
    } catch {
      this.lostAnswers++;
    }
  }

  private handle(c: Conn, dgram: Buffer): void {
    const req = decodeRequest(dgram);
    if (!req) return;
    if (req.call === SP_CANCEL) {
      if (c.poll) {
        c.poll.unsubscribe();
        c.poll = undefined;
        this.answer(c, SP_POLL, 0);
      }
      return;
    }
    if (req.call === SP_OPEN) {
      if (c.file) return this.answer(c, SP_OPEN, -1, 'EBUSY');
      try {
        c.file = c.node.open({ pid: req.arg });
        this.answer(c, SP_OPEN, 0);
      } catch (e) {
        this.answer(c, SP_OPEN, -1, errnoOf(e));
      }
      return;
    }
    const file = c.file;
    if (!file) return this.answer(c, req.call, -1, 'EBADF');
    try {
      switch (req.call) {
        case SP_READ:
          file.read(req.arg).then(
            (data) => this.answer(c, SP_READ, data.length, undefined, data),
            (e) => this.answer(c, SP_READ, -1, errnoOf(e)),
          );
          return;
        case SP_WRITE:
          this.answer(c, SP_WRITE, file.write(Buffer.from(req.payload)));
          return;
        case SP_IOCTL: {
          const r = file.ioctl(req.arg, Buffer.from(req.payload));
          this.answer(c, SP_IOCTL, r.ret, undefined, r.out);
          return;
        }
        case SP_POLL:
          this.startPoll(c, file, req.arg);
          return;
        default:
          this.answer(c, req.call, -1, 'ENOSYS');
      }
    } catch (e) {
      this.answer(c, req.call, -1, errnoOf(e));
    }
  }

  /** Answer a POLL now if the driver is ready, else when it says its state changed. */
  private startPoll(c: Conn, file: SimFile, events: number): void {
    const ready = () => file.poll() & (events | SIM_POLLERR | SIM_POLLHUP);
    const now = ready();
    if (now) return this.answer(c, SP_POLL, now);
    const unsubscribe = file.onPollChange(() => {
      const rv = ready();
      if (!rv || !c.poll) return;
      c.poll.unsubscribe();
      c.poll = undefined;
      this.answer(c, SP_POLL, rv);
    });
    c.poll = { events, unsubscribe };
  }

  private drop(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    c.poll?.unsubscribe();
    c.poll = undefined;
    this.conns.delete(c);
    try {
      c.file?.release();
    } catch (e) {
      this.onError(e);
    }
    closeFd(c.fd);
  }

  /** Close every connection (the drivers see release) and the listeners, remove the socket files. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      writeFd(this.wakeW, Buffer.from([1]), 'wake-up pipe');
    } catch {
      // already has a wake-up pending
    }
    await this.loop;
    for (const c of [...this.conns]) this.drop(c);
    for (const l of this.listeners) {
      closeFd(l.fd);
      rmSync(l.path, { force: true });
    }
    closeFd(this.wakeR);
    closeFd(this.wakeW);
  }
}
