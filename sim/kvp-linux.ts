/**
 * Linux hv_kvp (drivers/hv/hv_kvp.c) behind /dev/vmbus/hv_kvp (spec/devices.md
 * 3, 3.1 and 4): every write before READY is a registration attempt; READY
 * only once the daemon reads the 7432-byte reply; host packets stay in the
 * ring until then; one transaction at a time with a 30 s timeout; late
 * replies fail EINVAL; close fails the waiting transaction at once.
 */
import {
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
import type { RingPacket } from './channel.js';
import { answerNegotiate, icMsgType, receiveBuffer, type IcVersions } from './ic-reply.js';
import type { DriverEnv, ServiceStatus } from './kernel-service.js';
import { linuxDaemonStatus, linuxToDaemon, linuxToHost, type LinuxKvpQuirks } from './kvp-convert-linux.js';
import { DYING, LinuxUtilDriver, READY, USERSPACE_REQ } from './linux-util-driver.js';
import { SimErrno } from './node.js';

/** The KVP receive buffer is 4 hypervisor pages; a longer packet cannot be read (treated as dropped here). */
const RECV_BUFFER_SIZE = 4 * 4096;

const VERSIONS: IcVersions = {
  framework: [IC_FRAMEWORK_VERSION],
  message: [KVP_MSG_VERSION_WIN8, KVP_MSG_VERSION_WIN7, KVP_MSG_VERSION_WS2008],
};

/** Linux hv_kvp: the transport node plus the service state machine. */
export class LinuxKvpDriver extends LinuxUtilDriver {
  private registeredWith = 0;

  constructor(
    env: DriverEnv,
    private readonly quirks: LinuxKvpQuirks,
  ) {
    super(env, 'vmbus/hv_kvp');
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

  override restore(): void {
    super.restore();
    this.registeredWith = 0;
  }

  /** The channel callback: read packets while READY; nothing is read before a daemon registers. */
  protected drain(): void {
    while (this.state === READY) {
      const pkt = this.env.channel.take();
      if (!pkt) return;
      if (pkt.raw) return this.request(pkt);
      // Too short for the headers: dropped with a rate-limited log, never answered.
      if (pkt.data.length < ICMSG_HDR || pkt.data.length > RECV_BUFFER_SIZE) continue;
      const type = icMsgType(pkt.data);
      if (type === ICMSGTYPE_NEGOTIATE) answerNegotiate(this.env.channel, pkt, VERSIONS);
      else if (type === ICMSGTYPE_KVPEXCHANGE) return this.request(pkt);
      // Any other message type: "Invalid msg type", never answered.
    }
  }

  /** A host request: the daemon gets the raw bytes or the converted hv_kvp_msg. */
  private request(pkt: RingPacket): void {
    const host = pkt.raw ? pkt.data : receiveBuffer(pkt.data, ICMSG_HDR + kvpMsgSize('linux'));
    const msg = pkt.raw ? pkt.data : linuxToDaemon(host.subarray(ICMSG_HDR));
    this.begin(pkt, host, this.env.timeouts.kvp, msg);
  }

  protected onMsg(data: Buffer): void {
    if (data.length < kvpMsgSize('linux')) throw new SimErrno('EINVAL', `write of ${data.length} bytes, hv_kvp_msg is ${kvpMsgSize('linux')}`);
    if (this.state < READY) return this.handshake(data);
    if (this.state < USERSPACE_REQ) throw new SimErrno('EINVAL', 'no transaction waits for a reply');
    this.replied(data, linuxDaemonStatus(data, this.registeredWith));
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

  /** kvp_respond_to_host: the daemon's data converted for the host's op. */
  protected override convertReply(host: Buffer, daemon: Buffer): number {
    return linuxToHost(host.subarray(ICMSG_HDR), daemon, host.readUInt8(ICMSG_HDR), this.quirks);
  }
}
