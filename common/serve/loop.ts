/**
 * The utility-daemon loop every daemon runs: wait until readable, receive
 * one message, decode it, hand it to the handler, encode the answer, send
 * it back. A message that does not decode gets the protocol's failure
 * answer where the protocol has one, one log line, and the loop goes on. A
 * device failure (device gone, late reply rejected, short transfer) closes
 * the device, then reopens and re-registers with backoff, as the C daemons
 * do after hibernation. Only an abort ends the loop.
 *
 * A handler may return its answer wrapped in AfterReply with work that must
 * not delay the host (VSS: the applications' thaw hooks): the loop sends
 * the reply, then awaits that work before it waits for the next request, so
 * requests stay strictly one at a time. The work runs even when the send
 * failed (what it follows, e.g. the thaw, has happened); an error there is
 * logged and the loop goes on.
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

/** A handler's answer plus work to run once the reply has gone to the device. */
export class AfterReply<Res> {
  constructor(
    readonly reply: Res,
    readonly after: () => Promise<void>,
  ) {}
}

/** What a handler returns: the answer, or the answer with after-reply work. */
export type Handled<Res> = Res | AfterReply<Res>;

export type Handler<Req, Res> = (req: Req) => Handled<Res> | Promise<Handled<Res>>;

/** The answer itself, without any after-reply work. */
export const replyOf = <Res>(h: Handled<Res>): Res => (h instanceof AfterReply ? h.reply : h);

/** One received message's outcome: the encoded reply (undefined: none to send) and the work to run after sending it. */
export interface Response {
  reply: Buffer | undefined;
  after?: () => Promise<void>;
}

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
    const r = await respond(raw, o);
    try {
      if (r.reply) await o.protocol.send(dev, r.reply);
    } finally {
      if (r.after) await runAfter(r.after, o.log);
    }
  }
}

/** Run after-reply work; it never throws (a failure is one log line). */
export async function runAfter(after: () => Promise<void>, log: Logger): Promise<void> {
  try {
    await after();
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    log.error({ op: 'after-reply', err }, `work after the reply failed: ${err.message}`);
  }
}

type Answering<Req, Res> = Pick<ServeOptions<Req, Res>, 'protocol' | 'handler' | 'log'>;

/**
 * The reply to one received message, with any after-reply work already
 * done (the loop itself uses respond() and sends in between). Exported so
 * the reliability suite drives exactly this path at handler level.
 */
export async function answer<Req, Res>(raw: Buffer, o: Answering<Req, Res>): Promise<Buffer | undefined> {
  const r = await respond(raw, o);
  if (r.after) await runAfter(r.after, o.log);
  return r.reply;
}

/**
 * One received message's reply and after-reply work: decode, handler,
 * encode; a message that does not decode or a handler that throws gets the
 * protocol's failure answer (undefined when it has none) and no after-reply
 * work. Never throws for bad input.
 */
export async function respond<Req, Res>(raw: Buffer, o: Answering<Req, Res>): Promise<Response> {
  const req = o.protocol.decode(raw);
  if (req instanceof WireError) {
    o.log.warn({ op: 'decode', errno: req.code, bytes: raw.length }, `malformed request: ${req.message}`);
    return { reply: o.protocol.failure(raw, req) };
  }
  try {
    const h = await o.handler(req);
    const reply = o.protocol.encode(replyOf(h), req, raw);
    return h instanceof AfterReply ? { reply, after: h.after } : { reply };
  } catch (e) {
    // A handler bug must not take the daemon down: the host gets a failure status.
    const err = e instanceof Error ? e : new Error(String(e));
    o.log.error({ op: 'handler', err }, `request handler failed: ${err.message}`);
    return { reply: o.protocol.failure(raw, err) };
  }
}
