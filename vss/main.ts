/**
 * hv_vss_daemon: answers the Hyper-V host's backup (VSS) requests by
 * freezing and thawing file systems. The composition root: reads argv,
 * wires the device, freezer, guard, hooks and state file into the shared
 * daemon loop, makes sure every way out thaws first, exits.
 */
import { readFileSync } from 'node:fs';
import { Option } from 'commander';
import type { Logger } from 'pino';
import { EX_USAGE, InvalidArgumentError, daemonCommand, parseArgs, reportParseFailure } from '../common/cli.js';
import {
  EX_CANTCREAT,
  EX_NOPERM,
  EX_OK,
  EX_SOFTWARE,
  EX_TEMPFAIL,
  EX_UNAVAILABLE,
  StartupError,
  deviceStartupFailure,
  isDetachedChild,
  processAlive,
  reportStartup,
  runDaemonMain,
  stopSignal,
  writePidfile,
} from '../common/daemon.js';
import { ffiDeviceFactory } from '../common/device/ffi-device.js';
import { fsThaw, preloadFreezePrimitive, type FreebsdStatfs } from '../common/os/fsfreeze.js';
import { runProgram } from '../common/os/run.js';
import { serve } from '../common/serve/loop.js';
import { vssProtocol } from '../common/serve/vss.js';
import type { Flavor } from '../common/wire/constants.js';
import { runningFlavor, DEFAULT_FREEZE_TIMEOUT_S, DEFAULT_HOOK_TIMEOUT_S, FREEBSD_REPLY_DEADLINE_MS, VSS_DEFAULTS } from './defaults.js';
import type { Freezer } from './freezer.js';
import { createFreebsdFreezer, parseFreebsdMountOutput } from './freezer-freebsd.js';
import { createLinuxFreezer } from './freezer-linux.js';
import { createGuard, type GuardLike } from './guard.js';
import { createVssHandler } from './handler.js';
import { createHooks } from './hooks.js';
import { mountOf, readMounts } from './mounts-linux.js';
import { readState, removeState } from './state.js';

const NAME = 'hv_vss_daemon';

interface Opts {
  foreground: boolean;
  debug: boolean;
  flavor: Flavor;
  device?: string;
  pidfile?: string;
  include: string[];
  exclude: string[];
  freezeTimeout: number;
  hooksDir?: string;
  hookTimeout: number;
  dryRun: boolean;
  stateFile?: string;
  mountTable?: string;
}

const both = (k: 'device' | 'pidfile' | 'stateFile' | 'hooksDir') => `${VSS_DEFAULTS.freebsd[k]} on FreeBSD, ${VSS_DEFAULTS.linux[k]} on Linux`;
const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];
const seconds = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 86400) throw new InvalidArgumentError(`${name} must be a number of seconds between 0 and 86400`);
  return n;
};

function command() {
  return daemonCommand(NAME, "Answer the Hyper-V host's backup (VSS) requests: freeze and thaw file systems for consistent snapshots.")
    .addOption(new Option('--flavor <FLAVOR>', 'kernel interface to speak (default: the running OS)').choices(['freebsd', 'linux']).default(runningFlavor()))
    .option('--device <PATH>', `the VSS device node (default: ${both('device')})`)
    .option('--pidfile <PATH>', `pidfile when detached (default: ${both('pidfile')})`)
    .option('--include <MOUNT>', 'freeze only this mount point (repeatable)', collect)
    .option('--exclude <MOUNT>', 'never freeze this mount point (repeatable)', collect)
    .option('--freeze-timeout <SECONDS>', 'thaw by itself when no THAW arrives within this time', seconds('--freeze-timeout'), DEFAULT_FREEZE_TIMEOUT_S)
    .option('--hooks-dir <DIR>', `application hooks run with "freeze" and "thaw" (default: ${both('hooksDir')})`)
    .option('--hook-timeout <SECONDS>', 'per-hook timeout', seconds('--hook-timeout'), DEFAULT_HOOK_TIMEOUT_S)
    .option('--state-file <PATH>', `what is frozen, for startup thaw and hvctl (default: ${both('stateFile')})`)
    .option('--dry-run', 'log what would be frozen and freeze nothing')
    .option('--mount-table <FILE>', 'FreeBSD flavor: read the mount table from recorded `mount` output instead of getfsstat(2) (tests, demo on another OS)')
    .addHelpText(
      'after',
      `
Without -n the daemon detaches; the command returns 0 once the daemon has
registered with the device. Logs go to syslog when detached, to stderr with -n;
between freeze and thaw they are held in memory and written after the thaw.
File systems are thawed on THAW, after --freeze-timeout, on SIGTERM/SIGINT/
SIGHUP, on an internal error, and (Linux, through a guard process; FreeBSD,
by the kernel) when the daemon is killed. The environment variable
HVGUEST_FREEZE_ALLOW (colon-separated mount points), when set, is the only
set of mount points that may ever be frozen.
Exit status: 0 stopped by SIGTERM/SIGINT/SIGHUP; ${EX_USAGE} usage error;
${EX_UNAVAILABLE} no VSS device (driver not loaded, or not a Hyper-V guest);
${EX_CANTCREAT} pidfile cannot be created; ${EX_TEMPFAIL} another instance is running;
${EX_NOPERM} permission denied (run as root); ${EX_SOFTWARE} internal error (also: the
detached daemon did not report); 1 other errors.`,
    );
}

/** A previous instance died with file systems frozen: thaw what its state file lists. */
function startupThaw(o: Opts, stateFile: string, log: Logger): void {
  const s = readState(stateFile);
  if (!s) {
    removeState(stateFile);
    return;
  }
  if (s.pid !== process.pid && processAlive(s.pid)) {
    // Another instance is running and may be in the middle of a backup: its freeze is not ours to undo.
    log.warn({ op: 'thaw', pid: s.pid }, `state file ${stateFile} belongs to running pid ${s.pid}; leaving it alone`);
    return;
  }
  if (o.flavor === 'linux' && !s.dryRun && !o.dryRun) {
    for (const m of [...s.mounts].reverse()) {
      try {
        log.info({ op: 'thaw', mount: m, result: fsThaw(m) }, `startup: thawed ${m} left by pid ${s.pid}`);
      } catch (e) {
        log.warn({ op: 'thaw', mount: m }, `startup: thaw of ${m} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  } else log.info({ op: 'thaw', mounts: s.mounts }, `startup: state of pid ${s.pid} found (${o.flavor === 'freebsd' ? 'the kernel resumed them when it exited' : 'dry run'})`);
  removeState(stateFile);
}

/** Where the FreeBSD flavor reads its mount table: getfsstat(2) on FreeBSD, a recorded table, or nothing (another OS). */
function freebsdMounts(o: Opts, log: Logger): { mounts?: () => FreebsdStatfs[] } {
  if (o.mountTable) {
    const file = o.mountTable;
    return { mounts: () => parseFreebsdMountOutput(readFileSync(file, 'utf8')) };
  }
  if (process.platform === 'freebsd') return {};
  log.warn({ op: 'start' }, 'FreeBSD flavor on another OS without --mount-table: no file systems to freeze');
  return { mounts: () => [] };
}

async function runDaemon(o: Opts, log: Logger): Promise<number> {
  const paths = VSS_DEFAULTS[o.flavor];
  const stateFile = o.stateFile ?? paths.stateFile;
  const removePidfile = isDetachedChild() ? writePidfile(o.pidfile ?? paths.pidfile) : () => {};
  const stop = stopSignal((sig) => log.info({ op: 'stop', signal: sig }, 'stopping'));
  let guard: GuardLike | undefined;
  const freezer: Freezer =
    o.flavor === 'linux'
      ? createLinuxFreezer({ include: o.include, exclude: o.exclude, dryRun: o.dryRun })
      : createFreebsdFreezer({ include: o.include, exclude: o.exclude, dryRun: o.dryRun, run: runProgram, ...freebsdMounts(o, log) });
  if (o.flavor === 'linux' && !o.dryRun) {
    preloadFreezePrimitive();
    guard = createGuard();
  }
  const handler = createVssHandler({
    flavor: o.flavor,
    freezer,
    log,
    watchdogMs: o.freezeTimeout * 1000,
    dryRun: o.dryRun,
    ...(guard ? { guard } : {}),
    hooks: createHooks({ dir: o.hooksDir ?? paths.hooksDir, run: runProgram, timeoutMs: o.hookTimeout * 1000 }),
    stateFile,
    onFrozenFs: (path, mounts) => {
      if (o.flavor !== 'linux') return false;
      const m = mountOf(path, readMounts());
      return m !== undefined && mounts.includes(m.mountPoint);
    },
    ...(o.flavor === 'freebsd' ? { replyDeadlineMs: FREEBSD_REPLY_DEADLINE_MS } : {}),
  });
  const onFatal = (e: unknown) => {
    handler.thawNow('internal error');
    log.fatal({ op: 'fatal', err: e }, `internal error: ${e instanceof Error ? e.message : String(e)}`);
    guard?.close();
    process.exit(EX_SOFTWARE);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  try {
    startupThaw(o, stateFile, log);
    // The guard is started (and has everything loaded) long before any freeze.
    if (guard) {
      try {
        await guard.arm([]);
      } catch (e) {
        throw new StartupError(`cannot start the freeze guard: ${e instanceof Error ? e.message : String(e)}`, EX_SOFTWARE);
      }
    }
    let reported = false;
    const end = await serve({
      device: ffiDeviceFactory({ path: o.device ?? paths.device, flavor: o.flavor, service: 'vss' }),
      protocol: vssProtocol(o.flavor),
      handler: (req) => handler.handle(req),
      log,
      signal: stop.signal,
      onRegistered: () => {
        if (!reported) {
          reported = true;
          log.info({ op: 'start', pid: process.pid, dryRun: o.dryRun }, `VSS starting; pid is:${process.pid}`);
          reportStartup({ ok: true });
        }
      },
      // A reply that could not be delivered (late FREEZE reply, hibernation): thaw before reopening.
      beforeReopen: () => handler.thawAndResume('device reopen'),
    });
    if (end.reason === 'fatal') throw deviceStartupFailure(end.error, 'VSS');
    return EX_OK;
  } finally {
    // Stopped (SIGTERM...) or failed: file systems first, then the applications' thaw hooks.
    await handler.thawAndResume('stop');
    stop.off();
    guard?.close();
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
    removePidfile();
  }
}

/** Run hv_vss_daemon with argv (without node and script); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs<Opts>(command(), argv);
  if (!parsed.ok) return reportParseFailure(parsed);
  // Repeatable and boolean options have no commander default (it would print "(default: [])"): fill them here.
  const o: Opts = { ...parsed.opts, include: parsed.opts.include ?? [], exclude: parsed.opts.exclude ?? [], dryRun: parsed.opts.dryRun ?? false };
  return runDaemonMain(NAME, o, (log) => runDaemon(o, log), VSS_DEFAULTS[o.flavor].ident);
}
