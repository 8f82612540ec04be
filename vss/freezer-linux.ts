/**
 * Linux freezer: FIFREEZE every selected mount in dependency order, FITHAW
 * in reverse. Any failure thaws everything already frozen before returning.
 * Nothing here logs or touches a disk: the caller logs the result after the thaw.
 */
import { SyscallError } from '../common/os/libc.js';
import { fsFreeze, fsThaw } from '../common/os/fsfreeze.js';
import type { CheckResult, FreezeFailure, FreezeResult, Freezer, ThawResult } from './freezer.js';
import { planFreeze, readMounts, sysfsBacking, type BackingLookup, type FreezePlan, type MountEntry, type SelectOptions } from './mounts-linux.js';

export interface LinuxFreezerOptions extends SelectOptions {
  /** The mount table (default: /proc/self/mountinfo). */
  mounts?: () => MountEntry[];
  backing?: BackingLookup;
  /** The primitives (default: FIFREEZE/FITHAW with the HVGUEST_FREEZE_ALLOW interlock). */
  freezeOne?: (mountPoint: string) => 'frozen' | 'already';
  thawOne?: (mountPoint: string) => 'thawed' | 'not-frozen';
  /** Log what would be frozen and freeze nothing. */
  dryRun?: boolean;
}

const failure = (mountPoint: string, e: unknown): FreezeFailure =>
  e instanceof SyscallError ? { mountPoint, code: e.code, message: e.message } : { mountPoint, code: 'EIO', message: String(e) };

export function createLinuxFreezer(o: LinuxFreezerOptions): Freezer {
  const freezeOne = o.dryRun ? () => 'frozen' as const : (o.freezeOne ?? ((m: string) => fsFreeze(m)));
  const thawOne = o.dryRun ? () => 'thawed' as const : (o.thawOne ?? fsThaw);
  const mounts = o.mounts ?? (() => readMounts());
  const backing = o.backing ?? sysfsBacking();
  let frozen: string[] = [];

  const plan = (): FreezePlan => planFreeze(mounts(), o, backing);

  const thawList = (list: readonly string[]): FreezeFailure[] => {
    const failures: FreezeFailure[] = [];
    for (const m of [...list].reverse()) {
      try {
        thawOne(m);
      } catch (e) {
        failures.push(failure(m, e));
      }
    }
    return failures;
  };

  return {
    check(): CheckResult {
      const p = plan();
      return { ok: true, freezable: p.order.map((m) => m.mountPoint), notes: p.skipped };
    },
    freeze(list): FreezeResult {
      for (const m of list) {
        try {
          freezeOne(m);
          frozen.push(m);
        } catch (e) {
          const thawFailures = thawList(frozen);
          frozen = thawFailures.map((f) => f.mountPoint);
          return { ok: false, frozen: [], failure: failure(m, e), thawFailures };
        }
      }
      return { ok: true, frozen: [...frozen] };
    },
    thaw(): ThawResult {
      let list = frozen;
      if (list.length === 0) {
        try {
          list = plan().order.map((m) => m.mountPoint);
        } catch {
          list = [];
        }
      }
      const failures = thawList(list);
      frozen = frozen.filter((m) => failures.some((f) => f.mountPoint === m));
      return { ok: failures.length === 0, failures };
    },
    frozen: () => [...frozen],
  };
}
