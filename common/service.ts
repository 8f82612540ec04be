/**
 * A daemon is one or more services (KVP, VSS) run side by side in one
 * process: hv_kvp_daemon and hv_vss_daemon run one each, hvguestd both.
 * This module is what they share around the services: running them
 * together (ready once all registered, a startup failure of one stops the
 * others), the emergency path on an internal error, and service options
 * that a combined program spells with a prefix (--device vs --kvp-device).
 */
import type { Option } from 'commander';
import type { Logger } from 'pino';
import { EX_OK, EX_SOFTWARE, isDetachedChild, reportStartup, stopSignal, writePidfile } from './daemon.js';

/** One service of a daemon. */
export interface Service {
  /** 'kvp', 'vss': names the service in logs. */
  readonly name: string;
  /**
   * Serve until `signal` aborts; call `onReady` once after the first
   * registration. Throws StartupError when the service cannot start.
   */
  run(signal: AbortSignal, onReady: () => void): Promise<void>;
  /** Synchronous last action before the process exits on an internal error (VSS: thaw). */
  emergencyStop?(): void;
}

/**
 * Make a service's option spelled `--NAME` into `--PREFIXNAME` (prefix
 * "kvp-" gives --kvp-device). `make` builds the service's option list for
 * a prefix, so the single daemon and the combined one share one table.
 */
export type OptionTable = (prefix: string) => Option[];

/** The values of options made with `prefix`, under their unprefixed names (kvpPoolDir -> poolDir). */
export function unprefixed(opts: Record<string, unknown>, prefix: string): Record<string, unknown> {
  if (!prefix) return { ...opts };
  const head = prefix.replace(/-$/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) {
    if (k.startsWith(head) && k.length > head.length && /[A-Z]/.test(k[head.length]!)) out[k[head.length]!.toLowerCase() + k.slice(head.length + 1)] = v;
  }
  return out;
}

/**
 * Run `services` until `signal` aborts; `onReady` once every service has
 * registered. When one fails to start, the others are stopped and its
 * error is thrown once all have ended.
 */
export async function runServices(services: readonly Service[], signal: AbortSignal, onReady: () => void): Promise<void> {
  const inner = new AbortController();
  const relay = () => inner.abort(signal.reason);
  if (signal.aborted) relay();
  else signal.addEventListener('abort', relay, { once: true });
  let waiting = services.length;
  let failure: { e: unknown } | undefined;
  try {
    await Promise.all(
      services.map((s) =>
        s
          .run(inner.signal, () => {
            if (--waiting === 0) onReady();
          })
          .catch((e: unknown) => {
            failure ??= { e };
            inner.abort(e);
          }),
      ),
    );
  } finally {
    signal.removeEventListener('abort', relay);
  }
  if (failure) throw failure.e;
}

/**
 * The body of a daemon after its logger exists: pidfile when detached,
 * SIGTERM/SIGINT/SIGHUP stop every service, an internal error runs the
 * services' emergency stops and exits EX_SOFTWARE, and the detaching
 * parent hears "ready" once every service registered.
 */
export async function runDaemonServices(services: readonly Service[], log: Logger, pidfile: string): Promise<number> {
  const removePidfile = isDetachedChild() ? writePidfile(pidfile) : () => {};
  const stop = stopSignal((sig) => log.info({ op: 'stop', signal: sig }, 'stopping'));
  const emergency = services.filter((s) => s.emergencyStop);
  const onFatal = (e: unknown) => {
    for (const s of emergency) s.emergencyStop!();
    log.fatal({ op: 'fatal', err: e }, `internal error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(EX_SOFTWARE);
  };
  // Only a service with something to undo (a freeze) changes Node's own crash behaviour.
  if (emergency.length) {
    process.on('uncaughtException', onFatal);
    process.on('unhandledRejection', onFatal);
  }
  try {
    await runServices(services, stop.signal, () => reportStartup({ ok: true }));
    return EX_OK;
  } finally {
    stop.off();
    if (emergency.length) {
      process.off('uncaughtException', onFatal);
      process.off('unhandledRejection', onFatal);
    }
    removePidfile();
  }
}
