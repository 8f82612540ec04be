/**
 * The VSS request handler, one per daemon: CHECK, FREEZE, THAW for both
 * flavors, plus the thaw that must happen whatever goes wrong (watchdog,
 * signals, reopen, uncaught errors).
 *
 * Between the first FIFREEZE and the end of the thaw nothing here writes to
 * a local file system: logs are held in memory (holdLogs) and flushed after
 * the thaw, the state file is written before the freeze and removed after,
 * and the guard learns the list before the freeze. The guard process is
 * started by the first backup (on CHECK, at the latest on FREEZE), not
 * before: a guest that is never backed up never pays for it. It then stays,
 * as a new one per backup would slow every FREEZE down (measured: 250 ms
 * instead of 12 ms for 8 file systems, test/bench/vss-freeze.js).
 *
 * The applications' thaw hooks never delay the host's answer: a THAW (and a
 * FREEZE that failed after the freeze hooks ran) is answered first and the
 * hooks run right after the reply went out (AfterReply, run by the serve
 * loop before the next request), each bounded by the hook timeout. Their
 * outcome is logged; it cannot change the host's result, which was only
 * about the file systems. Freeze hooks stay before the FREEZE reply: they
 * must finish before anything is frozen. Thaw hooks never overlap: each
 * run, and the next freeze hooks, wait for the one before.
 */
import type { Logger } from 'pino';
import type { FreezeGate } from '../common/freeze-gate.js';
import { holdLogs, releaseLogs } from '../common/log.js';
import { AfterReply, type Handled } from '../common/serve/loop.js';
import type { VssReply, VssRequest } from '../common/serve/vss.js';
import { HV_E_FAIL, HV_S_OK, type Flavor } from '../common/wire/constants.js';
import type { Freezer, ThawResult } from './freezer.js';
import type { GuardLike } from './guard.js';
import type { Hooks } from './hooks.js';
import { removeState, writeState } from './state.js';

export interface VssHandlerOptions {
  flavor: Flavor;
  freezer: Freezer;
  log: Logger;
  /** Thaw by itself after this long frozen without a THAW. */
  watchdogMs: number;
  dryRun?: boolean;
  guard?: GuardLike;
  hooks?: Hooks;
  stateFile?: string;
  /** True when `path` lives on one of the mount points about to be frozen (then the state file is not written). */
  onFrozenFs?: (path: string, mounts: readonly string[]) => boolean;
  /** A FREEZE that took longer than this is treated as failed and thawed (FreeBSD: the kernel's 15 s deadline, pitfall F15). */
  replyDeadlineMs?: number;
  /** Other work of this process that may write to disk (hvguestd's KVP): closed before the freeze, opened after the thaw. */
  gate?: FreezeGate;
  now?: () => number;
}

export interface VssHandler {
  /** The answer; THAW and a failed FREEZE carry the thaw hooks as after-reply work (see replyOf() to read the status). */
  handle(req: VssRequest): Promise<Handled<VssReply>>;
  /** Thaw now if anything is frozen (synchronous: usable from exit paths). Returns undefined when nothing was frozen. */
  thawNow(reason: string): ThawResult | undefined;
  /** thawNow, then the applications' thaw hooks when something was frozen (stop, device reopen). */
  thawAndResume(reason: string): Promise<void>;
  isFrozen(): boolean;
}

/** How often a thaw that failed is tried again. */
export const THAW_RETRY_MS = 1000;

const OK: VssReply = { status: HV_S_OK };
const FAIL: VssReply = { status: HV_E_FAIL };

export function createVssHandler(o: VssHandlerOptions): VssHandler {
  const log = o.log;
  const now = o.now ?? Date.now;
  let frozen = false;
  let watchdog: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  /** The watchdog thawed before the host's THAW: the snapshot the host took since is not consistent. */
  let watchdogFired = false;
  /** The last thaw hooks run (settled when none is running): the next run and the freeze hooks wait for it. */
  let hooksDone: Promise<void> = Promise.resolve();

  /**
   * Thaw file systems, then everything that had to wait for it. While any
   * thaw fails something is still frozen: logs stay in memory (they could
   * land on it and block this very thread), the guard stays armed, and the
   * thaw is tried again every THAW_RETRY_MS until it succeeds.
   */
  function thawFs(reason: string): ThawResult {
    if (watchdog) clearTimeout(watchdog);
    if (retry) clearTimeout(retry);
    watchdog = retry = undefined;
    const t0 = now();
    const r = o.freezer.thaw();
    frozen = r.failures.length > 0;
    for (const f of r.failures) log.error({ op: 'thaw', mount: f.mountPoint, errno: f.code }, `THAW of ${f.mountPoint} failed: ${f.message}`);
    if (frozen) {
      log.error({ op: 'thaw', reason, ms: now() - t0 }, `thaw failed; retrying in ${THAW_RETRY_MS} ms`);
      retry = setTimeout(() => thawFs('retry'), THAW_RETRY_MS);
      return r;
    }
    o.guard?.disarm();
    o.gate?.open();
    if (o.stateFile) removeState(o.stateFile);
    const flushed = releaseLogs(log);
    log.info({ op: 'thaw', reason, ms: now() - t0, ok: r.ok, heldLines: flushed.lines, droppedLines: flushed.dropped }, r.ok ? 'file systems thawed' : 'thawed after failures');
    return r;
  }

  /** The answer, with the thaw hooks to run once it has been sent. */
  const thenThawHooks = (reply: VssReply) => new AfterReply(reply, runThawHooks);

  async function freeze(): Promise<Handled<VssReply>> {
    const tRequest = now();
    if (frozen) {
      // pitfall F38: never leave an older freeze behind; the applications get their thaw first too.
      thawFs('freeze while frozen');
      await runThawHooks();
    }
    if (frozen) {
      log.error({ op: 'freeze' }, 'an earlier freeze could not be thawed; not freezing again');
      return FAIL;
    }
    watchdogFired = false;
    const plan = o.freezer.check();
    for (const n of plan.notes) log.debug({ op: 'freeze', mount: n.mountPoint }, `not frozen: ${n.reason}`);
    log.info({ op: 'freeze', mounts: plan.freezable, dryRun: o.dryRun ?? false }, o.dryRun ? `dry run: would freeze ${plan.freezable.join(' ') || 'nothing'}` : `freezing ${plan.freezable.length} file systems`);
    // Thaw hooks still running (the watchdog's) finish before the applications are told to freeze.
    await hooksDone;
    const hookFail = await o.hooks?.freeze();
    if (hookFail) {
      log.error({ op: 'freeze', hook: hookFail.hook }, `freeze hook ${hookFail.hook} failed (${hookFail.reason}); not freezing`);
      return FAIL;
    }
    try {
      await o.freezer.prepare?.();
      await o.guard?.arm(plan.freezable);
    } catch (e) {
      log.error({ op: 'freeze' }, `${e instanceof Error ? e.message : String(e)}; not freezing`);
      return thenThawHooks(FAIL);
    }
    if (o.stateFile) {
      if (!o.dryRun && o.onFrozenFs?.(o.stateFile, plan.freezable)) log.warn({ op: 'freeze', path: o.stateFile }, 'state file is on a file system being frozen; not recording state');
      else {
        try {
          writeState(o.stateFile, { pid: process.pid, since: new Date(now()).toISOString(), flavor: o.flavor, mounts: plan.freezable, ...(o.dryRun ? { dryRun: true } : {}) });
        } catch (e) {
          log.warn({ op: 'freeze', path: o.stateFile }, `cannot record state: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
    // From here until the thaw: no disk writes, by this code nor by other work in this process.
    await o.gate?.close();
    holdLogs(log);
    const t0 = now();
    frozen = true;
    const r = o.freezer.freeze(plan.freezable);
    const ms = now() - t0;
    if (!r.ok) {
      // The freezer has already thawed what it froze; thawFs also releases the logs.
      thawFs('freeze failed');
      const f = r.failure!;
      log.error({ op: 'freeze', mount: f.mountPoint, errno: f.code, ms }, `FREEZE of ${f.mountPoint} failed: ${f.message}; everything thawed`);
      return thenThawHooks(FAIL);
    }
    if (o.replyDeadlineMs !== undefined && now() - tRequest > o.replyDeadlineMs) {
      thawFs('freeze too slow');
      log.error({ op: 'freeze', ms: now() - tRequest }, `FREEZE took ${now() - tRequest} ms, past the host's deadline; thawed`);
      return thenThawHooks(FAIL);
    }
    log.info({ op: 'freeze', ms, mounts: r.frozen }, 'file systems frozen');
    watchdog = setTimeout(() => {
      watchdogFired = true;
      thawFs('watchdog');
      log.warn({ op: 'thaw', ms: o.watchdogMs }, `no THAW within ${o.watchdogMs} ms; thawed by the watchdog`);
      void runThawHooks();
    }, o.watchdogMs);
    watchdog.unref();
    return OK;
  }

  /** The applications' thaw hooks, after any run still going; outcome logged, never thrown. */
  function runThawHooks(): Promise<void> {
    const hooks = o.hooks;
    if (!hooks) return hooksDone;
    hooksDone = hooksDone.then(async () => {
      const t0 = now();
      try {
        const failures = await hooks.thaw();
        for (const f of failures) log.warn({ op: 'thaw-hooks', hook: f.hook }, `thaw hook ${f.hook} failed: ${f.reason}`);
        log.info({ op: 'thaw-hooks', ms: now() - t0, failed: failures.length }, failures.length ? `thaw hooks done, ${failures.length} failed` : 'thaw hooks done');
      } catch (e) {
        log.error({ op: 'thaw-hooks', ms: now() - t0 }, `thaw hooks could not run: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
    return hooksDone;
  }

  async function thaw(): Promise<Handled<VssReply>> {
    const r = thawFs('thaw request');
    if (watchdogFired) {
      // The file systems were running again before the host finished its snapshot: not a consistent backup.
      watchdogFired = false;
      log.warn({ op: 'thaw' }, 'THAW after the watchdog had already thawed: reporting failure so the host discards the snapshot');
      return thenThawHooks(FAIL);
    }
    return thenThawHooks(r.ok ? OK : FAIL);
  }

  async function check(): Promise<VssReply> {
    // A backup begins: make sure the guard runs (the first time, start it), so FREEZE does not wait
    // for a process to start. FREEZE arms it again and refuses to freeze if it still cannot run.
    if (o.guard && !frozen) {
      try {
        await o.guard.arm([]);
      } catch (e) {
        log.warn({ op: 'check' }, `${e instanceof Error ? e.message : String(e)}; FREEZE will try again`);
      }
    }
    const c = o.freezer.check();
    // FreeBSD: every mount CHECK will not freeze gets a line (the C daemon failed silently, pitfall F36);
    // Linux: pseudo file systems would drown the log, so those are debug.
    for (const n of c.notes) log[o.flavor === 'freebsd' ? 'info' : 'debug']({ op: 'check', mount: n.mountPoint }, `will not be frozen: ${n.reason}`);
    log.info({ op: 'check', mounts: c.freezable }, `VSS: op=CHECK HOT BACKUP; ${c.freezable.length} file systems can be frozen`);
    return c.ok ? OK : FAIL;
  }

  return {
    async handle(req) {
      switch (req.kind) {
        case 'check':
          return check();
        case 'freeze':
          return freeze();
        case 'thaw':
          return thaw();
        default:
          // pitfall L7: an op we do not implement is not a success.
          log.warn({ op: 'unknown' }, `Illegal op:${req.op}`);
          return FAIL;
      }
    },
    thawNow(reason) {
      if (!frozen) return undefined;
      return thawFs(reason);
    },
    async thawAndResume(reason) {
      if (!frozen) return;
      thawFs(reason);
      await runThawHooks();
    },
    isFrozen: () => frozen,
  };
}
