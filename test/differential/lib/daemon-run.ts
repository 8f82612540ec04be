/**
 * One daemon run of a differential test: a fresh `hvsim serve --fuse`
 * (its FUSE node behaves like the Linux kernel's /dev/vmbus device), the
 * daemon in a fresh guest namespace (guest-ns.ts) on that node, a session
 * played raw through the simulator, then everything stopped and the FUSE
 * mount gone, also when a step fails.
 */
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest } from '../../../sim/control.js';
import { cleanStaleMounts, fuseMountsUnder } from '../../../sim/fuse-server.js';
import { bin, start, stop, type Proc } from '../../lib/procs.js';
import { runSession, type StepResult } from './compare.js';
import { prepareGuest, startInGuest } from './guest-ns.js';
import type { Step } from './kvp-session.js';

export const C_VSS_DAEMON = '/usr/sbin/hv_vss_daemon';

/** Start `hvsim serve --fuse --flavor linux` at `dir` and wait for its ready line. */
export async function startFuseSim(dir: string, extra: string[] = []): Promise<Proc> {
  const sim = start(bin('hvsim'), ['serve', '--fuse', '--flavor', 'linux', '--dir', dir, ...extra]);
  await sim.waitFor(/^hvsim: ready/, 20_000);
  return sim;
}

/** Stop the simulator and make sure no FUSE mount stays at `dir`. */
export async function stopFuseSim(sim: Proc | undefined, dir: string): Promise<void> {
  if (sim) await stop(sim, 5000);
  if (existsSync(dir)) cleanStaleMounts(dir);
}

/**
 * Before a work directory is removed: no FUSE mount may be left anywhere
 * under it (a simulator killed by killAll unmounts through its front-end a
 * moment later; rmSync must not walk into a mount that is still there).
 */
export function removeFuseMountsUnder(work: string): void {
  for (const dir of fuseMountsUnder(work)) cleanStaleMounts(dir);
}

/** Wait until the simulator says `service` has a registered daemon; throws with the daemon's stderr otherwise. */
export async function waitRegistered(simDir: string, service: 'kvp' | 'vss', daemon: Proc, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const s = await controlRequest(simDir, { cmd: 'status' }).catch(() => undefined);
    if (s?.ok && (s.result as Record<string, { registered?: boolean }>)[service]?.registered) return;
    if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${service} daemon did not register; stderr: ${daemon.stderr()}`);
}

export interface KvpRun {
  results: StepResult[];
  /** The pool directory as the daemon left it (/var/lib/hyperv in its guest). */
  poolDir: string;
  /** Helper calls, one line each ("hv_get_dns_info ARGS"). */
  calls: string[];
  /** Copies of the files each IP injection handed to hv_set_ifconfig, by call number. */
  setIpDir: string;
  stderr: string;
  /** How often the daemon died and was started again. */
  restarts: number;
}

/**
 * Run `argv` (a KVP daemon started as a distribution would: no paths
 * given) in a fresh guest under `work`, play `steps`, stop. `seedPool`
 * files are copied into /var/lib/hyperv first.
 */
export async function runKvpDaemon(work: string, argv: string[], steps: Step[], seedPool?: string): Promise<KvpRun> {
  mkdirSync(work, { recursive: true });
  const simDir = join(work, 'sim');
  const g = prepareGuest(join(work, 'guest'));
  if (seedPool) cpSync(seedPool, g.poolDir, { recursive: true });
  let sim: Proc | undefined;
  let daemon: Proc | undefined;
  try {
    sim = await startFuseSim(simDir);
    const launch = async () => {
      daemon = startInGuest(join(work, 'guest'), join(simDir, 'vmbus/hv_kvp'), 'vmbus/hv_kvp', argv);
      await waitRegistered(simDir, 'kvp', daemon);
    };
    await launch();
    let stderr = '';
    let restarts = 0;
    // A daemon that died is started again on the same pool directory, as systemd's Restart= would.
    const afterStep = async (outcome: string): Promise<string | undefined> => {
      const d = daemon!;
      const alive = () => d.child.exitCode === null && d.child.signalCode === null;
      // A daemon that closed the device may be dying: give it a moment to be reaped.
      if (alive() && outcome !== 'answered') await Promise.race([d.exited, new Promise((r) => setTimeout(r, 500))]);
      if (alive()) return undefined;
      await d.exited;
      const how = d.child.signalCode ? `signal ${d.child.signalCode}` : `exit ${d.child.exitCode}`;
      stderr += d.stderr();
      restarts++;
      await launch();
      return how;
    };
    const results = await runSession(simDir, steps, afterStep);
    const calls = existsSync(g.callsLog) ? readFileSync(g.callsLog, 'utf8').split('\n').filter(Boolean) : [];
    return { results, poolDir: g.poolDir, calls, setIpDir: g.setIpDir, stderr: stderr + daemon!.stderr(), restarts };
  } finally {
    if (daemon) await stop(daemon, 3000);
    await stopFuseSim(sim, simDir);
  }
}
