/**
 * The utility-daemon loop every daemon runs: wait until readable, receive
 * one message, decode it, hand it to the handler, encode the answer, send
 * it back. A message that does not decode gets the protocol's failure
 * answer where the protocol has one, one log line, and the loop goes on. A
 * device failure (device gone, late reply rejected, short transfer) closes
 * the device, then reopens and re-registers with backoff, as the C daemons
 * do after hibernation. Only an abort ends the loop.
 */
import type { Logger } from 'pino';
import { DeviceError, type Device, type DeviceFactory, type Registration } from '../device/types.js';
import { WireError } from '../wire/errors.js';

/** How one service's messages travel and decode. */
export interface Protocol<Req, Res> {
  /** Fetch one request after the device became readable; undefined when there was nothing to take (spurious wake-up, FreeBSD VSS empty queue). */
  receive(dev: Device): Promise<Buffer | undefined>;
  decode(raw: Buffer): Req | WireError;
  /** The failure answer to a message that did not decode or whose handler failed, or undefined when the protocol cannot answer it. */
  failure(raw: Buffer, err: WireError | Error): Buffer | undefined;
  encode(res: Res, req: Req, raw: Buffer): Buffer;
  send(dev: Device, reply: Buffer): Promise<void>;
}

export type Handler<Req, Res> = (req: Req) => Res | Promise<Res>;

export interface ServeOptions<Req, Res> {
  /** Makes a fresh unopened Device; called again for every reopen. */
  device: DeviceFactory;
  protocol: Protocol<Req, Res>;
  handler: Handler<Req, Res>;
  log: Logger;
  /** Aborting ends the loop; the device is closed before serve() resolves. */
  signal: AbortSignal;
  /** Reopen backoff: first delay and cap, in ms (defaults 100 ms, 5 s). */
  backoff?: { initialMs: number; maxMs: number };
  /** Called after each successful registration (first and after every reopen). */
  onRegistered?: (reg: Registration, dev: Device) => void | Promise<void>;
  /** Called before every reopen (VSS: thaw first if frozen). */
  beforeReopen?: () => void | Promise<void>;
  /** Open/register failures that should end the loop instead of retrying (default: EBUSY, EACCES, EPERM on the first open). */
  fatalOnFirstOpen?: (e: DeviceError) => boolean;
}

/** Why serve() stopped. */
export type ServeEnd = { reason: 'aborted' } | { reason: 'fatal'; error: DeviceError };

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

const defaultFatal = (e: DeviceError) => ['EBUSY', 'EACCES', 'EPERM', 'ENOENT'].includes(e.code);

/** Open and register a device; closes it again on failure. */
async function connect(factory: DeviceFactory): Promise<{ dev: Device; reg: Registration }> {
  const dev = factory();
  try {
    await dev.open();
    const reg = await dev.register();
    return { dev, reg };
  } catch (e) {
    dev.close();
    throw e;
  }
}

/** Run the loop until the signal aborts (or the first open fails fatally). */
export async function serve<Req, Res>(o: ServeOptions<Req, Res>): Promise<ServeEnd> {
  const backoff = o.backoff ?? { initialMs: 100, maxMs: 5000 };
  const fatal = o.fatalOnFirstOpen ?? defaultFatal;
  let delay = backoff.initialMs;
  let first = true;
  while (!o.signal.aborted) {
    let dev: Device;
    try {
      if (!first) await o.beforeReopen?.();
      const c = await connect(o.device);
      dev = c.dev;
      o.log.info({ op: 'register', path: dev.path, version: c.reg.version }, 'registered with the device');
      await o.onRegistered?.(c.reg, dev);
      delay = backoff.initialMs;
    } catch (e) {
      const err = e instanceof DeviceError ? e : new DeviceError('EIO', 'open', '?', String(e));
      if (first && fatal(err)) return { reason: 'fatal', error: err };
      first = false;
      o.log.warn({ op: 'reopen', errno: err.code, ms: delay }, `${err.message}; retrying`);
      await sleep(delay, o.signal);
      delay = Math.min(delay * 2, backoff.maxMs);
      continue;
    }
    first = false;
    try {
      await loopOnce(dev, o);
    } catch (e) {
      if (!(e instanceof DeviceError)) {
        dev.close();
        throw e;
      }
      o.log.warn({ op: 'device', errno: e.code }, `${e.message}; reopening the device`);
    }
    dev.close();
  }
  return { reason: 'aborted' };
}

/** Serve requests on one open, registered device until it fails or the signal aborts. */
async function loopOnce<Req, Res>(dev: Device, o: ServeOptions<Req, Res>): Promise<void> {
  while (!o.signal.aborted) {
    if (!(await dev.waitReadable(o.signal))) continue;
    const raw = await o.protocol.receive(dev);
    if (!raw) continue;
    const reply = await answer(raw, o);
    if (reply) await o.protocol.send(dev, reply);
  }
}

/**
 * The reply to one received message: decode, handler, encode; a message
 * that does not decode or a handler that throws gets the protocol's
 * failure answer (undefined when it has none). Never throws for bad input.
 * Exported so the reliability suite drives exactly this path at handler level.
 */
export async function answer<Req, Res>(raw: Buffer, o: Pick<ServeOptions<Req, Res>, 'protocol' | 'handler' | 'log'>): Promise<Buffer | undefined> {
  const req = o.protocol.decode(raw);
  if (req instanceof WireError) {
    o.log.warn({ op: 'decode', errno: req.code, bytes: raw.length }, `malformed request: ${req.message}`);
    return o.protocol.failure(raw, req);
  }
  try {
    return o.protocol.encode(await o.handler(req), req, raw);
  } catch (e) {
    // A handler bug must not take the daemon down: the host gets a failure status.
    const err = e instanceof Error ? e : new Error(String(e));
    o.log.error({ op: 'handler', err }, `request handler failed: ${err.message}`);
    return o.protocol.failure(raw, err);
  }
}
