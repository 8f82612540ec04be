/**
 * The seam between the VF flows and FreeBSD: fixed program paths, the one
 * injectable Runner every command goes through (argv arrays, never a shell
 * string built from data), the few file checks the flows need, and small
 * helpers over them. Tests replace VfDeps with recorded outputs.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import type { Logger } from '../common/log.js';
import { succeeded, type RunResult, type Runner } from '../common/os/run.js';

/** Programs and files the flows use (FreeBSD paths). */
export interface VfPaths {
  ifconfig: string;
  sysctl: string;
  dhclient: string;
  kill: string;
  route: string;
  rtsol: string;
  daemon: string;
  sh: string;
  rcSubr: string;
  networkSubr: string;
  /** dhclient pid files tried in order, `%s` = interface (FreeBSD 12+ path first, then the one hyperv_vfup used). */
  dhclientPidfiles: string[];
  /** Per-interface override hooks, `%s` = hn name; the first executable one runs instead of `vf up`. */
  upOverrides: string[];
}

export const VF_PATHS: VfPaths = {
  ifconfig: '/sbin/ifconfig',
  sysctl: '/sbin/sysctl',
  dhclient: '/sbin/dhclient',
  kill: '/bin/kill',
  route: '/sbin/route',
  rtsol: '/sbin/rtsol',
  daemon: '/usr/sbin/daemon',
  sh: '/bin/sh',
  rcSubr: '/etc/rc.subr',
  networkSubr: '/etc/network.subr',
  dhclientPidfiles: ['/var/run/dhclient/dhclient.%s.pid', '/var/run/dhclient.%s.pid'],
  // The base system's documented hook first (third parties already use it), then hvguest's own libexec.
  upOverrides: ['/usr/libexec/hyperv/hyperv_vfup.%s', '/usr/local/libexec/hyperv/hyperv_vfup.%s'],
};

/** The log calls the flows make (a pino Logger fits). */
export type VfLog = Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;

/** Everything the VF flows touch outside the process. */
export interface VfDeps {
  run: Runner;
  log: VfLog;
  paths: VfPaths;
  /** File contents, undefined when unreadable (dhclient pid files). */
  readFile(path: string): string | undefined;
  /** True for an executable regular file (override hooks). */
  isExecutable(path: string): boolean;
  /** Wait; tests pass a recorder so nothing really sleeps. */
  sleep(ms: number): Promise<void>;
  /**
   * argv that re-runs hvctl (absolute node and script paths), for the
   * detached delayed attach: `daemon -f <self...> vf attach IF DELAY`.
   */
  self: string[];
}

/** The real dependencies (the caller provides the runner and logger). */
export function systemDeps(run: Runner, log: VfLog, self: string[]): VfDeps {
  return {
    run,
    log,
    paths: VF_PATHS,
    readFile: (p) => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    },
    isExecutable: (p) => {
      try {
        accessSync(p, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    self,
  };
}

/** Interface names the flows accept: the rc functions eval variable names built from them. */
export const IFNAME_RE = /^[A-Za-z][A-Za-z0-9_.]{0,14}$/;
/** hn(4) names; the unit is the lagg unit hyperv_vfup uses. */
export const HN_RE = /^hn(\d+)$/;

/** Failure of one command the flow cannot continue without. */
export class VfError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'VfError';
  }
}

/** "ifconfig lagg0 create: status 1 (ifconfig: ...)" for messages and logs. */
export function describeFailure(file: string, args: readonly string[], r: RunResult): string {
  const why = r.error ?? (r.timedOut ? 'timed out' : `status ${r.code}`);
  const err = r.stderr.trim().split('\n')[0];
  return `${[file, ...args].join(' ')}: ${why}${err ? ` (${err})` : ''}`;
}

/** Run a command that must succeed; throws VfError otherwise. */
export async function must(d: VfDeps, file: string, args: string[], timeoutMs = 10_000): Promise<RunResult> {
  const r = await d.run(file, args, { timeoutMs });
  if (!succeeded(r)) throw new VfError(describeFailure(file, args, r), 'ECMD');
  return r;
}

/** `sysctl -n NAME`, trimmed; undefined when the OID does not exist (old kernel, device gone). */
export async function sysctlValue(d: VfDeps, name: string): Promise<string | undefined> {
  const r = await d.run(d.paths.sysctl, ['-n', name], { timeoutMs: 5000 });
  return succeeded(r) ? r.stdout.trim() : undefined;
}

/** `ifconfig -a` text; throws when ifconfig itself fails. */
export async function ifconfigAll(d: VfDeps): Promise<string> {
  const r = await must(d, d.paths.ifconfig, ['-a'], 10_000);
  return r.stdout;
}

/** One template path with the interface substituted. */
export const fillPath = (template: string, ifname: string): string => template.replace('%s', ifname);
