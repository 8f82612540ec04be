/**
 * The Device seam: everything a daemon does with its kernel character
 * device. Daemons receive a Device by injection; production opens the real
 * node through FFI (`ffi-device.ts`), tests use the simulator, over its
 * socket transport or in memory (`sim/memory-device.ts`).
 *
 * Behaviour contract (every implementation, checked by the contract suite):
 * - open() is exclusive: a second open of the same node while one is held
 *   fails with DeviceError code 'EBUSY', whatever odd value the kernel used
 *   (FreeBSD's hv_kvp returns -EBUSY).
 * - register() performs the flavor's handshake (spec/devices.md section 4)
 *   and resolves once requests can flow; for Linux KVP it returns the
 *   kernel's version string ("3.1").
 * - waitReadable() resolves true when a message can be read (poll POLLIN),
 *   false when `signal` aborted the wait. It never blocks the event loop and
 *   makes no system calls while it waits. It rejects with 'EBADF'/'ENODEV'
 *   (code 'EGONE' for hang-up) when the device went away.
 * - read() returns exactly one message; `size` defaults to the flavor's
 *   message size. Reads are blocking in the kernel regardless of O_NONBLOCK,
 *   so callers wait first.
 * - write() sends one whole message; a short or failed write rejects (on
 *   Linux a late reply is EINVAL: callers reopen and re-register).
 * - ioctl() passes `arg` in and returns the bytes the kernel copied out
 *   (FreeBSD VSS: IOCHVVSSREAD fills the 64-byte struct; IOCHVVSSWRITE
 *   copies nothing back, so the returned buffer is the caller's input).
 * - close() is synchronous, idempotent, and releases the node (the kernel
 *   then fails any request the daemon had not answered).
 */
import type { Flavor } from '../wire/constants.js';

/** Which kernel service a node belongs to. */
export type Service = 'kvp' | 'vss' | 'appvss';

/** What the handshake learned. */
export interface Registration {
  /** Linux KVP: the kernel's version string from the REGISTER1 reply. */
  version?: string;
}

export interface Device {
  readonly path: string;
  readonly flavor: Flavor;
  readonly service: Service;
  open(): Promise<void>;
  register(): Promise<Registration>;
  waitReadable(signal?: AbortSignal): Promise<boolean>;
  read(size?: number): Promise<Buffer>;
  write(buf: Buffer): Promise<void>;
  ioctl(cmd: number, arg: Buffer): Promise<Buffer>;
  close(): void;
}

/** A device failure: the errno name (or our own code), the operation and the path. */
export class DeviceError extends Error {
  constructor(
    /** errno name ('EBUSY', 'EINVAL', ...) or 'ESHORT' (short transfer), 'EGONE' (hang-up), 'EPROTO' (bad handshake). */
    readonly code: string,
    readonly op: string,
    readonly path: string,
    detail?: string,
  ) {
    super(`${op} ${path}: ${code}${detail ? ` (${detail})` : ''}`);
    this.name = 'DeviceError';
  }
}

/** Hints a user can act on, by errno, used in error messages. */
export const ERRNO_HINTS: Record<string, string> = {
  ENOENT: 'is the Hyper-V driver loaded?',
  EBUSY: 'another daemon already has the device open',
  EACCES: 'the daemons must run as root',
  EPERM: 'the daemons must run as root, or the device is not registered yet',
  ENODEV: 'the device was removed',
  EBADF: 'the device was removed or closed',
  ECONNREFUSED: 'is the simulator running?',
};

/** Factory the daemons get injected: a fresh, unopened Device each call (used again on reopen). */
export type DeviceFactory = () => Device;
