/**
 * What every daemon main does around its loop: detach (unless -n), keep a
 * pidfile, refuse a second instance, turn SIGTERM/SIGINT/SIGHUP into an
 * orderly stop.
 *
 * Detaching re-spawns the program in a new session (setsid) with the same
 * arguments; the parent exits 0 only once the child has registered with
 * its device, and otherwise prints the child's error and exits with its
 * status, so an init system sees a failed start as failed (pitfall P6).
 * Node cannot fork(), so this replaces daemon(3).
 */
import { childProcess } from './os/child.js';
import { closeSync, openSync, readFileSync, unlinkSync, writeSync, constants as fsc } from 'node:fs';
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { DeviceError } from './device/types.js';
import { createLogger } from './log.js';

/** <sysexits.h> codes the daemons use. */
export const EX_OK = 0;
export const EX_SOFTWARE = 70; // internal error
export const EX_UNAVAILABLE = 69; // the device does not exist (driver not loaded, not a Hyper-V guest)
export const EX_CANTCREAT = 73; // pool directory or pidfile cannot be created
export const EX_TEMPFAIL = 75; // another instance is running (device busy or live pidfile)
export const EX_NOPERM = 77; // not root

/** Set in the re-spawned child so it knows it is the daemon, and on which descriptor to report. */
const DETACHED_ENV = 'HVGUEST_DETACHED';
const STATUS_FD = 3;

/** A startup failure with the exit status main should return. */
export class StartupError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'StartupError';
  }
}

/** True in the child that detach() started. */
export const isDetachedChild = (): boolean => process.env[DETACHED_ENV] === '1';

/**
 * Parent side of detaching: start the daemon child, wait for its report.
 * Resolves with the exit status the parent should return; the message of a
 * failure has been written to stderr.
 */
export async function detach(name: string, timeoutMs = 60_000): Promise<number> {
  const child = childProcess().spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
    // The daemon's command line is the one it was started with, as after
    // fork(): argv[0] as the kernel gave it (for a #! launcher, the
    // interpreter path of that line), not execPath with symlinks resolved.
    // rc.subr finds the daemon by matching "INTERPRETER SCRIPT ARGS" from
    // the launcher's #! line against ps; a resolved /usr/local/bin/node
    // symlink would not match, and `service hv_kvpd stop/status` would
    // call the daemon not running.
    argv0: process.argv0,
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [DETACHED_ENV]: '1' },
    cwd: '/',
  });
  const report = child.stdio[STATUS_FD] as NodeJS.ReadableStream;
  let text = '';
  return new Promise<number>((resolve) => {
    const finish = (code: number, msg?: string) => {
      clearTimeout(timer);
      if (msg) process.stderr.write(`${name}: ${msg}\n`);
      report.removeAllListeners();
      child.removeAllListeners();
      (report as unknown as { destroy?: () => void }).destroy?.();
      child.unref();
      resolve(code);
    };
    const timer = setTimeout(() => finish(EX_SOFTWARE, `the daemon did not report within ${timeoutMs / 1000} s (pid ${child.pid})`), timeoutMs);
    report.on('data', (d: Buffer) => {
      text += d.toString();
      const line = text.split('\n')[0];
      if (!text.includes('\n') || line === undefined) return;
      if (line === 'ready') finish(EX_OK);
      else {
        const m = /^error (\d+) (.*)$/.exec(line);
        finish(m ? Number(m[1]) : EX_SOFTWARE, m ? m[2] : line);
      }
    });
    child.on('exit', (code, sig) => finish(code || EX_SOFTWARE, `the daemon exited during startup (${sig ?? `status ${code}`})`));
    child.on('error', (e) => finish(EX_SOFTWARE, `cannot start the daemon: ${e.message}`));
  });
}

/** Child side: tell the waiting parent that startup succeeded or failed (no-op in the foreground). */
export function reportStartup(result: { ok: true } | { ok: false; exitCode: number; message: string }): void {
  if (!isDetachedChild()) return;
  const line = result.ok ? 'ready\n' : `error ${result.exitCode} ${result.message.replace(/\n/g, ' ')}\n`;
  try {
    writeSync(STATUS_FD, line);
    closeSync(STATUS_FD);
  } catch {
    // The parent gave up waiting; nothing else to tell.
  }
}

/** Is a process with this pid alive (signal 0 succeeds, or fails only for permission)? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Create the pidfile, refusing when it names a live process other than us.
 * A stale pidfile (dead pid, garbage) is replaced. Returns a remover.
 */
export function writePidfile(path: string): () => void {
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (e) {
    throw new StartupError(`cannot create ${dirname(path)}: ${(e as NodeJS.ErrnoException).code}`, EX_CANTCREAT);
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new StartupError(`cannot create pidfile ${path}: ${code}`, EX_CANTCREAT);
      let other = NaN;
      try {
        other = Number(readFileSync(path, 'utf8').trim());
      } catch {
        // unreadable: treat as stale
      }
      if (Number.isInteger(other) && other > 0 && other !== process.pid && processAlive(other)) {
        throw new StartupError(`already running as pid ${other} (pidfile ${path})`, EX_TEMPFAIL);
      }
      try {
        unlinkSync(path);
      } catch {
        // raced with another remover; try again
      }
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return () => {
      try {
        if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
      } catch {
        // already gone
      }
    };
  }
  throw new StartupError(`cannot take over pidfile ${path}`, EX_CANTCREAT);
}

/** An AbortSignal that fires on SIGTERM, SIGINT or SIGHUP; `off` removes the handlers. */
export function stopSignal(onSignal?: (sig: NodeJS.Signals) => void): { signal: AbortSignal; off: () => void } {
  const ac = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    onSignal?.(sig);
    ac.abort(sig);
  };
  const sigs: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  sigs.forEach((s) => process.on(s, handler));
  return { signal: ac.signal, off: () => sigs.forEach((s) => process.off(s, handler)) };
}

/** Exit status and message for a device failure at startup; `what` names the service ("KVP", "VSS"). */
export function deviceStartupFailure(e: DeviceError, what: string): StartupError {
  switch (e.code) {
    case 'EBUSY':
      return new StartupError(`${e.message}: another ${what} daemon is running`, EX_TEMPFAIL);
    case 'ENOENT':
    case 'ENODEV':
      return new StartupError(e.message, EX_UNAVAILABLE);
    case 'EACCES':
    case 'EPERM':
      return new StartupError(e.message, EX_NOPERM);
    default:
      return new StartupError(e.message, 1);
  }
}

/**
 * The part every daemon main shares after parsing: detach unless -n, log to
 * stderr (-n) or syslog, run the daemon, and turn a startup failure into its
 * exit status, logged, printed in the foreground and reported to a parent
 * waiting on the detach.
 */
export async function runDaemonMain(
  name: string,
  o: { foreground: boolean; debug: boolean },
  run: (log: Logger) => Promise<number>,
  ident?: string,
): Promise<number> {
  if (!o.foreground && !isDetachedChild()) return detach(name);
  const log = createLogger({ name, debug: o.debug, sink: o.foreground ? 'stderr' : 'syslog', ...(ident ? { ident } : {}) });
  try {
    return await run(log);
  } catch (e) {
    const err = e instanceof StartupError ? e : new StartupError(e instanceof Error ? e.message : String(e), 1);
    log.error({ op: 'start' }, err.message);
    if (o.foreground) process.stderr.write(`${name}: ${err.message}\n`);
    reportStartup({ ok: false, exitCode: err.exitCode, message: err.message });
    return err.exitCode;
  }
}
