/**
 * The composition root of the simulator core: one flavor's kernel drivers,
 * each behind its own VMBus channel, and the host side that turns SimHost
 * calls into IC packets and reads the answers back.
 */
import { VSS_OP_FREEZE } from '../common/wire/constants.js';
import { systemClock } from './clock.js';
import type {
  HostRequestOptions,
  KvpHostRequest,
  KvpHostResult,
  RawResult,
  SimHost,
  SimStatus,
  SimulatorOptions,
  SimTimeouts,
  VssHostOp,
  VssHostResult,
} from './host-api.js';
import { HostPort, type HostCall } from './host-port.js';
import { kvpPacket, kvpResult, negotiatePacket, rawResult, vssPacket, vssResult } from './host-requests.js';
import type { KernelService } from './kernel-service.js';
import { FreebsdKvpDriver } from './kvp-freebsd.js';
import { LinuxKvpDriver } from './kvp-linux.js';
import type { SimNode } from './node.js';
import { HOST_GRACE_MS, resolveTimeouts } from './timeouts.js';
import { FreebsdVssDriver } from './vss-freebsd.js';
import { LinuxVssDriver } from './vss-linux.js';

/** How long the host waits for a daemon to register before withdrawing a request (ms). */
export const DEFAULT_WAIT_FOR_DAEMON_MS = 5_000;

class Simulator implements SimHost {
  readonly flavor: SimulatorOptions['flavor'];
  readonly nodes: readonly SimNode[];
  private readonly timeouts: SimTimeouts;
  private readonly kvpPort: HostPort;
  private readonly vssPort: HostPort;
  private readonly kvpDriver: KernelService;
  private readonly vssDriver: KernelService;
  private transactionId = 0;
  private removed = false;
  private closed = false;

  constructor(opts: SimulatorOptions) {
    this.flavor = opts.flavor;
    const clock = opts.clock ?? systemClock;
    this.timeouts = resolveTimeouts(opts.flavor, opts.timeouts);
    this.kvpPort = new HostPort(clock, () => negotiatePacket('kvp'));
    this.vssPort = new HostPort(clock, () => negotiatePacket('vss'));
    const env = (port: HostPort) => ({ channel: port.channel, clock, timeouts: this.timeouts });
    const q = opts.quirks ?? {};
    if (opts.flavor === 'freebsd') {
      this.kvpDriver = new FreebsdKvpDriver(env(this.kvpPort), opts.hnDevices ?? []);
      this.vssDriver = new FreebsdVssDriver(env(this.vssPort));
    } else {
      this.kvpDriver = new LinuxKvpDriver(env(this.kvpPort), { getValueAtEnumOffset: q.linuxKvpGetValueAtEnumOffset ?? true });
      this.vssDriver = new LinuxVssDriver(env(this.vssPort), { hotBackupFlagsFromReplyOp: q.linuxVssHotBackupFlagsFromReplyOp ?? false });
    }
    this.nodes = [...this.kvpDriver.nodes, ...this.vssDriver.nodes];
  }

  private call(port: HostPort, data: Buffer, raw: boolean, kernelMs: number, o: HostRequestOptions = {}): ReturnType<HostPort['call']> {
    if (this.closed) return Promise.reject(new Error('simulator closed'));
    const c: HostCall = {
      data,
      raw,
      waitForDaemonMs: o.waitForDaemonMs ?? DEFAULT_WAIT_FOR_DAEMON_MS,
      hostTimeoutMs: o.hostTimeoutMs ?? kernelMs + HOST_GRACE_MS,
    };
    return port.call(c);
  }

  private nextTid(): number {
    this.transactionId = (this.transactionId + 1) & 0xff;
    return this.transactionId;
  }

  async kvp(req: KvpHostRequest, opts?: HostRequestOptions): Promise<KvpHostResult> {
    const packet = kvpPacket(req, this.nextTid());
    return kvpResult(req, await this.call(this.kvpPort, packet, false, this.timeouts.kvp, opts));
  }

  async vss(op: VssHostOp, opts?: HostRequestOptions): Promise<VssHostResult> {
    const ms = op === 'freeze' ? this.timeouts.vssFreeze : this.timeouts.vss;
    return vssResult(op, await this.call(this.vssPort, vssPacket(op, this.nextTid()), false, ms, opts));
  }

  async raw(service: 'kvp' | 'vss', bytes: Buffer, opts?: HostRequestOptions): Promise<RawResult> {
    const freeze = service === 'vss' && this.flavor === 'linux' && bytes.length > 0 && bytes.readUInt8(0) === VSS_OP_FREEZE;
    const ms = service === 'kvp' ? this.timeouts.kvp : freeze ? this.timeouts.vssFreeze : this.timeouts.vss;
    const port = service === 'kvp' ? this.kvpPort : this.vssPort;
    return rawResult(await this.call(port, Buffer.from(bytes), true, ms, opts));
  }

  status(): SimStatus {
    const kvp = this.kvpDriver.status();
    const vss = this.vssDriver.status();
    const s: SimStatus = {
      flavor: this.flavor,
      kvp: { open: kvp.open, registered: kvp.registered, outstanding: kvp.outstanding, ...(kvp.version ? { version: kvp.version } : {}) },
      vss: { open: vss.open, registered: vss.registered, outstanding: vss.outstanding },
    };
    if (this.flavor === 'freebsd') s.appvss = { open: vss.appOpen ?? false };
    return s;
  }

  remove(): void {
    if (this.removed || this.closed) return;
    this.removed = true;
    for (const d of [this.kvpDriver, this.vssDriver]) d.remove();
    this.kvpPort.rescind();
    this.vssPort.rescind();
  }

  restore(): void {
    if (!this.removed || this.closed) return;
    this.removed = false;
    for (const d of [this.kvpDriver, this.vssDriver]) d.restore();
  }

  close(): void {
    if (this.closed) return;
    this.remove();
    this.closed = true;
    this.kvpPort.close();
    this.vssPort.close();
  }
}

/** A simulated Hyper-V host and guest kernel for one flavor; idle, it holds no timer. */
export function createSimulator(opts: SimulatorOptions): SimHost {
  return new Simulator(opts);
}
