/**
 * Helpers for end-to-end tests that start real processes: spawn with
 * captured output, wait for a line, run a command to completion, and make
 * sure everything started is killed even when a test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';

/**
 * The checkout. This module also runs compiled, as dist/test/lib/procs.js
 * (the KVP benchmark reaches it through guest-ns.ts), one level deeper.
 */
const UP = resolve(import.meta.dirname, '../..');
export const ROOT = basename(UP) === 'dist' ? resolve(UP, '..') : UP;
export const bin = (name: string): string => join(ROOT, 'bin', name);
export const dist = (path: string): string => join(ROOT, 'dist', path);

/** The native freeze guard as `npm run build` compiles it (build/native.sh; absent without a C compiler or off Linux). */
export const NATIVE_GUARD = dist('native/hvguest-freeze-guard');

export interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first stdout line matching `re`; rejects on exit or after `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  exited: Promise<number | null>;
}

const started = new Set<ChildProcess>();

/**
 * util-linux setpriv, which can set the parent-death signal and exec the
 * command (same process id). Without it processes start as they are.
 */
const SETPRIV = process.platform === 'linux' ? ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) : undefined;

/**
 * `cmd args` as spawned by start(): on Linux under `setpriv --pdeathsig
 * KILL`, so a simulator, daemon or client still running when the test
 * worker itself dies (vitest killing a worker that does not finish, ^C, a
 * CI job cancelled) is killed with it instead of keeping a FUSE mount, a
 * namespace or a device open. setpriv execs the command: the process id is
 * the command's own.
 */
export function startArgv(cmd: string, args: string[]): [string, string[]] {
  return SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
}

/** Start a long-running process (killed by killAll, and by the death of this process; see startArgv). */
export function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const [file, argv] = startArgv(cmd, args);
  const child = spawn(file, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    waiters.forEach((w) => w());
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (code) => {
      started.delete(child);
      waiters.forEach((w) => w());
      r(code);
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re, ms = 15000) {
      return new Promise((resolvePromise, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} from ${cmd}; stdout: ${out} stderr: ${err}`)), ms);
        const check = () => {
          const line = out.split('\n').find((l) => re.test(l));
          if (line !== undefined) {
            clearTimeout(t);
            resolvePromise(line);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(t);
            reject(new Error(`${cmd} exited (${child.exitCode ?? child.signalCode}) before ${re}; stdout: ${out} stderr: ${err}`));
          }
        };
        waiters.push(check);
        check();
      });
    },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion (killed after `ms`). */
export function run(cmd: string, args: string[], opts: { ms?: number; input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const t = setTimeout(() => child.kill('SIGKILL'), opts.ms ?? 30000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      clearTimeout(t);
      resolvePromise({ code, stdout, stderr });
    });
    // A child that exits without reading its input must not fail the test with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Stop a process with SIGTERM, then SIGKILL after `ms`. */
export async function stop(p: Proc, ms = 3000): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), ms);
  const code = await p.exited;
  clearTimeout(t);
  return code;
}

/** Kill everything start() launched that is still running, except `keep`. */
export async function killAll(keep: Proc[] = []): Promise<void> {
  const all = [...started].filter((c) => !keep.some((p) => p.child === c));
  for (const c of all) c.kill('SIGKILL');
  await Promise.all(all.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.on('exit', r)))));
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix = 'hvguest-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
