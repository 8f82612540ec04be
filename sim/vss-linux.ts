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
  VSS_HBU_NO_AUTO_RECOVERY,
  VSS_OP_FREEZE,
  VSS_OP_GET_DM_INFO,
  VSS_OP_HOT_BACKUP,
  VSS_OP_REGISTER,
  VSS_OP_REGISTER1,
  VSS_OP_THAW,
} from '../common/wire/constants.js';
import { LINUX_VSS_HANDSHAKE_REPLY_SIZE, vssMsgSize } from '../common/wire/structs.js';
import { encodeLinuxVss } from '../common/wire/vss.js';
import type { RingPacket } from './channel.js';
import { answerNegotiate, finishReply, icMsgType, receiveBuffer } from './ic-reply.js';
import type { DriverEnv, ServiceStatus } from './kernel-service.js';
import { LinuxUtilDriver, READY, USERSPACE_REQ } from './linux-util-driver.js';
import { SimErrno } from './node.js';
import { HOST_FLAGS_AT, HOST_OP_AT, VSS_VERSIONS } from './vss-host-fields.js';

const DAEMON_OPS = new Set([VSS_OP_FREEZE, VSS_OP_THAW, VSS_OP_HOT_BACKUP]);

export interface LinuxVssQuirks {
  /** Force HOT_BACKUP flags only when the daemon reply's byte 0 is HOT_BACKUP (the code as read), not always (the spec). */
  hotBackupFlagsFromReplyOp: boolean;
}

/** Linux hv_vss: the transport node plus the service state machine. */
export class LinuxVssDriver extends LinuxUtilDriver {
  /** A daemon completed REGISTER1 (for status only: the state machine can reach READY without one). */
  private registered = false;

  constructor(
    env: DriverEnv,
    private readonly quirks: LinuxVssQuirks,
  ) {
    super(env, 'vmbus/hv_vss');
  }

  status(): ServiceStatus {
    return { open: this.transport.isOpen, registered: this.registered, outstanding: this.tx !== undefined };
  }

  override remove(): void {
    super.remove();
    this.registered = false;
  }

  /** Packets that waited in the ring while the driver was gone are read at once, daemon or not. */
  override restore(): void {
    super.restore();
    this.drain();
  }

  /** The channel callback: unlike KVP, packets are read with or without a daemon, one transaction at a time. */
  protected drain(): void {
    while (this.state <= READY) {
      const pkt = this.env.channel.take();
      if (!pkt) return;
      if (pkt.raw) {
        if (this.state < READY) this.env.channel.answer(pkt.id, { status: HV_E_FAIL, outcome: 'no-daemon' });
        else return this.request(pkt, pkt.data.length > 0 && pkt.data.readUInt8(0) === VSS_OP_FREEZE);
        continue;
      }
      // Shorter than the headers, or than headers + hv_vss_msg: dropped, never answered.
      if (pkt.data.length < ICMSG_HDR) continue;
      const type = icMsgType(pkt.data);
      if (type === ICMSGTYPE_NEGOTIATE) {
        answerNegotiate(this.env.channel, pkt, VSS_VERSIONS);
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
        return this.request(pkt, op === VSS_OP_FREEZE);
      }
      // GET_DM_INFO (flags 0), CREATE, DELETE, BU_COMPLETE, AUTO_RECOVER and unknown ops: S_OK from the kernel,
      // which then runs the poll wrapper: the state becomes READY even when no daemon ever registered.
      if (op === VSS_OP_GET_DM_INFO) host.writeUInt32LE(0, HOST_FLAGS_AT);
      this.env.channel.answer(pkt.id, { status: HV_S_OK, outcome: 'kernel', packet: finishReply(host, HV_S_OK, pkt.data.length) });
      this.state = READY;
    }
  }

  /** vss_send_op: a 12-byte message with only the op set; FREEZE waits 900 s, the rest 30 s. */
  private request(pkt: RingPacket, freeze: boolean): void {
    const host = pkt.raw ? pkt.data : receiveBuffer(pkt.data, 0);
    const msg = pkt.raw ? pkt.data : encodeLinuxVss({ operation: host.readUInt8(HOST_OP_AT) });
    this.begin(pkt, host, freeze ? this.env.timeouts.vssFreeze : this.env.timeouts.vss, msg);
  }

  protected onMsg(data: Buffer): void {
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
    const tx = this.tx;
    if (tx && !tx.pkt.raw && tx.host.readUInt8(HOST_OP_AT) === VSS_OP_HOT_BACKUP) {
      // The spec says the kernel forces flags 5 for HOT_BACKUP; the code tests the reply's byte 0 instead.
      if (!this.quirks.hotBackupFlagsFromReplyOp || op === VSS_OP_HOT_BACKUP) tx.host.writeUInt32LE(VSS_HBU_NO_AUTO_RECOVERY, HOST_FLAGS_AT);
    }
    this.replied(data, data.readInt32LE(0));
  }

  private registerDone(): void {
    this.registered = true;
    this.pollWrapper();
  }

  protected override onReset(): void {
    this.registered = false;
    // The kernel never thaws: a daemon that dies frozen leaves the file systems frozen.
    super.onReset();
  }
}
