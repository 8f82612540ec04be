/**
 * FreeBSD hv_kvp (sys/dev/hyperv/utilities/hv_kvp.c) behind /dev/hv_kvp_dev
 * (spec/devices.md sections 1 and 4, pitfalls F1-F10): open does not
 * register (a second open fails with the negative -EBUSY); the first write
 * must have byte 0 = 4; the ring is drained only once a daemon registered;
 * one request at a time (daemon_busy), 5 s per request, late replies
 * dropped; the semaphore and the shared daemon buffer survive a close, so a
 * post the old daemon never read reaches the next one (F10).
 */
import { HV_E_FAIL, ICMSGTYPE_NEGOTIATE, ICMSG_HDR, IC_FRAMEWORK_VERSION, KVP_MSG_VERSION_WIN8, KVP_OP_REGISTER } from '../common/wire/constants.js';
import { kvpMsgSize } from '../common/wire/structs.js';
import type { RingPacket } from './channel.js';
import { DriverFile } from './driver-file.js';
import type { HnDevice } from './host-api.js';
import { answerNegotiate, finishReply, icMsgType, receiveBuffer, type IcVersions } from './ic-reply.js';
import type { DriverEnv, KernelService, ServiceStatus } from './kernel-service.js';
import { freebsdToDaemon, freebsdToHost } from './kvp-convert-freebsd.js';
import { SIM_POLLIN, SimErrno, type OpenContext, type SimFile, type SimNode } from './node.js';

const MSG_SIZE = kvpMsgSize('freebsd');
const VERSIONS: IcVersions = { framework: [IC_FRAMEWORK_VERSION], message: [KVP_MSG_VERSION_WIN8] };

interface Request {
  pkt: RingPacket;
  /** Receive buffer (IC packet, padded) or, for raw requests, the raw bytes. */
  host: Buffer;
}

/** FreeBSD hvkvp: the hv_kvp_dev node and the request task. */
export class FreebsdKvpDriver implements KernelService {
  readonly nodes: readonly SimNode[];
  private removed = false;
  private accessed = false;
  private registerDone = false;
  private daemonBusy = false;
  private reqInProgress = false;
  private reqTimedOut = false;
  /** dev_sema: posts not yet consumed by a read. */
  private sema = 0;
  /** daemon_kvp_msg: written by the kernel's request builder and by every daemon write. */
  private daemonMsg: Buffer = Buffer.alloc(MSG_SIZE);
  private req: Request | undefined;
  private taskRunning = false;
  private cancelWait: (() => void) | undefined;
  private file: DriverFile | undefined;

  constructor(
    private readonly env: DriverEnv,
    private readonly hn: readonly HnDevice[],
  ) {
    this.nodes = [{ name: 'hv_kvp_dev', open: (ctx) => this.open(ctx) }];
    env.channel.attach(() => this.callback());
  }

  status(): ServiceStatus {
    return { open: this.accessed, registered: this.registerDone, outstanding: this.reqInProgress };
  }

  remove(): void {
    this.removed = true;
    this.cancelWait?.();
    this.file?.kill();
    this.reset();
  }

  restore(): void {
    this.removed = false;
  }

  /** A freshly attached driver's state. */
  private reset(): void {
    this.accessed = false;
    this.registerDone = false;
    this.daemonBusy = false;
    this.reqInProgress = false;
    this.reqTimedOut = false;
    this.sema = 0;
    this.daemonMsg = Buffer.alloc(MSG_SIZE);
    this.req = undefined;
    this.taskRunning = false;
    this.cancelWait = undefined;
    this.file = undefined;
  }

  private open(_ctx: OpenContext): SimFile {
    if (this.removed) throw new SimErrno('ENOENT', 'hv_kvp_dev: driver detached');
    // The driver returns -EBUSY where it meant EBUSY (pitfall F1); transports pass it on as is.
    if (this.accessed) throw new SimErrno('-EBUSY', 'hv_kvp_dev: already open');
    this.accessed = true;
    this.daemonBusy = false;
    const file: DriverFile = new DriverFile({
      read: (f, count, signal) => this.read(f, count, signal),
      write: (_f, data) => this.write(data),
      poll: () => (this.daemonBusy ? SIM_POLLIN : 0),
      ioctl: () => {
        throw new SimErrno('ENOTTY');
      },
      release: () => {
        this.file = undefined;
        this.accessed = false;
        this.registerDone = false;
      },
    });
    this.file = file;
    return file;
  }

  /** Blocks on the semaphore (O_NONBLOCK ignored); a read gets min(count, message) bytes of the shared buffer. */
  private read(f: DriverFile, count: number, signal?: AbortSignal): Promise<Buffer> {
    if (!this.registerDone) return Promise.reject(new SimErrno('EPERM', 'hv_kvp_dev: not registered'));
    if (this.sema > 0) {
      this.sema--;
      return Promise.resolve(this.copyOut(count));
    }
    return f.reads.wait(count, signal);
  }

  private copyOut(count: number): Buffer {
    return Buffer.from(this.daemonMsg.subarray(0, Math.min(count, this.daemonMsg.length)));
  }

  /** sema_post: wake a blocked read or leave the post for a later one. */
  private post(): void {
    const r = this.file?.reads.shift();
    if (r) r.resolve(this.copyOut(r.count));
    else this.sema++;
  }

  private setBusy(busy: boolean): void {
    this.daemonBusy = busy;
    this.file?.watchers.notify();
  }

  private write(data: Buffer): number {
    // Short writes are accepted: the rest of the kernel's copy is uninitialised (zero here).
    const amt = Math.min(data.length, MSG_SIZE);
    const copy = Buffer.alloc(MSG_SIZE);
    data.copy(copy, 0, 0, amt);
    this.daemonMsg = copy;
    if (!this.registerDone) {
      if (copy.readUInt8(0) !== KVP_OP_REGISTER) throw new SimErrno('EINVAL', 'hv_kvp_dev: registration must be op 4');
      this.registerDone = true;
      this.callback();
      return amt;
    }
    let converted = true;
    const answering = !this.reqTimedOut && this.reqInProgress && this.req !== undefined;
    if (answering) converted = this.answer(this.req!, data, copy);
    // daemon_busy is cleared whether or not the reply was in time.
    this.setBusy(false);
    if (answering) this.waitEnd();
    if (!converted) throw new SimErrno('EINVAL', 'hv_kvp_dev: reply for an op the kernel cannot convert');
    return amt;
  }

  /** Convert the reply for the host's op and send the daemon's bytes 0..3 as the status; false when the op is unknown. */
  private answer(req: Request, written: Buffer, msg: Buffer): boolean {
    this.reqInProgress = false;
    const status = msg.readUInt32LE(0);
    if (req.pkt.raw) {
      this.env.channel.answer(req.pkt.id, { status, outcome: 'answered', reply: Buffer.from(written) });
      return true;
    }
    const ok = freebsdToHost(req.host.subarray(ICMSG_HDR), msg, req.host.readUInt8(ICMSG_HDR));
    this.env.channel.answer(req.pkt.id, { status, outcome: 'answered', packet: finishReply(req.host, status, req.pkt.data.length) });
    return ok;
  }

  /** hv_kvp_callback: the task is queued only while a daemon is registered. */
  private callback(): void {
    if (this.registerDone && !this.taskRunning && !this.removed) {
      this.taskRunning = true;
      this.next();
    }
  }

  /** hv_kvp_process_request: once running it drains the ring, registered daemon or not. */
  private next(): void {
    for (;;) {
      const pkt = this.env.channel.take();
      if (!pkt) {
        this.taskRunning = false;
        return;
      }
      if (!pkt.raw && icMsgType(receiveBuffer(pkt.data, ICMSG_HDR)) === ICMSGTYPE_NEGOTIATE) {
        answerNegotiate(this.env.channel, pkt, VERSIONS);
        continue;
      }
      // Every other packet is a KVP request, whatever its type (no length or type check: F11).
      const host = pkt.raw ? pkt.data : receiveBuffer(pkt.data, ICMSG_HDR + MSG_SIZE);
      this.req = { pkt, host };
      this.reqInProgress = true;
      if (!this.daemonBusy) {
        this.reqTimedOut = false;
        this.daemonMsg = pkt.raw ? Buffer.from(pkt.data) : freebsdToDaemon(host.subarray(ICMSG_HDR), this.hn);
        this.post();
        this.setBusy(true);
      }
      // A busy daemon (an earlier request never answered) is not sent this one: it just times out.
      this.cancelWait = this.env.clock.setTimer(this.env.timeouts.kvp, () => this.waitEnd());
      return;
    }
  }

  /** The task wakes: by the reply or after 5 s; a request still in progress gets HV_E_FAIL. */
  private waitEnd(): void {
    this.cancelWait?.();
    this.cancelWait = undefined;
    this.reqTimedOut = true;
    const req = this.req;
    this.req = undefined;
    if (this.reqInProgress && req) {
      this.reqInProgress = false;
      const packet = req.pkt.raw ? undefined : finishReply(req.host, HV_E_FAIL, req.pkt.data.length);
      this.env.channel.answer(req.pkt.id, { status: HV_E_FAIL, outcome: 'timeout', ...(packet ? { packet } : {}) });
    }
    this.next();
  }
}
