/**
 * What the simulated Hyper-V host can ask, and what it sees back. The
 * simulator core (`sim/simulator.ts`) implements SimHost for one flavor;
 * hvsim's host commands and the tests drive it, in process or through the
 * control socket of `hvsim serve` (same JSON shapes).
 */
import type { Flavor } from '../common/wire/constants.js';
import type { HostIpAddresses } from '../common/wire/host.js';
import type { SimClock } from './clock.js';
import type { SimNode } from './node.js';

/** How a host request ended, beyond the status word. */
export type HostOutcome =
  | 'answered' // the daemon replied in time; status is the daemon's (as the kernel passed it on)
  | 'kernel' // answered by the kernel itself (NEGOTIATE, GET_DM_INFO, Linux CREATE/DELETE/...)
  | 'no-daemon' // no daemon registered: the kernel failed it at once, or it was withdrawn after the host's wait
  | 'timeout' // the kernel's timeout expired (HV_E_FAIL to the host)
  | 'daemon-closed' // the daemon closed the device with the request outstanding (HV_E_FAIL)
  | 'dropped'; // the kernel never answers (FreeBSD VSS overlapping/unknown ops); the host gave up

export interface HostResultBase {
  /** Status word the host received (HV_E_FAIL for timeouts and no daemon); undefined for 'dropped'. */
  status?: number;
  statusName?: string;
  outcome: HostOutcome;
  /** Milliseconds from send to answer. */
  ms: number;
}

export type KvpHostRequest =
  | { op: 'get'; pool: number; key: string }
  | { op: 'set'; pool: number; key: string; value: string | number | bigint; valueType?: 'sz' | 'u32' | 'u64' }
  | { op: 'delete'; pool: number; key: string }
  | { op: 'enum'; pool: number; index: number }
  | { op: 'ipinfo'; mac: string; addrFamily?: number }
  | { op: 'setip'; adapterId: string; ip: string; subnet: string; gateway: string; dns: string; dhcp: boolean; addrFamily?: number };

export interface KvpHostResult extends HostResultBase {
  /** GET/ENUMERATE: the key and value the host decoded from UTF-16 (only on HV_S_OK). */
  key?: string;
  value?: string;
  keySize?: number;
  valueSize?: number;
  valueType?: number;
  /** GET_IP_INFO: the fields the host decoded. */
  ipInfo?: HostIpAddresses;
}

export type VssHostOp = 'check' | 'freeze' | 'thaw' | 'create' | 'delete' | 'get_dm_info' | 'bu_complete' | 'auto_recover';

export interface VssHostResult extends HostResultBase {
  /** Flags the host received (CHECK/HOT_BACKUP: 5 forced by the kernel; GET_DM_INFO: 0). */
  flags?: number;
}

export interface RawResult extends HostResultBase {
  /** The daemon's reply bytes exactly as written to the device (absent when it never replied). */
  reply?: Buffer;
}

/** Options for one host request. */
export interface HostRequestOptions {
  /** How long the host waits for a daemon to register before withdrawing the request (ms). Default 5000. */
  waitForDaemonMs?: number;
  /** How long the host waits for any answer at all (covers 'dropped'); default: the kernel timeout + 5 s. */
  hostTimeoutMs?: number;
}

/** Kernel timeouts in milliseconds; defaults come from spec/devices.md. */
export interface SimTimeouts {
  kvp: number; // FreeBSD 5000, Linux 30000
  vss: number; // FreeBSD 15000 (whole chain), Linux 30000 (non-freeze)
  vssFreeze: number; // FreeBSD 15000, Linux 900000
}

/** A FreeBSD hn(4) device: its VMBus instance GUID (the SET_IP_INFO adapter id the kernel maps) and interface name. */
export interface HnDevice {
  guid: string;
  ifname: string;
}

/**
 * Kernel behaviours read in the driver source that spec/devices.md does not
 * describe, or describes differently. linuxKvpGetValueAtEnumOffset is on by
 * default (re-checked in torvalds/linux drivers/hv/hv_kvp.c: a daemon that
 * fills GET values must place them where the kernel reads); the VSS flags
 * one is off by default pending the same check against the VSS daemon's needs.
 */
export interface SimQuirks {
  /** Linux KVP GET: kvp_respond_to_host() takes the daemon's value from the ENUMERATE value offset (532), not the GET one (528). Default on. */
  linuxKvpGetValueAtEnumOffset: boolean;
  /** Linux VSS HOT_BACKUP: vss_on_msg() forces flags 5 only when byte 0 of the daemon's reply is 2; that byte is the status, normally 0. */
  linuxVssHotBackupFlagsFromReplyOp: boolean;
}

export interface SimulatorOptions {
  flavor: Flavor;
  timeouts?: Partial<SimTimeouts>;
  /** FreeBSD: hn(4) devices for the kernel's SET_IP_INFO GUID -> ifname mapping; default none. */
  hnDevices?: readonly HnDevice[];
  /** Time source for kernel and host timeouts; default the system clock and the global timers (fake timers apply). */
  clock?: SimClock;
  quirks?: Partial<SimQuirks>;
}

/** Daemon-side state of each service, for status displays and tests. */
export interface SimStatus {
  flavor: Flavor;
  kvp: { open: boolean; registered: boolean; outstanding: boolean; version?: string };
  vss: { open: boolean; registered: boolean; outstanding: boolean };
  appvss?: { open: boolean };
}

/** The host's side of a simulator instance. */
export interface SimHost {
  readonly flavor: Flavor;
  /** The device nodes this flavor exposes. */
  readonly nodes: readonly SimNode[];
  kvp(req: KvpHostRequest, opts?: HostRequestOptions): Promise<KvpHostResult>;
  vss(op: VssHostOp, opts?: HostRequestOptions): Promise<VssHostResult>;
  /** Deliver these exact bytes to the daemon as the driver would deliver a request, return its reply. */
  raw(service: 'kvp' | 'vss', bytes: Buffer, opts?: HostRequestOptions): Promise<RawResult>;
  status(): SimStatus;
  /** Simulate the driver going away (detach/unload): readers get EBADF/POLLHUP, opens fail until restore(). */
  remove(): void;
  restore(): void;
  /** Stop timers; fail anything outstanding. */
  close(): void;
}
