/**
 * The state file: what this daemon froze and since when, written just
 * before the first freeze and removed after the thaw. A daemon that starts
 * and finds one thaws what it lists (a previous instance died frozen);
 * `hvctl vss status` reads it. It lives in /run or /var/run (memory file
 * systems); the handler refuses to write it on a file system being frozen.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

export interface VssState {
  pid: number;
  /** ISO time the freeze started. */
  since: string;
  flavor: string;
  /** Mount points, freeze order. */
  mounts: string[];
  dryRun?: boolean;
}

/** Write atomically (temporary file + rename). Throws on failure. */
export function writeState(path: string, s: VssState): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s)}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}

/** The recorded state, undefined when there is none; garbage counts as none. */
export function readState(path: string): VssState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as Partial<VssState>;
    if (!Array.isArray(s.mounts) || !s.mounts.every((m) => typeof m === 'string')) return undefined;
    return { pid: Number(s.pid), since: String(s.since), flavor: String(s.flavor), mounts: s.mounts, ...(s.dryRun ? { dryRun: true } : {}) };
  } catch {
    return undefined;
  }
}

export function removeState(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
