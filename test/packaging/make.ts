/**
 * Shared by the packaging tests: which makes exist, running one in the
 * checkout with explicit variables, listing a staged tree (listFiles from
 * test/lib/files.ts), and building a
 * bundle into a temporary directory (never the checkout's bundle/).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT, run, type RunResult } from '../lib/procs.js';

/** True when `cmd` runs (`cmd --version` or `-V`). */
function has(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined;
}

export const HAVE_BMAKE = has('bmake', ['-V', 'MAKE']);
export const HAVE_GMAKE = has('make', ['--version']) && /GNU Make/.test(spawnSync('make', ['--version'], { encoding: 'utf8' }).stdout ?? '');

/** The makes present, with the reason for each missing one. */
export const MAKES = [
  { name: 'bmake', cmd: 'bmake', present: HAVE_BMAKE, missing: 'bmake is not installed (Debian package bmake)' },
  { name: 'GNU make', cmd: 'make', present: HAVE_GMAKE, missing: 'GNU make is not installed' },
] as const;

/** Environment for make runs: nothing the knobs read leaks in from the caller. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['WITHOUT_HYPERV', 'WITH_HYPERV', 'MK_HYPERV', 'MACHINE_ARCH', 'MACHINE', 'LAYOUT', 'PREFIX', 'DESTDIR', 'NODEBIN', 'BUNDLE', 'KOFFI_PLATFORM', 'KOFFI_PLATFORMS', 'MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'NODE_PATH', 'CC', 'CFLAGS', 'LDFLAGS']) delete env[k];
  return { ...env, ...extra };
}

/** `cmd target VAR=value...` in the checkout (no -C: GNU make would print "Entering directory"). */
export function make(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, ms = 120000): Promise<RunResult> {
  return run('sh', ['-c', 'cd "$0" && exec "$@"', ROOT, cmd, ...args], { env: cleanEnv(env), ms });
}

export { listFiles } from '../lib/files.js';

/** Every directory under `dir` (not `dir` itself). */
export function listDirs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

export const mode = (p: string): number => statSync(p).mode & 0o777;

export const packageJson = (): { name: string; version: string; bin: Record<string, string> } => JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

/** Daemons go to sbin/, the administrator's and test tools to bin/ (build/mk/bundle.js USER_TOOLS). */
export const programDir = (name: string): 'bin' | 'sbin' => (name === 'hvctl' || name === 'hvsim' ? 'bin' : 'sbin');
