/**
 * The VSS service: freezer, guard, hooks and state file wired into the
 * shared serve loop on the VSS device, with every way out thawing first.
 * hv_vss_daemon runs it alone, hvguestd beside KVP; both take its options
 * from vssOptions().
 */
import { readFileSync } from 'node:fs';
import { Option } from 'commander';
import type { Logger } from 'pino';
import { EX_USAGE, InvalidArgumentError } from '../common/cli.js';
import { EX_SOFTWARE, StartupError, deviceStartupFailure, processAlive } from '../common/daemon.js';
import { ffiDeviceFactory } from '../common/device/ffi-device.js';
import type { FreezeGate } from '../common/freeze-gate.js';
import { fsThaw, preloadFreezePrimitive, type FreebsdStatfs } from '../common/os/fsfreeze.js';
import { runProgram } from '../common/os/run.js';
import type { Service } from '../common/service.js';
import { serve } from '../common/serve/loop.js';
import { vssProtocol } from '../common/serve/vss.js';
import type { Flavor } from '../common/wire/constants.js';
import { DEFAULT_FREEZE_TIMEOUT_S, DEFAULT_HOOK_TIMEOUT_S, FREEBSD_REPLY_DEADLINE_MS, VSS_DEFAULTS } from './defaults.js';
import type { Freezer } from './freezer.js';
import { createFreebsdFreezer, parseFreebsdMountOutput } from './freezer-freebsd.js';
import { createLinuxFreezer } from './freezer-linux.js';
import { GuardChoiceError, chooseGuards, createGuard, type GuardLike, type GuardProgram } from './guard.js';
import { createVssHandler } from './handler.js';
import { createHooks } from './hooks.js';
import { mountOf, readMounts } from './mounts-linux.js';
import { readState, removeState } from './state.js';

/** What the VSS service reads from the command line. */
export interface VssServiceOpts {
  flavor: Flavor;
  device?: string;
  include: string[];
  exclude: string[];
  freezeTimeout: number;
  hooksDir?: string;
  hookTimeout: number;
  dryRun: boolean;
  stateFile?: string;
  mountTable?: string;
}

const both = (k: 'device' | 'stateFile' | 'hooksDir') => `${VSS_DEFAULTS.freebsd[k]} on FreeBSD, ${VSS_DEFAULTS.linux[k]} on Linux`;
const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];
const seconds = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 86400) throw new InvalidArgumentError(`${name} must be a number of seconds between 0 and 86400`);
  return n;
};

/** The VSS service's options, each long name preceded by `prefix` ('' for hv_vss_daemon, 'vss-' for hvguestd). */
export function vssOptions(prefix: string): Option[] {
  const p = prefix;
  return [
    new Option(`--${p}device <PATH>`, `the VSS device node (default: ${both('device')})`),
    new Option(`--${p}include <MOUNT>`, 'freeze only this mount point (repeatable)').argParser(collect),
    new Option(`--${p}exclude <MOUNT>`, 'never freeze this mount point (repeatable)').argParser(collect),
    new Option(`--${p}freeze-timeout <SECONDS>`, 'thaw by itself when no THAW arrives within this time').argParser(seconds(`--${p}freeze-timeout`)).default(DEFAULT_FREEZE_TIMEOUT_S),
    new Option(`--${p}hooks-dir <DIR>`, `application hooks run with "freeze" before the freeze and "thaw" after the THAW reply (default: ${both('hooksDir')})`),
    new Option(`--${p}hook-timeout <SECONDS>`, 'per-hook timeout').argParser(seconds(`--${p}hook-timeout`)).default(DEFAULT_HOOK_TIMEOUT_S),
    new Option(`--${p}state-file <PATH>`, `what is frozen, for startup thaw and hvctl (default: ${both('stateFile')})`),
    new Option(`--${p}dry-run`, 'log what would be frozen and freeze nothing'),
    new Option(`--${p}mount-table <FILE>`, 'FreeBSD flavor: read the mount table from recorded `mount` output instead of getfsstat(2) (tests, demo on another OS)'),
  ];
}

/** The help text on what thaws, for options spelled with `prefix`. */
export const vssSafetyText = (prefix: string): string => `File systems are thawed on THAW, after --${prefix}freeze-timeout, on SIGTERM/SIGINT/
SIGHUP, on an internal error, and (Linux, through a guard process; FreeBSD,
by the kernel) when the daemon is killed. The Linux guard is a small C
program when it was built, else a second node process; the environment
variable HVGUEST_GUARD=native|node forces one. HVGUEST_FREEZE_ALLOW
(colon-separated mount points), when set, is the only set of mount
points that may ever be frozen.
Hooks run with "freeze" before the freeze (one that fails or times out
fails the backup) and with "thaw" right after the THAW reply has gone to
the host: the host never waits for them, and a thaw hook that fails or
times out is logged but cannot change the backup's result.`;

/** Repeatable and boolean options have no commander default (it would print "(default: [])"): fill them. */
export function vssDefaults<T extends Partial<VssServiceOpts>>(o: T): T & Pick<VssServiceOpts, 'include' | 'exclude' | 'dryRun'> {
  return { ...o, include: o.include ?? [], exclude: o.exclude ?? [], dryRun: o.dryRun ?? false };
}

/** A previous instance died with file systems frozen: thaw what its state file lists. */
function startupThaw(o: VssServiceOpts, stateFile: string, log: Logger): void {
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
function freebsdMounts(o: VssServiceOpts, log: Logger): { mounts?: () => FreebsdStatfs[] } {
  if (o.mountTable) {
    const file = o.mountTable;
    return { mounts: () => parseFreebsdMountOutput(readFileSync(file, 'utf8')) };
  }
  if (process.platform === 'freebsd') return {};
  log.warn({ op: 'start' }, 'FreeBSD flavor on another OS without --mount-table: no file systems to freeze');
  return { mounts: () => [] };
}

/**
 * The VSS service. `gate` is closed before every freeze and opened after
 * the thaw (hvguestd passes the one its KVP service runs inside).
 */
export function createVssService(o: VssServiceOpts, log: Logger, gate?: FreezeGate): Service {
  const paths = VSS_DEFAULTS[o.flavor];
  const stateFile = o.stateFile ?? paths.stateFile;
  let guard: GuardLike | undefined;
  const freezer: Freezer =
    o.flavor === 'linux'
      ? createLinuxFreezer({ include: o.include, exclude: o.exclude, dryRun: o.dryRun })
      : createFreebsdFreezer({ include: o.include, exclude: o.exclude, dryRun: o.dryRun, run: runProgram, ...freebsdMounts(o, log) });
  // Which guard program runs (HVGUEST_GUARD); a bad choice stops the start-up in run().
  let guardChoice: GuardProgram[] | GuardChoiceError | undefined;
  if (o.flavor === 'linux' && !o.dryRun) {
    preloadFreezePrimitive();
    try {
      guardChoice = chooseGuards();
    } catch (e) {
      if (!(e instanceof GuardChoiceError)) throw e;
      guardChoice = e;
    }
    if (Array.isArray(guardChoice)) {
      guard = createGuard({
        programs: guardChoice,
        onStarted: (kind, pid) => log.info({ op: 'guard', guard: kind, pid }, `freeze guard started: ${kind}, pid ${pid}`),
        onFallback: (failed, reason, next) => log.warn({ op: 'guard', guard: failed }, `${reason}; using the ${next} guard instead`),
      });
    }
  }
  const handler = createVssHandler({
    flavor: o.flavor,
    freezer,
    log,
    watchdogMs: o.freezeTimeout * 1000,
    dryRun: o.dryRun,
    ...(guard ? { guard } : {}),
    ...(gate ? { gate } : {}),
    hooks: createHooks({ dir: o.hooksDir ?? paths.hooksDir, run: runProgram, timeoutMs: o.hookTimeout * 1000 }),
    stateFile,
    onFrozenFs: (path, mounts) => {
      if (o.flavor !== 'linux') return false;
      const m = mountOf(path, readMounts());
      return m !== undefined && mounts.includes(m.mountPoint);
    },
    ...(o.flavor === 'freebsd' ? { replyDeadlineMs: FREEBSD_REPLY_DEADLINE_MS } : {}),
  });
  return {
    name: 'vss',
    emergencyStop() {
      handler.thawNow('internal error');
      guard?.close();
    },
    async run(signal, onReady) {
      try {
        startupThaw(o, stateFile, log);
        // The guard process is started by the first backup (the handler starts it on CHECK or FREEZE),
        // so an idle guest that is never backed up has none. Its program must be there, though.
        if (guardChoice instanceof GuardChoiceError) throw new StartupError(guardChoice.message, guardChoice.usage ? EX_USAGE : EX_SOFTWARE);
        let reported = false;
        const end = await serve({
          device: ffiDeviceFactory({ path: o.device ?? paths.device, flavor: o.flavor, service: 'vss' }),
          protocol: vssProtocol(o.flavor),
          handler: (req) => handler.handle(req),
          log,
          signal,
          onRegistered: () => {
            if (!reported) {
              reported = true;
              log.info({ op: 'start', pid: process.pid, dryRun: o.dryRun }, `VSS starting; pid is:${process.pid}`);
              onReady();
            }
          },
          // A reply that could not be delivered (late FREEZE reply, hibernation): thaw before reopening.
          beforeReopen: () => handler.thawAndResume('device reopen'),
        });
        if (end.reason === 'fatal') throw deviceStartupFailure(end.error, 'VSS');
      } finally {
        // Stopped (SIGTERM...) or failed: file systems first, then the applications' thaw hooks.
        await handler.thawAndResume('stop');
        guard?.close();
      }
    },
  };
}
