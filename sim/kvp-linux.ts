/**
 * Linux hv_kvp (drivers/hv/hv_kvp.c) behind /dev/vmbus/hv_kvp (spec/devices.md
 * 3, 3.1 and 4): every write before READY is a registration attempt; READY
 * only once the daemon reads the 7432-byte reply; host packets stay in the
 * ring until then; one transaction at a time with a 30 s timeout; late
 * replies fail EINVAL; close fails the waiting transaction at once.
 */
import {
  HV_E_FAIL,
  ICMSGTYPE_KVPEXCHANGE,
  ICMSGTYPE_NEGOTIATE,
  ICMSG_HDR,
  IC_FRAMEWORK_VERSION,
  KVP_MSG_VERSION_WIN7,
  KVP_MSG_VERSION_WIN8,
  KVP_MSG_VERSION_WS2008,
  KVP_OP_REGISTER,
  KVP_OP_REGISTER1,
  LINUX_KVP_DRV_VERSION,
} from '../common/wire/constants.js';
import { encodeKvp } from '../common/wire/kvp.js';
import { kvpMsgSize } from '../common/wire/structs.js';
import type { KernelOutcome, RingPacket } from './channel.js';
import { finishReply, icMsgType, negotiateReply, receiveBuffer, type IcVersions } from './ic-reply.js';
import type { DriverEnv, KernelService, ServiceStatus } from './kernel-service.js';
import { linuxDaemonStatus, linuxToDaemon, linuxToHost, type LinuxKvpQuirks } from './kvp-convert-linux.js';
import { LinuxTransport } from './linux-transport.js';
import { SimErrno, type SimNode } from './node.js';

/** hvutil_device_state */
const INIT = 0;
const READY = 1;
const HOSTMSG_RECEIVED = 2;
const USERSPACE_REQ = 3;
const USERSPACE_RECV = 4;
const DYING = 5;

/** The KVP receive buffer is 4 hypervisor pages; a longer packet cannot be read (treated as dropped here). */
const RECV_BUFFER_SIZE = 4 * 4096;

const VERSIONS: IcVersions = {
  framework: [IC_FRAMEWORK_VERSION],
  message: [KVP_MSG_VERSION_WIN8, KVP_MSG_VERSION_WIN7, KVP_MSG_VERSION_WS2008],
};

interface Transaction {
  pkt: RingPacket;
  /** Receive buffer (IC packet, padded) or, for raw requests, the raw bytes. */
  host: Buffer;
  cancel: () => void;
}

/** Linux hv_kvp: the transport node plus the service state machine. */
export class LinuxKvpDriver implements KernelService {
  readonly nodes: readonly SimNode[];
  private readonly transport = new LinuxTransport('vmbus/hv_kvp');
  private state = INIT;
  private registeredWith = 0;
  private tx: Transaction | undefined;

  constructor(
    private readonly env: DriverEnv,
    private readonly quirks: LinuxKvpQuirks,
  ) {
    this.transport.bind({ onMsg: (d) => this.onMsg(d), onReset: () => this.onReset() });
    this.nodes = [this.transport];
    env.channel.attach(() => this.drain());
  }

  status(): ServiceStatus {
    const registered = this.state >= READY && this.state < DYING;
    return {
      open: this.transport.isOpen,
      registered,
      outstanding: this.tx !== undefined,
      ...(registered ? { version: LINUX_KVP_DRV_VERSION } : {}),
    };
  }

  remove(): void {
    this.state = DYING;
    this.tx?.cancel();
    this.tx = undefined;
    this.transport.destroy();
  }

  restore(): void {
    this.state = INIT;
    this.registeredWith = 0;
    this.transport.reload();
  }

  /** The channel callback: read packets while READY; nothing is read before a daemon registers. */
  private drain(): void {
    while (this.state === READY) {
      const pkt = this.env.channel.take();
      if (!pkt) return;
      if (pkt.raw) return this.begin(pkt);
      // Too short for the headers: dropped with a rate-limited log, never answered.
      if (pkt.data.length < ICMSG_HDR || pkt.data.length > RECV_BUFFER_SIZE) continue;
      const type = icMsgType(pkt.data);
      if (type === ICMSGTYPE_NEGOTIATE) {
        const r = negotiateReply(pkt.data, VERSIONS);
        this.env.channel.answer(pkt.id, { status: r.status, outcome: 'kernel', packet: r.packet });
      } else if (type === ICMSGTYPE_KVPEXCHANGE) {
        return this.begin(pkt);
      }
      // Any other message type: "Invalid msg type", never answered.
    }
  }

  /** A host request becomes the transaction: arm the timeout, queue the daemon's message. */
  private begin(pkt: RingPacket): void {
    this.state = HOSTMSG_RECEIVED;
    const host = pkt.raw ? pkt.data : receiveBuffer(pkt.data, ICMSG_HDR + kvpMsgSize('linux'));
    const cancel = this.env.clock.setTimer(this.env.timeouts.kvp, () => this.timeout());
    this.tx = { pkt, host, cancel };
    const msg = pkt.raw ? pkt.data : linuxToDaemon(host.subarray(ICMSG_HDR));
    this.state = USERSPACE_REQ;
    if (!this.transport.send(msg)) {
      // No reader, or the previous message is still unread: fail at once; the ring is not polled again.
      this.respond(undefined, HV_E_FAIL, 'no-daemon');
      this.state = READY;
    }
  }

  private onMsg(data: Buffer): void {
    if (data.length < kvpMsgSize('linux')) throw new SimErrno('EINVAL', `write of ${data.length} bytes, hv_kvp_msg is ${kvpMsgSize('linux')}`);
    if (this.state < READY) return this.handshake(data);
    if (this.state < USERSPACE_REQ) throw new SimErrno('EINVAL', 'no transaction waits for a reply');
    this.state = USERSPACE_RECV;
    if (this.tx) {
      this.respond(data, linuxDaemonStatus(data, this.registeredWith), 'answered');
      this.pollWrapper();
    }
  }

  /** Registration: op 100 (or legacy 4) queues the 7432-byte reply; READY when it is read. */
  private handshake(data: Buffer): void {
    const op = data.readUInt8(0);
    if (op !== KVP_OP_REGISTER1 && op !== KVP_OP_REGISTER) throw new SimErrno('EINVAL', `incompatible daemon: registration op ${op}`);
    this.registeredWith = op;
    const reply = encodeKvp('linux', { operation: op }, 'kvp_register', { version: Buffer.from(LINUX_KVP_DRV_VERSION, 'latin1') });
    // kvp_register() ignores a failed send (previous reply still unread): the write still succeeds.
    this.transport.send(reply, () => this.pollWrapper());
  }

  /** Transaction over (or registration read): READY, and read the next packet. */
  private pollWrapper(): void {
    if (this.state === DYING) return;
    this.state = READY;
    this.drain();
  }

  private timeout(): void {
    this.respond(undefined, HV_E_FAIL, 'timeout');
    this.pollWrapper();
  }

  private onReset(): void {
    if (this.tx) this.respond(undefined, HV_E_FAIL, 'daemon-closed');
    if (this.state !== DYING) this.state = INIT;
  }

  /** kvp_respond_to_host: status only when non-zero, else the daemon's data converted for the host's op. */
  private respond(daemon: Buffer | undefined, error: number, outcome: KernelOutcome): void {
    const tx = this.tx;
    if (!tx) return;
    this.tx = undefined;
    tx.cancel();
    const { id, raw, data } = tx.pkt;
    if (raw) {
      this.env.channel.answer(id, { status: error >>> 0, outcome, ...(daemon ? { reply: Buffer.from(daemon) } : {}) });
      return;
    }
    let status = error >>> 0;
    if (status === 0 && daemon) {
      const hostOp = tx.host.readUInt8(ICMSG_HDR);
      status = linuxToHost(tx.host.subarray(ICMSG_HDR), daemon, hostOp, this.quirks) >>> 0;
    }
    this.env.channel.answer(id, { status, outcome, packet: finishReply(tx.host, status, data.length) });
  }
}
