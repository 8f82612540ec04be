/**
 * Application hooks: the executables in a hooks directory run with the
 * single argument `freeze` (name order) before the file systems freeze and
 * `thaw` (reverse name order) after they thaw; argv only, fixed
 * environment, a timeout each. A failing freeze hook aborts the freeze and
 * the hooks already run get `thaw`. On FreeBSD this matches the kernel's
 * application-device order (hv_appvss_dev is told before the fs daemon on
 * FREEZE and after it on THAW, spec/vss.md 3.4).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Runner } from '../common/os/run.js';

export interface HookFailure {
  hook: string;
  reason: string;
}

/** Executable regular files in `dir`, by name; hidden and backup files (~, .bak, .rpmsave...) are ignored. */
export function listHooks(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => !n.startsWith('.') && !/(~|\.bak|\.orig|\.rpmsave|\.rpmnew|\.dpkg-[a-z]+)$/.test(n))
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => {
      try {
        const st = statSync(p);
        return st.isFile() && (st.mode & 0o111) !== 0;
      } catch {
        return false;
      }
    });
}

export interface Hooks {
  /** Run freeze hooks; on failure the ones already run are thawed and the failure returned. */
  freeze(): Promise<HookFailure | undefined>;
  /** Run thaw hooks for everything (reverse order); returns the failures. */
  thaw(): Promise<HookFailure[]>;
}

export function createHooks(o: { dir: string; run: Runner; timeoutMs: number }): Hooks {
  const one = async (hook: string, phase: 'freeze' | 'thaw'): Promise<HookFailure | undefined> => {
    const r = await o.run(hook, [phase], { timeoutMs: o.timeoutMs });
    if (r.error) return { hook, reason: r.error };
    if (r.timedOut) return { hook, reason: `timed out after ${o.timeoutMs} ms` };
    if (r.code !== 0) return { hook, reason: r.signal ? `killed by ${r.signal}` : `exit status ${r.code}: ${r.stderr.trim().slice(0, 200)}` };
    return undefined;
  };
  const thawList = async (hooks: string[]) => {
    const out: HookFailure[] = [];
    for (const h of [...hooks].reverse()) {
      const f = await one(h, 'thaw');
      if (f) out.push(f);
    }
    return out;
  };
  return {
    async freeze() {
      const done: string[] = [];
      for (const h of listHooks(o.dir)) {
        const f = await one(h, 'freeze');
        if (f) {
          await thawList(done);
          return f;
        }
        done.push(h);
      }
      return undefined;
    },
    thaw: () => thawList(listHooks(o.dir)),
  };
}
