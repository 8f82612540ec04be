/**
 * Daemon side of the SIGKILL guard: choose which guard program runs, start
 * it, tell it what is about to be frozen, tell it when everything is
 * thawed. Every update waits for the guard's acknowledgement, so the guard
 * knows a mount before the first FIFREEZE on it.
 *
 * Two programs speak the same protocol (see guard-main.ts): the native one,
 * vss/guard/hvguest-freeze-guard.c (a few MiB, most of it shared libc
 * pages), preferred when its binary is there, and the node one,
 * guard-main.ts (a second node runtime, about 45 MiB). HVGUEST_GUARD=native
 * or node forces one. A native guard that cannot be started falls back to
 * the node guard (never to none), and the daemon keeps using the node guard
 * from then on.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childProcess } from '../common/os/child.js';

export interface GuardLike {
  /** Make sure a guard runs (start one if needed) and holds `list`; resolves once it acknowledged. */
  arm(list: readonly string[]): Promise<void>;
  /** Tell the guard nothing is frozen (best effort, does not wait). */
  disarm(): void;
  /** Stop the guard (it thaws its list, which is empty after disarm); a later arm() starts a new one. */
  close(): void;
  pid(): number | undefined;
}

export type GuardKind = 'native' | 'node';

/** One program that can be the guard. */
export interface GuardProgram {
  kind: GuardKind;
  command: string;
  args: string[];
}

/** The environment variable that forces a guard: native, node, or auto (the default). */
export const GUARD_ENV = 'HVGUEST_GUARD';
export const NATIVE_GUARD_NAME = 'hvguest-freeze-guard';

/** Path of the compiled node guard next to this module. */
export const guardScript = (): string => fileURLToPath(new URL('./guard-main.js', import.meta.url));

/**
 * Path of the native guard: dist/native/ when this module is dist/vss/guard.js
 * (a checkout, the npm package), else beside this file (an installed
 * bundle, whose directory `make install` puts the binary in).
 */
export function nativeGuardPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(here) === 'vss' ? join(here, '..', 'native', NATIVE_GUARD_NAME) : join(here, NATIVE_GUARD_NAME);
}

export const nativeGuard = (path = nativeGuardPath()): GuardProgram => ({ kind: 'native', command: path, args: [] });
export const nodeGuard = (script = guardScript()): GuardProgram => ({ kind: 'node', command: process.execPath, args: [script] });

/** Why the guard choice is impossible; `usage` when HVGUEST_GUARD has a bad value. */
export class GuardChoiceError extends Error {
  constructor(
    message: string,
    readonly usage: boolean,
  ) {
    super(message);
    this.name = 'GuardChoiceError';
  }
}

/**
 * The guard programs to try, in order, as HVGUEST_GUARD says: unset, empty
 * or auto: the native guard when its binary exists, then the node guard;
 * native or node: that one only. Throws GuardChoiceError on another value or
 * when a program it needs is missing (the node guard is always needed
 * unless native is forced).
 */
export function chooseGuards(
  env: NodeJS.ProcessEnv = process.env,
  paths: { native: string; script: string } = { native: nativeGuardPath(), script: guardScript() },
  exists: (p: string) => boolean = existsSync,
): GuardProgram[] {
  const want = env[GUARD_ENV] ?? '';
  if (!['', 'auto', 'native', 'node'].includes(want)) throw new GuardChoiceError(`${GUARD_ENV}=${want}: expected native, node or auto`, true);
  if (want === 'native') {
    if (!exists(paths.native)) throw new GuardChoiceError(`cannot start the freeze guard: ${paths.native} is missing (${GUARD_ENV}=native)`, false);
    return [nativeGuard(paths.native)];
  }
  if (!exists(paths.script)) throw new GuardChoiceError(`cannot start the freeze guard: ${paths.script} is missing`, false);
  return want === '' || want === 'auto' ? [...(exists(paths.native) ? [nativeGuard(paths.native)] : []), nodeGuard(paths.script)] : [nodeGuard(paths.script)];
}

export interface GuardOpts {
  /** Programs to try in order (default: chooseGuards()). One that fails to start is dropped for good unless it is the last. */
  programs?: GuardProgram[];
  /** How long a start ("ready") and each acknowledgement may take; default 5000 ms. */
  timeoutMs?: number;
  /** A guard said ready (logged by the service: which kind runs, with its pid). */
  onStarted?: (kind: GuardKind, pid: number) => void;
  /** A guard could not be started and the next program is tried. */
  onFallback?: (failed: GuardKind, reason: string, next: GuardKind) => void;
}

const guardName = (p: GuardProgram) => `the ${p.kind} freeze guard`;

export function createGuard(opts: GuardOpts = {}): GuardLike {
  const programs = [...(opts.programs ?? chooseGuards())];
  if (programs.length === 0) throw new Error('createGuard: no guard program to run');
  const timeoutMs = opts.timeoutMs ?? 5000;
  let child: ChildProcess | undefined;
  let out = '';
  let waiters: { want: string; resolve: () => void; reject?: (e: Error) => void }[] = [];

  const onData = (d: Buffer) => {
    out += d.toString();
    let i: number;
    while ((i = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      const w = waiters.shift();
      if (!w) continue;
      if (line === w.want) w.resolve();
      else w.reject?.(new Error(`the freeze guard answered ${line}`));
    }
  };

  const waitLine = (want: string, what: string) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the freeze guard did not ${what} within ${timeoutMs} ms`)), timeoutMs);
      waiters.push({
        want,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });

  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  /** Start `p` and wait for its "ready"; on failure nothing of it is left running. */
  async function start(p: GuardProgram): Promise<ChildProcess> {
    out = '';
    waiters = [];
    const c = childProcess().spawn(p.command, p.args, { stdio: ['pipe', 'pipe', 'ignore'], cwd: '/' });
    child = c;
    c.stdout!.on('data', onData);
    c.stdin!.on('error', () => {});
    const gone = (why: string) => {
      // A guard that close() let go may exit after its successor started: its end is not the successor's.
      if (child !== c) return;
      child = undefined;
      for (const w of waiters.splice(0)) w.reject?.(new Error(`${guardName(p)} ${why}`));
    };
    // An exec failure (missing file, wrong architecture, no permission) comes as 'error', often without 'exit'.
    c.on('error', (e) => gone(`could not be started (${p.command}: ${e.message})`));
    c.on('exit', (code, sig) => gone(`exited (${sig ?? `status ${code}`})`));
    try {
      await waitLine('ready', 'start');
    } catch (e) {
      if (child === c) child = undefined;
      c.stdout!.off('data', onData);
      // Nothing was handed to it yet: its list is empty, so killing it thaws nothing that matters.
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      throw new Error(`${guardName(p)} (${p.command}) did not start: ${e instanceof Error ? e.message : String(e)}`);
    }
    opts.onStarted?.(p.kind, c.pid!);
    return c;
  }

  async function ensure(): Promise<ChildProcess> {
    if (alive()) return child!;
    for (;;) {
      const p = programs[0]!;
      try {
        return await start(p);
      } catch (e) {
        if (programs.length === 1) throw e;
        programs.shift();
        opts.onFallback?.(p.kind, e instanceof Error ? e.message : String(e), programs[0]!.kind);
      }
    }
  }

  const send = (c: ChildProcess, list: readonly string[]) => c.stdin!.write(`${JSON.stringify({ thaw: list })}\n`);

  return {
    async arm(list) {
      const c = await ensure();
      const ack = waitLine('ok', 'acknowledge the mount list');
      send(c, list);
      await ack;
    },
    disarm() {
      if (alive()) {
        waiters.push({ want: 'ok', resolve: () => {} });
        send(child!, []);
      }
    },
    close() {
      if (!alive()) return;
      // Let it go (it thaws its list, empty after disarm, and exits); the next arm() starts a new one.
      const c = child!;
      c.stdout!.off('data', onData);
      c.stdin!.end();
      child = undefined;
      waiters = [];
      out = '';
    },
    pid: () => (alive() ? child!.pid : undefined),
  };
}
