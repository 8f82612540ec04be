/**
 * The VMBus channel of one service, seen from both ends: the host puts
 * packets in the ring, the kernel driver takes them when it chooses (never,
 * for some drivers, until a daemon registers) and answers by request id.
 * The ring belongs to the channel, not to the driver, so packets waiting in
 * it survive a driver removal and are read by the driver after restore.
 */
import type { HostOutcome } from './host-api.js';

/** How the kernel answered, as the host outcome (never 'dropped': that is the host giving up). */
export type KernelOutcome = Exclude<HostOutcome, 'dropped'>;

export interface RingPacket {
  /** VMBus request id: out of band, echoed in the answer. */
  readonly id: number;
  /** An IC packet, or for raw requests the exact daemon-level bytes. */
  readonly data: Buffer;
  /** Raw: deliver `data` to the daemon as is, answer with the daemon's bytes. */
  readonly raw: boolean;
}

export interface KernelAnswer {
  status: number;
  outcome: KernelOutcome;
  /** The IC reply packet (not for raw requests). */
  packet?: Buffer;
  /** Raw requests answered by the daemon: its reply bytes exactly as written. */
  reply?: Buffer;
}

/** The host end: told when a packet leaves the ring and when it is answered. */
export interface ChannelHost {
  taken(id: number): void;
  answer(id: number, a: KernelAnswer): void;
}

/** One service's ring and reply path between the simulated host and its driver. */
export class SimChannel {
  private readonly ring: RingPacket[] = [];
  private kick: () => void = () => {};

  constructor(private readonly host: ChannelHost) {}

  /** Connect the driver; `kick` is its channel callback, run whenever a packet arrives. */
  attach(kick: () => void): void {
    this.kick = kick;
  }

  /** Host: put a packet in the ring and interrupt the guest. */
  send(p: RingPacket): void {
    this.ring.push(p);
    this.kick();
  }

  /** Host: take back a packet the kernel has not read; false when it was already read. */
  withdraw(id: number): boolean {
    const i = this.ring.findIndex((p) => p.id === id);
    if (i < 0) return false;
    this.ring.splice(i, 1);
    return true;
  }

  /** Packets the kernel has not read yet. */
  get pending(): number {
    return this.ring.length;
  }

  /** Kernel: read the next packet from the ring. */
  take(): RingPacket | undefined {
    const p = this.ring.shift();
    if (p) this.host.taken(p.id);
    return p;
  }

  /** Kernel: answer the request with this id. */
  answer(id: number, a: KernelAnswer): void {
    this.host.answer(id, a);
  }
}
