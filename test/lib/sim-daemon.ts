/**
 * Minimal in-process daemons on a Device: wait, read one request, let a
 * handler build the reply, write it back. Tests use them to play the
 * daemon against the simulator; they are not the real daemons.
 */
import { hostIoctlOs, ioctlNumbers } from '../../common/device/ioctl.js';
import type { Device } from '../../common/device/types.js';
import { VSS_FAIL } from '../../common/wire/constants.js';
import { isWireError } from '../../common/wire/errors.js';
import { decodeFreebsdVss, encodeFreebsdVss, type FreebsdVssMessage } from '../../common/wire/vss.js';

/** Reply bytes for one request, or undefined to leave it unanswered. */
export type MessageHandler = (request: Buffer) => Buffer | undefined | Promise<Buffer | undefined>;

/** Serve read/write requests (KVP, Linux VSS) until `signal` aborts or the device fails; resolves with the error that stopped it, if any. */
export async function serveMessages(dev: Device, handler: MessageHandler, signal: AbortSignal): Promise<unknown> {
  try {
    while (!signal.aborted) {
      if (!(await dev.waitReadable(signal))) return undefined;
      const reply = await handler(await dev.read());
      if (reply) await dev.write(reply);
    }
  } catch (e) {
    return e;
  }
  return undefined;
}

/** The status to answer a FreeBSD VSS request with (0 success, 1 failure), or undefined to leave it unanswered. */
export type OptHandler = (request: FreebsdVssMessage) => number | undefined | Promise<number | undefined>;

/** Serve FreeBSD VSS requests through IOCHVVSSREAD/IOCHVVSSWRITE until `signal` aborts or the device fails. */
export async function serveOpts(dev: Device, handler: OptHandler, signal: AbortSignal): Promise<unknown> {
  const ioc = ioctlNumbers(hostIoctlOs());
  try {
    while (!signal.aborted) {
      if (!(await dev.waitReadable(signal))) return undefined;
      const m = decodeFreebsdVss(await dev.ioctl(ioc.IOCHVVSSREAD, encodeFreebsdVss({ opt: 0 })));
      if (isWireError(m) || m.status === VSS_FAIL) continue;
      const status = await handler(m);
      if (status !== undefined) await dev.ioctl(ioc.IOCHVVSSWRITE, encodeFreebsdVss({ opt: m.opt, msgid: m.msgid, status }));
    }
  } catch (e) {
    return e;
  }
  return undefined;
}
