/**
 * Running outside programs the safe way, for every part of hvguest that
 * needs one (helper scripts, ip/netstat/ifconfig): an argv array, never a
 * shell string; an absolute program path; a small fixed environment; a
 * timeout; bounded output; only stdio (no inherited descriptors). Host
 * strings passed here are data in argv, never code.
 */
import { childProcess } from './child.js';
import { isAbsolute } from 'node:path';

export interface RunOptions {
  /** Kill the program after this long (ms); default 5000. */
  timeoutMs?: number;
  /** Stop collecting (and kill) after this many bytes of stdout or stderr; default 64 KiB. */
  maxOutput?: number;
  /** Extra environment on top of the fixed PATH/LANG; nothing else is inherited. */
  env?: Record<string, string>;
  /** Written to the program's stdin, then closed. */
  input?: string;
}

export interface RunResult {
  /** Exit status; null when killed. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Output went over maxOutput (the program was killed). */
  truncated: boolean;
  /** The program could not be started (ENOENT, EACCES...). */
  error?: string;
  ms: number;
}

/** Runs one program; injectable so callers can be tested with recorded outputs. */
export type Runner = (file: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

const FIXED_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin', LANG: 'C', LC_ALL: 'C' };

/** The real runner: spawn without a shell, bounded in time and output. */
export const runProgram: Runner = (file, args, opts = {}) => {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const max = opts.maxOutput ?? 64 * 1024;
  const t0 = Date.now();
  return new Promise((resolve) => {
    if (!isAbsolute(file)) {
      resolve({ code: null, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false, error: `not an absolute path: ${file}`, ms: 0 });
      return;
    }
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let truncated = false;
    let error: string | undefined;
    const child = childProcess().spawn(file, [...args], {
      shell: false,
      env: { ...FIXED_ENV, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout kills the helper's children too
    });
    const killAll = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killAll();
    }, timeoutMs);
    const collect = (which: 'out' | 'err') => (d: Buffer) => {
      if (which === 'out') stdout += d.toString();
      else stderr += d.toString();
      if (stdout.length > max || stderr.length > max) {
        truncated = true;
        stdout = stdout.slice(0, max);
        stderr = stderr.slice(0, max);
        killAll();
      }
    };
    child.stdout.on('data', collect('out'));
    child.stderr.on('data', collect('err'));
    child.stdin.on('error', () => {});
    child.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, truncated, ...(error ? { error } : {}), ms: Date.now() - t0 });
    });
    child.stdin.end(opts.input ?? '');
  });
};

/** True when the program ran to completion with status 0 in time. */
export const succeeded = (r: RunResult): boolean => r.code === 0 && !r.timedOut && !r.truncated && !r.error;
