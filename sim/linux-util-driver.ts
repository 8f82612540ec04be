/**
 * What Linux hv_kvp.c and hv_snapshot.c share (spec/devices.md 3 and 4):
 * hvutil_device_state, one host transaction at a time with a timeout, the
 * daemon's message queued on the hv_utils_transport node, the poll wrapper
 * that reads the next packet, and the answer built in the host's receive
 * buffer (for raw requests: the daemon's bytes). Each service adds its own
 * registration, ring reading and reply conversion.
 */
import { HV_E_FAIL } from '../common/wire/constants.js';
import type { KernelOutcome, RingPacket } from './channel.js';
import { finishReply } from './ic-reply.js';
import type { DriverEnv, KernelService, ServiceStatus } from './kernel-service.js';
import { LinuxTransport } from './linux-transport.js';
import type { SimNode } from './node.js';

// hvutil_device_state, in kernel order: the services compare states with < and >.
export const INIT = 0;
export const READY = 1;
export const HOSTMSG_RECEIVED = 2;
export const USERSPACE_REQ = 3;
export const USERSPACE_RECV = 4;
export const DYING = 5;

/** The host request the service is handling. */
export interface Transaction {
  pkt: RingPacket;
  /** Receive buffer (IC packet, padded) or, for raw requests, the raw bytes. */
  host: Buffer;
  cancel: () => void;
}

/** A Linux util service: its transport node plus the state machine hv_kvp and hv_vss have in common. */
export abstract class LinuxUtilDriver implements KernelService {
  readonly nodes: readonly SimNode[];
  protected readonly transport: LinuxTransport;
  protected state = INIT;
  protected tx: Transaction | undefined;

  constructor(
    protected readonly env: DriverEnv,
    nodeName: string,
  ) {
    this.transport = new LinuxTransport(nodeName);
    this.transport.bind({ onMsg: (d) => this.onMsg(d), onReset: () => this.onReset() });
    this.nodes = [this.transport];
    env.channel.attach(() => this.drain());
  }

  abstract status(): ServiceStatus;

  /** The channel callback: read packets while the service's state allows it. */
  protected abstract drain(): void;

  /** One daemon write (throw SimErrno to fail it). */
  protected abstract onMsg(data: Buffer): void;

  /** Fill the host's receive buffer from a daemon reply with status 0; returns the status to send (VSS: 0, nothing to convert). */
  protected convertReply(_host: Buffer, _daemon: Buffer): number {
    return 0;
  }

  remove(): void {
    this.state = DYING;
    this.tx?.cancel();
    this.tx = undefined;
    this.transport.destroy();
  }

  restore(): void {
    this.state = INIT;
    this.transport.reload();
  }

  /** A host request becomes the transaction: arm the timeout, queue the daemon's message. */
  protected begin(pkt: RingPacket, host: Buffer, timeoutMs: number, msg: Buffer): void {
    this.state = HOSTMSG_RECEIVED;
    const cancel = this.env.clock.setTimer(timeoutMs, () => this.timeout());
    this.tx = { pkt, host, cancel };
    this.state = USERSPACE_REQ;
    if (!this.transport.send(msg)) {
      // No reader, or the previous message is still unread: fail at once; the ring is not polled again.
      this.respond(undefined, HV_E_FAIL, 'no-daemon');
      this.state = READY;
    }
  }

  /** The daemon's reply to the transaction, with the status it carries. */
  protected replied(daemon: Buffer, status: number): void {
    this.state = USERSPACE_RECV;
    if (this.tx) {
      this.respond(daemon, status, 'answered');
      this.pollWrapper();
    }
  }

  /** Transaction over (or registration read): READY, and read the next packet. */
  protected pollWrapper(): void {
    if (this.state === DYING) return;
    this.state = READY;
    this.drain();
  }

  private timeout(): void {
    this.respond(undefined, HV_E_FAIL, 'timeout');
    this.pollWrapper();
  }

  /** The daemon closed the device: the transaction fails at once and the next daemon must register again. */
  protected onReset(): void {
    if (this.tx) this.respond(undefined, HV_E_FAIL, 'daemon-closed');
    if (this.state !== DYING) this.state = INIT;
  }

  /** Answer the host: a non-zero status alone, else what convertReply makes of the daemon's reply. */
  private respond(daemon: Buffer | undefined, error: number, outcome: KernelOutcome): void {
    const tx = this.tx;
    if (!tx) return;
    this.tx = undefined;
    tx.cancel();
    const { id, raw, data } = tx.pkt;
    let status = error >>> 0;
    if (raw) {
      this.env.channel.answer(id, { status, outcome, ...(daemon ? { reply: Buffer.from(daemon) } : {}) });
      return;
    }
    if (status === 0 && daemon) status = this.convertReply(tx.host, daemon) >>> 0;
    this.env.channel.answer(id, { status, outcome, packet: finishReply(tx.host, status, data.length) });
  }
}
