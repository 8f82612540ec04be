/**
 * The end-to-end rig of the reliability suite: one `hvsim serve` of a
 * flavor in a fresh temporary directory, the real daemons started on its
 * device nodes (KVP with its own pool and helper directories; VSS always
 * --dry-run, FreeBSD with an empty --mount-table, so nothing real can be
 * frozen), host requests through the simulator's control socket, and
 * /proc figures of a daemon process. Built on test/lib/procs.ts.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest, type ControlRequest } from '../../sim/control.js';
import type { Flavor } from '../../common/wire/constants.js';
import { bin, killAll, start, stop, tempDir, type Proc } from '../lib/procs.js';
import { sleep } from './lib.js';

export const KVP_NODE: Record<Flavor, string> = { freebsd: 'hv_kvp_dev', linux: 'vmbus/hv_kvp' };
export const VSS_NODE: Record<Flavor, string> = { freebsd: 'hv_fsvss_dev', linux: 'vmbus/hv_vss' };

export interface HostAnswer {
  outcome?: string;
  status?: number;
  value?: string;
  key?: string;
  reply?: string;
  ms?: number;
}

export interface Rig {
  flavor: Flavor;
  dir: string;
  simDir: string;
  poolDir: string;
  helperDir: string;
  sim: Proc;
  /** Start hv_kvp_daemon -n on the simulator (extra arguments appended); waits until it registered. */
  kvp(extra?: string[], opts?: { wait?: boolean; env?: NodeJS.ProcessEnv; wrap?: string[] }): Promise<Proc>;
  /** Start hv_vss_daemon -n --dry-run on the simulator; waits until it registered. */
  vss(extra?: string[]): Promise<Proc>;
  /** One host request through the control socket; throws when the simulator reports an error. */
  host(req: ControlRequest): Promise<HostAnswer>;
  registered(service: 'kvp' | 'vss', want?: boolean, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** Start a simulator of `flavor` (extra `hvsim serve` arguments appended) in a new temporary directory. */
export async function createRig(flavor: Flavor, simArgs: string[] = []): Promise<Rig> {
  const tmp = tempDir(`hvguest-rel-${flavor}-`);
  const simDir = join(tmp.dir, 'sim');
  const poolDir = join(tmp.dir, 'pool');
  const helperDir = join(tmp.dir, 'helpers');
  mkdirSync(helperDir);
  writeFileSync(join(tmp.dir, 'mount.txt'), '');
  const sim = start(bin('hvsim'), ['serve', '--flavor', flavor, '--dir', simDir, ...simArgs]);
  await sim.waitFor(/^hvsim: ready/);
  const host = async (req: ControlRequest): Promise<HostAnswer> => {
    const r = await controlRequest(simDir, req);
    if (!r.ok) throw new Error(`hvsim: ${r.error}`);
    return r.result as HostAnswer;
  };
  const registered = async (service: 'kvp' | 'vss', want = true, ms = 15_000) => {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      const s = (await host({ cmd: 'status' })) as unknown as Record<string, { registered: boolean }>;
      if (s[service]!.registered === want) return;
      await sleep(10);
    }
    throw new Error(`${service} daemon did not ${want ? 'register' : 'go away'} within ${ms} ms`);
  };
  const rig: Rig = {
    flavor,
    dir: tmp.dir,
    simDir,
    poolDir,
    helperDir,
    sim,
    host,
    registered,
    async kvp(extra = [], opts = {}) {
      const [cmd, ...pre] = [...(opts.wrap ?? []), bin('hv_kvp_daemon')];
      const d = start(
        cmd!,
        [...pre, '-n', '--flavor', flavor, '--device', join(simDir, KVP_NODE[flavor]), '--pool-dir', poolDir, '--helper-dir', helperDir, '--config-dir', join(tmp.dir, 'cfg'), ...extra],
        opts.env ?? {},
      );
      if (opts.wait ?? true) await Promise.race([registered('kvp'), d.exited.then((c) => Promise.reject(new Error(`hv_kvp_daemon exited ${c}: ${d.stderr()}`)))]);
      return d;
    },
    async vss(extra = []) {
      const table = flavor === 'freebsd' ? ['--mount-table', join(tmp.dir, 'mount.txt')] : [];
      const d = start(bin('hv_vss_daemon'), ['-n', '--dry-run', ...table, '--flavor', flavor, '--device', join(simDir, VSS_NODE[flavor]), '--state-file', join(tmp.dir, 'vss.state'), '--hooks-dir', join(tmp.dir, 'no-hooks'), ...extra]);
      await Promise.race([registered('vss'), d.exited.then((c) => Promise.reject(new Error(`hv_vss_daemon exited ${c}: ${d.stderr()}`)))]);
      return d;
    },
    async close() {
      await killAll([sim]);
      await stop(sim);
      tmp.remove();
    },
  };
  return rig;
}

/** Resident set size (KiB) and open descriptor count of a live process, from /proc. */
export function procStats(pid: number): { rssKiB: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  return { rssKiB: rss, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** A KVP SET through the host; resolves with the host's status. */
export const hostSet = (rig: Rig, pool: number, key: string, value: string) => rig.host({ cmd: 'kvp', req: { op: 'set', pool, key, value }, opts: { waitForDaemonMs: 5000 } });
export const hostGet = (rig: Rig, pool: number, key: string) => rig.host({ cmd: 'kvp', req: { op: 'get', pool, key }, opts: { waitForDaemonMs: 5000 } });
