/**
 * The seams inside the KVP daemon: the request handlers (kvp/handlers.ts)
 * use a PoolStore for pools 0, 1, 3, 4, Intrinsics for the Auto pool, and
 * the IP-info functions for GET_IP_INFO/SET_IP_INFO. Each is injected so the
 * handlers are testable without touching the machine.
 */
import type { Runner } from '../common/os/run.js';
import type { Flavor } from '../common/wire/constants.js';
import type { IpAddressFields } from '../common/wire/kvp.js';

/** One pool record: the bytes before the NUL of the 512-byte key and 2048-byte value fields. */
export interface PoolRecord {
  key: Buffer;
  value: Buffer;
}

/**
 * The five pool files (.kvp_pool_0 .. .kvp_pool_4), byte-compatible with the
 * C daemons and shared with other writers (cloud-init, libhvee, hvctl).
 * Every call re-reads a pool that another writer changed; a set/delete that
 * returns has reached the disk (fsync). Throws PoolError (kvp/pool-error.ts) on I/O or lock failure.
 */
export interface PoolStore {
  get(pool: number, key: Buffer): PoolRecord | undefined;
  /** Overwrite the value of an existing key or append a new record. */
  set(pool: number, key: Buffer, value: Buffer): void;
  /** False when the key was not there. */
  delete(pool: number, key: Buffer): boolean;
  /** The record at `index` in file order, undefined past the end. */
  at(pool: number, index: number): PoolRecord | undefined;
  /** Every record in file order. */
  list(pool: number): PoolRecord[];
  close(): void;
}

/** Auto-pool (pool 2) intrinsic keys, index 0..9; undefined past the end. */
export interface Intrinsics {
  at(index: number): Promise<{ key: string; value: string } | undefined>;
}

/** GET_IP_INFO request as the kernel delivers it. */
export interface IpInfoRequest {
  /** MAC text, "00:15:5D:..." (upper case from the host). */
  adapterId: string;
  addrFamily: number;
}

/** GET_IP_INFO answer fields (UTF-8 text, the daemon-side strings). */
export type IpInfo = IpAddressFields;

/**
 * SET_IP_INFO request as the kernel delivers it; adapterId is the NIC's
 * VMBus instance GUID text, or (FreeBSD) the ifname the kernel mapped it to.
 */
export type SetIpRequest = IpAddressFields;

/** What the IP functions need from the daemon. */
export interface IpContext {
  flavor: Flavor;
  /** Directory of the helper scripts (hv_get_dns_info, hv_get_dhcp_info, hv_set_ifconfig). */
  helperDir: string;
  /** Where SET_IP_INFO writes the config files it hands to hv_set_ifconfig. */
  configDir: string;
  run: Runner;
}
