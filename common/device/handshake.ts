/**
 * The registration handshakes of spec/devices.md section 4, written only in
 * Device primitives (write, waitReadable, read) so every Device
 * implementation — FFI, socket, in-memory — shares one copy.
 */
import { KVP_OP_REGISTER, KVP_OP_REGISTER1 } from '../wire/constants.js';
import { isWireError } from '../wire/errors.js';
import { decodeKvp, encodeKvp, readVariant } from '../wire/kvp.js';
import { readCString } from '../wire/strings.js';
import { LINUX_VSS_HANDSHAKE_REPLY_SIZE } from '../wire/structs.js';
import { decodeLinuxVssHandshake, linuxVssRegister } from '../wire/vss.js';
import { DeviceError, type Device, type Registration } from './types.js';

/** Wait until a message can be read; an abort becomes DeviceError 'EINTR'. */
async function readable(dev: Device, signal?: AbortSignal): Promise<void> {
  if (!(await dev.waitReadable(signal))) throw new DeviceError('EINTR', 'register', dev.path, 'aborted while waiting for the registration reply');
}

/** FreeBSD KVP: one whole message with op 4; the kernel answers nothing. */
async function freebsdKvp(dev: Device): Promise<Registration> {
  await dev.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
  return {};
}

/** Linux KVP: op 100, then read the kernel's reply (op 100, version "3.1"); that read completes the registration. */
async function linuxKvp(dev: Device, signal?: AbortSignal): Promise<Registration> {
  await dev.write(encodeKvp('linux', { operation: KVP_OP_REGISTER1 }));
  await readable(dev, signal);
  const msg = decodeKvp(await dev.read(), 'linux');
  if (isWireError(msg)) throw new DeviceError('EPROTO', 'register', dev.path, msg.message);
  if (msg.operation !== KVP_OP_REGISTER1) throw new DeviceError('EPROTO', 'register', dev.path, `reply op ${msg.operation}, expected ${KVP_OP_REGISTER1}`);
  const version = readCString(readVariant(msg, 'kvp_register').version as Buffer, 'version');
  if (isWireError(version)) throw new DeviceError('EPROTO', 'register', dev.path, version.message);
  return { version };
}

/** Linux VSS: 12 bytes with op 129, then exactly 4 bytes holding 129. */
async function linuxVss(dev: Device, signal?: AbortSignal): Promise<Registration> {
  await dev.write(linuxVssRegister());
  await readable(dev, signal);
  const v = decodeLinuxVssHandshake(await dev.read(LINUX_VSS_HANDSHAKE_REPLY_SIZE));
  if (isWireError(v)) throw new DeviceError('EPROTO', 'register', dev.path, v.message);
  return {};
}

/** FreeBSD VSS and the app device: opening was the registration. */
const nothing = async (): Promise<Registration> => ({});

const HANDSHAKES: Record<string, (dev: Device, signal?: AbortSignal) => Promise<Registration>> = {
  'freebsd/kvp': freebsdKvp,
  'linux/kvp': linuxKvp,
  'linux/vss': linuxVss,
  'freebsd/vss': nothing,
  'freebsd/appvss': nothing,
};

/** Register an opened device with its kernel (flavor handshake); resolves once requests can flow. */
export function registerDevice(dev: Device, signal?: AbortSignal): Promise<Registration> {
  const h = HANDSHAKES[`${dev.flavor}/${dev.service}`];
  if (!h) return Promise.reject(new DeviceError('EINVAL', 'register', dev.path, `no ${dev.service} service on ${dev.flavor}`));
  return h(dev, signal);
}
