/**
 * FreeBSD hv_vss (sys/dev/hyperv/utilities/hv_snapshot.c) behind
 * /dev/hv_fsvss_dev and /dev/hv_appvss_dev (spec/devices.md section 2,
 * pitfalls F12-F15): opening fsvss is the registration; requests travel
 * through per-device notify and ack queues, fetched and answered with
 * IOCHVVSSREAD/IOCHVVSSWRITE; CHECK/FREEZE visit the app (if open) before
 * the fs daemon, THAW the other way round; one 15 s timeout covers the
 * chain; overlapping and unknown requests are never answered; after the
 * daemon closes, every request fails at once until it reopens.
 */
import { hostIoctlOs, ioctlNumbers } from '../common/device/ioctl.js';
import {
  HV_E_FAIL,
  HV_S_OK,
  HV_VSS_CHECK,
  HV_VSS_FREEZE,
  HV_VSS_THAW,
  ICMSGTYPE_NEGOTIATE,
  ICMSG_HDR,
  VSS_FAIL,
  VSS_HBU_NO_AUTO_RECOVERY,
  VSS_OP_FREEZE,
  VSS_OP_GET_DM_INFO,
  VSS_OP_HOT_BACKUP,
  VSS_OP_THAW,
  VSS_SUCCESS,
} from '../common/wire/constants.js';
import { isWireError } from '../common/wire/errors.js';
import { vssMsgSize } from '../common/wire/structs.js';
import { decodeFreebsdVss, encodeFreebsdVss } from '../common/wire/vss.js';
import type { KernelOutcome, RingPacket } from './channel.js';
import { nanotimeSource } from './clock.js';
import { DriverFile } from './driver-file.js';
import { answerNegotiate, finishReply, icMsgType, receiveBuffer } from './ic-reply.js';
import type { DriverEnv, KernelService, ServiceStatus } from './kernel-service.js';
import { SIM_POLLIN, SimErrno, type SimFile, type SimNode } from './node.js';
import { HOST_FLAGS_AT, HOST_OP_AT, VSS_VERSIONS } from './vss-host-fields.js';

const OPT_SIZE = vssMsgSize('freebsd');
/** Preallocated request slots (hv_vss_init_send_receive_queue). */
const REQUEST_SLOTS = 4;

/** Host op -> user op (hv_vss_init_req). */
const USER_OPT: Record<number, number> = { [VSS_OP_HOT_BACKUP]: HV_VSS_CHECK, [VSS_OP_FREEZE]: HV_VSS_FREEZE, [VSS_OP_THAW]: HV_VSS_THAW };

interface Request {
  pkt: RingPacket;
  host: Buffer;
  opt: number;
  msgid: bigint;
  cancel: () => void;
}

/** hv_vss_dev_sc: one device's queues and its open file. */
interface DevSc {
  notify: Request[];
  ack: Request[];
  file: DriverFile | undefined;
}

const newDev = (): DevSc => ({ notify: [], ack: [], file: undefined });

/** FreeBSD hvvss: the fsvss and appvss nodes with their queues. */
export class FreebsdVssDriver implements KernelService {
  readonly nodes: readonly SimNode[];
  private readonly ioc = ioctlNumbers(hostIoctlOs());
  private readonly nanotime: () => bigint;
  private removed = false;
  private registerDone = false;
  private appRegisterDone = false;
  /** The fs daemon's proc pointer: set by the first open, never cleared by close. */
  private procTask = false;
  private freeSlots = REQUEST_SLOTS;
  private fs = newDev();
  private app = newDev();
  /** Requests holding a slot, wherever they are (one acked by the app with no fs daemon sits in no queue). */
  private readonly live = new Set<Request>();

  constructor(private readonly env: DriverEnv) {
    this.nanotime = nanotimeSource(env.clock);
    this.nodes = [
      { name: 'hv_fsvss_dev', open: () => this.openFs() },
      { name: 'hv_appvss_dev', open: () => this.openApp() },
    ];
    env.channel.attach(() => this.callback());
  }

  status(): ServiceStatus {
    return { open: this.registerDone, registered: this.registerDone, outstanding: this.freeSlots < REQUEST_SLOTS, appOpen: this.appRegisterDone };
  }

  remove(): void {
    this.removed = true;
    for (const r of this.live) r.cancel();
    this.live.clear();
    this.fs.file?.kill();
    this.app.file?.kill();
    this.registerDone = this.appRegisterDone = this.procTask = false;
    this.freeSlots = REQUEST_SLOTS;
    this.fs = newDev();
    this.app = newDev();
  }

  restore(): void {
    this.removed = false;
  }

  private killed(): boolean {
    return !this.registerDone && this.procTask;
  }

  private file(dev: DevSc, onRelease: () => void): SimFile {
    const f = new DriverFile({
      read: () => Promise.reject(new SimErrno('ENODEV', 'no read entry point')),
      write: () => {
        throw new SimErrno('ENODEV', 'no write entry point');
      },
      poll: () => (dev.notify.length > 0 ? SIM_POLLIN : 0),
      ioctl: (_f, cmd, arg) => this.ioctl(dev, cmd, arg),
      release: () => {
        if (dev.file === f) dev.file = undefined;
        onRelease();
      },
    });
    dev.file = f;
    return f;
  }

  /** Opening fsvss registers the daemon and drains what the host queued so far. */
  private openFs(): SimFile {
    if (this.removed) throw new SimErrno('ENOENT', 'hv_fsvss_dev: driver detached');
    if (this.registerDone) throw new SimErrno('EBUSY', 'hv_fsvss_dev: a daemon is registered');
    this.registerDone = true;
    const f = this.file(this.fs, () => {
      this.registerDone = false;
    });
    this.procTask = true;
    this.callback();
    return f;
  }

  private openApp(): SimFile {
    if (this.removed) throw new SimErrno('ENOENT', 'hv_appvss_dev: driver detached');
    if (this.appRegisterDone) throw new SimErrno('EBUSY', 'hv_appvss_dev: already open');
    this.appRegisterDone = true;
    return this.file(this.app, () => {
      this.appRegisterDone = false;
    });
  }

  /** hv_vss_callback: no work at all until a daemon has opened fsvss once. */
  private callback(): void {
    if (!this.removed && (this.registerDone || this.procTask)) this.process();
  }

  /** hv_vss_process_request: drain the ring. */
  private process(): void {
    for (let pkt = this.env.channel.take(); pkt; pkt = this.env.channel.take()) {
      const host = pkt.raw ? pkt.data : receiveBuffer(pkt.data, ICMSG_HDR + vssMsgSize('linux'));
      if (!pkt.raw && icMsgType(host) === ICMSGTYPE_NEGOTIATE) {
        answerNegotiate(this.env.channel, pkt, VSS_VERSIONS);
        continue;
      }
      const op = pkt.raw ? -1 : host.readUInt8(HOST_OP_AT);
      if (this.killed()) {
        // The daemon was killed after launch: everything fails at once (F13).
        if (op === VSS_OP_HOT_BACKUP) host.writeUInt32LE(VSS_HBU_NO_AUTO_RECOVERY, HOST_FLAGS_AT);
        if (op === VSS_OP_GET_DM_INFO) host.writeUInt32LE(0, HOST_FLAGS_AT);
        this.reply(pkt, host, HV_E_FAIL, 'no-daemon');
      } else if (pkt.raw || USER_OPT[op] !== undefined) {
        this.start(pkt, host, op);
      } else if (op === VSS_OP_GET_DM_INFO) {
        host.writeUInt32LE(0, HOST_FLAGS_AT);
        this.reply(pkt, host, HV_S_OK, 'kernel');
      }
      // CREATE, DELETE, BU_COMPLETE, AUTO_RECOVER and unknown ops: logged, never answered (F12).
    }
  }

  private reply(pkt: RingPacket, host: Buffer, status: number, outcome: KernelOutcome, daemonReply?: Buffer): void {
    if (pkt.raw) this.env.channel.answer(pkt.id, { status, outcome, ...(daemonReply ? { reply: daemonReply } : {}) });
    else this.env.channel.answer(pkt.id, { status, outcome, packet: finishReply(host, status, pkt.data.length) });
  }

  /** A request takes a slot unless any queue is busy or no slot is free; then it is silently ignored. */
  private start(pkt: RingPacket, host: Buffer, op: number): void {
    const busy = [this.fs, this.app].some((d) => d.notify.length > 0 || d.ack.length > 0);
    if (busy || this.freeSlots === 0) return;
    this.freeSlots--;
    const raw = pkt.raw ? Buffer.concat([pkt.data, Buffer.alloc(OPT_SIZE)]).subarray(0, OPT_SIZE) : undefined;
    const req: Request = {
      pkt,
      host,
      opt: raw ? raw.readUInt32LE(0) : USER_OPT[op]!,
      // Raw requests keep their own msgid; the kernel otherwise uses nanotime().
      msgid: raw ? raw.readBigUInt64LE(8) : this.nanotime(),
      cancel: () => {},
    };
    const ms = op === VSS_OP_FREEZE ? this.env.timeouts.vssFreeze : this.env.timeouts.vss;
    // One callout for the whole chain, armed once, never re-armed between stages.
    req.cancel = this.env.clock.setTimer(ms, () => this.timeout(req));
    this.live.add(req);
    // CHECK and FREEZE: app first when it is open; THAW and raw requests: the fs daemon first.
    const first = !raw && op !== VSS_OP_THAW && this.appRegisterDone ? this.app : this.fs;
    this.notify(first, req);
  }

  private notify(dev: DevSc, req: Request): void {
    dev.notify.push(req);
    dev.file?.watchers.notify();
  }

  /** Answer the host and recycle the slot; CHECK answers always carry flags 5. */
  private finish(req: Request, status: number, outcome: KernelOutcome, daemonReply?: Buffer): void {
    req.cancel();
    this.live.delete(req);
    if (!req.pkt.raw && req.opt === HV_VSS_CHECK) req.host.writeUInt32LE(VSS_HBU_NO_AUTO_RECOVERY, HOST_FLAGS_AT);
    this.reply(req.pkt, req.host, status, outcome, daemonReply);
    this.freeSlots++;
  }

  /** hv_vss_timeout: pull the request out of whichever queue holds it (if any) and fail it. */
  private timeout(req: Request): void {
    for (const d of [this.fs, this.app]) {
      for (const q of [d.notify, d.ack]) {
        const i = q.indexOf(req);
        if (i >= 0) q.splice(i, 1);
      }
    }
    this.finish(req, HV_E_FAIL, 'timeout');
  }

  private ioctl(dev: DevSc, cmd: number, arg: Buffer): { ret: number; out: Buffer } {
    if (cmd === this.ioc.IOCHVVSSREAD) return { ret: 0, out: this.notified(dev) };
    if (cmd === this.ioc.IOCHVVSSWRITE) {
      if (arg.length < OPT_SIZE) throw new SimErrno('EFAULT', `IOCHVVSSWRITE needs ${OPT_SIZE} bytes, got ${arg.length}`);
      if (dev === this.fs) this.daemonAcked(arg);
      else this.appAcked(arg);
    }
    // _IOW copies nothing out; unknown commands do nothing and also return 0.
    return { ret: 0, out: Buffer.from(arg) };
  }

  /** IOCHVVSSREAD: head of the notify queue moves to the ack queue; empty queue → status 1. */
  private notified(dev: DevSc): Buffer {
    const req = dev.notify.shift();
    if (!req) return encodeFreebsdVss({ opt: 0, status: VSS_FAIL });
    dev.ack.push(req);
    dev.file?.watchers.notify();
    if (req.pkt.raw) return Buffer.concat([req.pkt.data, Buffer.alloc(OPT_SIZE)]).subarray(0, OPT_SIZE);
    return encodeFreebsdVss({ opt: req.opt, status: VSS_SUCCESS, msgid: req.msgid });
  }

  private takeAck(dev: DevSc, msgid: bigint): Request | undefined {
    const i = dev.ack.findIndex((r) => r.msgid === msgid);
    return i < 0 ? undefined : dev.ack.splice(i, 1)[0];
  }

  /** The fs daemon answers. Not found (timed out): only the kernel's copy records it (F15). */
  private daemonAcked(arg: Buffer): void {
    const m = decodeFreebsdVss(arg.subarray(0, OPT_SIZE));
    if (isWireError(m)) return;
    const req = this.takeAck(this.fs, m.msgid);
    if (!req) return;
    const ok = m.status === VSS_SUCCESS ? HV_S_OK : HV_E_FAIL;
    if (req.pkt.raw) return this.finish(req, ok, 'answered', Buffer.from(arg));
    // The kernel switches on the op the daemon passed (a mismatch only trips a KASSERT).
    switch (m.opt) {
      case HV_VSS_CHECK:
      case HV_VSS_FREEZE:
        return this.finish(req, ok, 'answered');
      case HV_VSS_THAW:
        if (this.appRegisterDone && ok === HV_S_OK) return this.notify(this.app, req);
        return this.finish(req, ok, 'answered');
    }
    // Any other op: the request is in no queue and waits for the timeout.
  }

  /** The application answers; its status is kept in a uint8_t (F14). */
  private appAcked(arg: Buffer): void {
    const m = decodeFreebsdVss(arg.subarray(0, OPT_SIZE));
    if (isWireError(m)) return;
    const req = this.takeAck(this.app, m.msgid);
    if (!req) return;
    // No fs daemon: "Fatal", the request is in no queue any more and waits for the timeout.
    if (!this.registerDone) return;
    const ok = (m.status & 0xff) === VSS_SUCCESS;
    switch (m.opt) {
      case HV_VSS_CHECK:
      case HV_VSS_FREEZE:
        if (ok) return this.notify(this.fs, req);
        return this.finish(req, HV_E_FAIL, 'answered');
      case HV_VSS_THAW:
        return this.finish(req, ok ? HV_S_OK : HV_E_FAIL, 'answered');
    }
  }
}
