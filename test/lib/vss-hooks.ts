/** Helpers for end-to-end tests of the VSS application hooks: write a hook, wait for the daemon to log its outcome. */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Proc } from './procs.js';

/** An executable /bin/sh hook `name` in `dir` (created if missing); returns its path. */
export function writeHook(dir: string, name: string, body: string): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/** Wait until the daemon's log (stderr) matches `re`: thaw hooks run after the THAW reply, so their outcome is logged later. */
export async function logged(d: Proc, re: RegExp, ms = 15000): Promise<void> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 25))) if (re.test(d.stderr())) return;
  throw new Error(`timed out waiting for ${re} in the daemon's log: ${d.stderr()}`);
}
