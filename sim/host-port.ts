/**
 * The host's end of one service channel: requests go out one at a time (in
 * call order), a NEGOTIATE precedes the first one, a request still in the
 * ring after waitForDaemonMs is withdrawn ('no-daemon', HV_E_FAIL), and one
 * the kernel took but never answers is given up after hostTimeoutMs
 * ('dropped'). Timers run only while a request is outstanding.
 */
import { HV_E_FAIL } from '../common/wire/constants.js';
import { SimChannel, type ChannelHost, type KernelAnswer } from './channel.js';
import type { SimClock } from './clock.js';
import type { HostOutcome } from './host-api.js';

export interface HostCall {
  data: Buffer;
  raw: boolean;
  waitForDaemonMs: number;
  /** Counted from the moment the kernel reads the packet. */
  hostTimeoutMs: number;
}

export interface HostCallResult {
  outcome: HostOutcome;
  /** Absent when the host gave up ('dropped'); a synthetic HV_E_FAIL for a withdrawn request. */
  answer?: KernelAnswer;
  ms: number;
}

interface Pending {
  start: number;
  call: HostCall;
  cancelTimer: () => void;
  inKernel: boolean;
  resolve(r: HostCallResult): void;
}

/** The host side of one service channel (see the file comment). */
export class HostPort implements ChannelHost {
  readonly channel: SimChannel;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private queue: Promise<unknown> = Promise.resolve();
  private negotiated = false;
  /** The NEGOTIATE packet sent and not answered yet (it may wait in the ring for a long time). */
  private negotiation: number | undefined;
  private closed = false;

  constructor(
    private readonly clock: SimClock,
    private readonly negotiatePacket: () => Buffer,
  ) {
    this.channel = new SimChannel(this);
  }

  /** Send one request after every earlier one has ended. */
  call(c: HostCall): Promise<HostCallResult> {
    const run = this.queue.then(() => this.send(c));
    this.queue = run.catch(() => {});
    return run;
  }

  /** Some request is inside the kernel or waiting in the ring. */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  private send(c: HostCall): Promise<HostCallResult> {
    // Queued before close() but not sent yet: ends like the ones in flight.
    if (this.closed) return Promise.resolve({ outcome: 'dropped', ms: 0 });
    if (!this.negotiated && this.negotiation === undefined) {
      this.negotiation = this.nextId++;
      this.channel.send({ id: this.negotiation, data: this.negotiatePacket(), raw: false });
    }
    return new Promise((resolve) => {
      const id = this.nextId++;
      const p: Pending = { start: this.clock.now(), call: c, inKernel: false, resolve, cancelTimer: () => {} };
      p.cancelTimer = this.clock.setTimer(c.waitForDaemonMs, () => {
        if (this.channel.withdraw(id)) this.finish(id, 'no-daemon', { status: HV_E_FAIL, outcome: 'no-daemon' });
      });
      this.pending.set(id, p);
      // The driver may read and even answer the packet before send() returns.
      this.channel.send({ id, data: c.data, raw: c.raw });
    });
  }

  taken(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    p.inKernel = true;
    p.cancelTimer();
    p.cancelTimer = this.clock.setTimer(p.call.hostTimeoutMs, () => this.finish(id, 'dropped'));
  }

  answer(id: number, a: KernelAnswer): void {
    if (id === this.negotiation) {
      this.negotiation = undefined;
      this.negotiated = true;
      return;
    }
    // Late answers to requests the host gave up on are ignored, like a real host would.
    if (this.pending.has(id)) this.finish(id, a.outcome, a);
  }

  /** The driver went away: what it had read is lost ('dropped'); what waits in the ring stays; negotiate again. */
  rescind(): void {
    for (const [id, p] of [...this.pending]) if (p.inKernel) this.finish(id, 'dropped');
    this.negotiated = false;
    if (this.negotiation !== undefined) this.channel.withdraw(this.negotiation);
    this.negotiation = undefined;
  }

  /** Stop: every outstanding or queued request ends 'dropped'. */
  close(): void {
    this.closed = true;
    for (const id of [...this.pending.keys()]) {
      this.channel.withdraw(id);
      this.finish(id, 'dropped');
    }
    if (this.negotiation !== undefined) this.channel.withdraw(this.negotiation);
  }

  private finish(id: number, outcome: HostOutcome, answer?: KernelAnswer): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.cancelTimer();
    p.resolve({ outcome, ms: this.clock.now() - p.start, ...(answer ? { answer } : {}) });
  }
}
