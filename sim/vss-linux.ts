/**
 * Linux hv_vss (drivers/hv/hv_snapshot.c) behind /dev/vmbus/hv_vss
 * (spec/devices.md 3, 3.2 and 4): registration is a 12-byte write of op 129
 * answered by a bare u32 129 (READY once read; op 128 gets no reply and never
 * READY); host packets are read even with no daemon; FREEZE/THAW/HOT_BACKUP
 * go to the daemon (HV_E_FAIL at once without one), the other ops are
 * answered in the kernel.
 */
import {
  HV_E_FAIL,
  HV_S_OK,
  ICMSGTYPE_NEGOTIATE,
  ICMSGTYPE_VSS,
  ICMSG_HDR,
  IC_FRAMEWORK_VERSION,
  VSS_HBU_NO_AUTO_RECOVERY,
  VSS_MSG_VERSION,
  VSS_OP_FREEZE,
  VSS_OP_GET_DM_INFO,
  VSS_OP_HOT_BACKUP,
  VSS_OP_REGISTER,
  VSS_OP_REGISTER1,
  VSS_OP_THAW,
} from '../common/wire/constants.js';
import { locate } from '../common/wire/layout.js';
import { HOST_VSS_MSG, LINUX_VSS_HANDSHAKE_REPLY_SIZE, vssMsgSize } from '../common/wire/structs.js';
import { encodeLinuxVss } from '../common/wire/vss.js';
import type { KernelOutcome, RingPacket } from './channel.js';
import { finishReply, icMsgType, negotiateReply, receiveBuffer, type IcVersions } from './ic-reply.js';
import type { DriverEnv, KernelService, ServiceStatus } from './kernel-service.js';
import { LinuxTransport } from './linux-transport.js';
import { SimErrno, type SimNode } from './node.js';

const INIT = 0;
const READY = 1;
const HOSTMSG_RECEIVED = 2;
const USERSPACE_REQ = 3;
const USERSPACE_RECV = 4;
const DYING = 5;

const VERSIONS: IcVersions = { framework: [IC_FRAMEWORK_VERSION], message: [VSS_MSG_VERSION] };
const HOST_OP_AT = ICMSG_HDR + locate(HOST_VSS_MSG, 'operation').offset;
const HOST_FLAGS_AT = ICMSG_HDR + locate(HOST_VSS_MSG, 'flags').offset;
const DAEMON_OPS = new Set([VSS_OP_FREEZE, VSS_OP_THAW, VSS_OP_HOT_BACKUP]);

export interface LinuxVssQuirks {
  /** Force HOT_BACKUP flags only when the daemon reply's byte 0 is HOT_BACKUP (the code as read), not always (the spec). */
  hotBackupFlagsFromReplyOp: boolean;
}

interface Transaction {
  pkt: RingPacket;
  host: Buffer;
  cancel: () => void;
}

/** Linux hv_vss: the transport node plus the service state machine. */
export class LinuxVssDriver implements KernelService {
  readonly nodes: readonly SimNode[];
  private readonly transport = new LinuxTransport('vmbus/hv_vss');
  private state = INIT;
  /** A daemon completed REGISTER1 (for status only: the state machine can reach READY without one). */
  private registered = false;
  private tx: Transaction | undefined;

  constructor(
    private readonly env: DriverEnv,
    private readonly quirks: LinuxVssQuirks,
  ) {
    this.transport.bind({ onMsg: (d) => this.onMsg(d), onReset: () => this.onReset() });
    this.nodes = [this.transport];
    env.channel.attach(() => this.drain());
  }

  status(): ServiceStatus {
    return { open: this.transport.isOpen, registered: this.registered, outstanding: this.tx !== undefined };
  }

  remove(): void {
    this.state = DYING;
    this.registered = false;
    this.tx?.cancel();
    this.tx = undefined;
    this.transport.destroy();
  }

  restore(): void {
    this.state = INIT;
    this.transport.reload();
    this.drain();
  }

  /** The channel callback: unlike KVP, packets are read with or without a daemon, one transaction at a time. */
  private drain(): void {
    while (this.state <= READY) {
      const pkt = this.env.channel.take();
      if (!pkt) return;
      if (pkt.raw) {
        if (this.state < READY) this.env.channel.answer(pkt.id, { status: HV_E_FAIL, outcome: 'no-daemon' });
        else return this.begin(pkt, pkt.data.length > 0 && pkt.data.readUInt8(0) === VSS_OP_FREEZE);
        continue;
      }
      // Shorter than the headers, or than headers + hv_vss_msg: dropped, never answered.
      if (pkt.data.length < ICMSG_HDR) continue;
      const type = icMsgType(pkt.data);
      if (type === ICMSGTYPE_NEGOTIATE) {
        const r = negotiateReply(pkt.data, VERSIONS);
        this.env.channel.answer(pkt.id, { status: r.status, outcome: 'kernel', packet: r.packet });
        continue;
      }
      if (type !== ICMSGTYPE_VSS || pkt.data.length < ICMSG_HDR + vssMsgSize('linux')) continue;
      const host = receiveBuffer(pkt.data, 0);
      const op = host.readUInt8(HOST_OP_AT);
      if (DAEMON_OPS.has(op)) {
        if (this.state < READY) {
          this.env.channel.answer(pkt.id, { status: HV_E_FAIL, outcome: 'no-daemon', packet: finishReply(host, HV_E_FAIL, pkt.data.length) });
          continue;
        }
        return this.begin(pkt, op === VSS_OP_FREEZE);
      }
      // GET_DM_INFO (flags 0), CREATE, DELETE, BU_COMPLETE, AUTO_RECOVER and unknown ops: S_OK from the kernel,
      // which then runs the poll wrapper: the state becomes READY even when no daemon ever registered.
      if (op === VSS_OP_GET_DM_INFO) host.writeUInt32LE(0, HOST_FLAGS_AT);
      this.env.channel.answer(pkt.id, { status: HV_S_OK, outcome: 'kernel', packet: finishReply(host, HV_S_OK, pkt.data.length) });
      this.state = READY;
    }
  }

  /** vss_send_op: a 12-byte message with only the op set; FREEZE waits 900 s, the rest 30 s. */
  private begin(pkt: RingPacket, freeze: boolean): void {
    this.state = HOSTMSG_RECEIVED;
    const host = pkt.raw ? pkt.data : receiveBuffer(pkt.data, 0);
    const ms = freeze ? this.env.timeouts.vssFreeze : this.env.timeouts.vss;
    const cancel = this.env.clock.setTimer(ms, () => this.timeout());
    this.tx = { pkt, host, cancel };
    const msg = pkt.raw ? pkt.data : encodeLinuxVss({ operation: host.readUInt8(HOST_OP_AT) });
    this.state = USERSPACE_REQ;
    if (!this.transport.send(msg)) {
      this.respond(undefined, HV_E_FAIL, 'no-daemon');
      this.state = READY;
    }
  }

  private onMsg(data: Buffer): void {
    if (data.length !== vssMsgSize('linux')) throw new SimErrno('EINVAL', `write of ${data.length} bytes, hv_vss_msg is ${vssMsgSize('linux')}`);
    const op = data.readUInt8(0);
    if (op === VSS_OP_REGISTER || op === VSS_OP_REGISTER1) {
      if (this.state > READY) throw new SimErrno('EINVAL', 'registration during a transaction');
      if (op === VSS_OP_REGISTER1) {
        const ver = Buffer.alloc(LINUX_VSS_HANDSHAKE_REPLY_SIZE);
        ver.writeUInt32LE(VSS_OP_REGISTER1);
        if (!this.transport.send(ver, () => this.registerDone())) throw new SimErrno('EFAULT', 'previous message still unread');
      }
      // Legacy REGISTER (128): no reply, and nothing ever moves the state to READY.
      return;
    }
    if (this.state !== USERSPACE_REQ) throw new SimErrno('EINVAL', 'transaction not active');
    this.state = USERSPACE_RECV;
    const tx = this.tx;
    if (tx && !tx.pkt.raw && tx.host.readUInt8(HOST_OP_AT) === VSS_OP_HOT_BACKUP) {
      // The spec says the kernel forces flags 5 for HOT_BACKUP; the code tests the reply's byte 0 instead.
      if (!this.quirks.hotBackupFlagsFromReplyOp || op === VSS_OP_HOT_BACKUP) tx.host.writeUInt32LE(VSS_HBU_NO_AUTO_RECOVERY, HOST_FLAGS_AT);
    }
    if (tx) {
      this.respond(data, data.readInt32LE(0), 'answered');
      this.pollWrapper();
    }
  }

  private registerDone(): void {
    this.registered = true;
    this.pollWrapper();
  }

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
    this.registered = false;
    // The kernel never thaws: a daemon that dies frozen leaves the file systems frozen.
    if (this.tx) this.respond(undefined, HV_E_FAIL, 'daemon-closed');
    if (this.state !== DYING) this.state = INIT;
  }

  private respond(daemon: Buffer | undefined, error: number, outcome: KernelOutcome): void {
    const tx = this.tx;
    if (!tx) return;
    this.tx = undefined;
    tx.cancel();
    const status = error >>> 0;
    if (tx.pkt.raw) {
      this.env.channel.answer(tx.pkt.id, { status, outcome, ...(daemon ? { reply: Buffer.from(daemon) } : {}) });
      return;
    }
    this.env.channel.answer(tx.pkt.id, { status, outcome, packet: finishReply(tx.host, status, tx.pkt.data.length) });
  }
}
