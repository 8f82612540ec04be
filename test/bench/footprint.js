#!/usr/bin/env node
// Start time and idle memory of each daemon against the runtime itself,
// measured side by side: bare `node -e` (spawn until it prints, then idle),
// hv_kvp_daemon, hv_vss_daemon and hvguestd (both services), each on its
// own simulator, from spawn until the simulator sees every service
// registered, then RSS after an idle wait. VSS runs as in production, not
// --dry-run; after the idle reading a CHECK starts its freeze guard (a
// child process, started by the first backup) and the process tree is
// measured again, once with each guard program (HVGUEST_GUARD=native, the
// C guard, when it is built; HVGUEST_GUARD=node). No FREEZE is ever sent, and HVGUEST_FREEZE_ALLOW names no
// mount point.
// Usage: npm run build && node test/bench/footprint.js [--quick]
//        HVGUEST_BENCH_BUNDLE=DIR to start DIR/NAME.js instead of bin/NAME
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codeCacheState, emit, fmt, median, nativeGuardPath, privateMiB, processTree, program, quick, rss, sleep, startBareNode, startDaemon, startSim, treeRss } from './lib.js';

/** Freezing is never asked for here; should anything try, nothing may be frozen. */
const NO_FREEZE = { HVGUEST_FREEZE_ALLOW: '/nonexistent/hvguest-bench-freezes-nothing' };

const RUNS = quick ? 2 : 7;
const IDLE_MS = quick ? 2000 : 10000;

const daemons = [
  {
    name: 'hv_kvp_daemon',
    services: ['kvp'],
    args: (s, dir = s.dir) => ['-n', '--flavor', 'linux', '--device', s.node('vmbus/hv_kvp'), '--pool-dir', join(dir, 'pool')],
    limitMb: 8,
  },
  {
    name: 'hv_vss_daemon',
    services: ['vss'],
    args: (s, dir = s.dir) => ['-n', '--flavor', 'linux', '--device', s.node('vmbus/hv_vss'), '--state-file', join(dir, 'vss.state'), '--hooks-dir', join(dir, 'no-hooks')],
    limitMb: 8,
  },
  {
    name: 'hvguestd',
    services: ['kvp', 'vss'],
    args: (s, dir = s.dir) => [
      '-n', '--flavor', 'linux',
      '--kvp-device', s.node('vmbus/hv_kvp'), '--kvp-pool-dir', join(dir, 'pool'),
      '--vss-device', s.node('vmbus/hv_vss'), '--vss-state-file', join(dir, 'vss.state'), '--vss-hooks-dir', join(dir, 'no-hooks'),
    ],
    limitMb: 12,
  },
];

// Start times: one process at a time, alternating with the baseline so load changes hit both.
// Each daemon keeps its state (pool files, VSS state file) in one directory over the runs, as
// across boots: the untimed first start creates the pool files (and syncs the directory), which
// only the very first boot of a guest does.
const stateDir = mkdtempSync(join(tmpdir(), 'hvguest-bench-start-'));
process.on('exit', () => rmSync(stateDir, { recursive: true, force: true }));
/** Start `d` on a fresh simulator with its state in stateDir; the milliseconds to registration. The simulator goes whatever happens. */
async function timedStart(d) {
  const s = await startSim('linux');
  try {
    const p = await startDaemon(s.host, [...program(d.name).args, ...d.args(s, join(stateDir, d.name))], d.services, NO_FREEZE);
    await p.stop();
    return p.ms;
  } finally {
    await s.close();
  }
}
for (const d of daemons) {
  mkdirSync(join(stateDir, d.name));
  await timedStart(d);
}
const bareMs = [];
const startMs = Object.fromEntries(daemons.map((d) => [d.name, []]));
for (let i = 0; i < RUNS; i++) {
  const b = await startBareNode();
  bareMs.push(b.ms);
  await b.stop();
  for (const d of daemons) startMs[d.name].push(await timedStart(d));
}
const bareStart = median(bareMs);
const cache = codeCacheState(daemons.map((d) => d.name));
console.log(`start to registered, median of ${RUNS} (ms); build: ${program('hvguestd').build}${cache ? `; V8 code cache: ${Object.entries(cache).map(([n, st]) => `${n} ${st}`).join(', ')}` : ''}`);
console.log(`  bare node -e (spawn to first output)  ${fmt(bareStart).padStart(7)}`);
for (const d of daemons) {
  const ms = median(startMs[d.name]);
  console.log(`  ${d.name.padEnd(36)} ${fmt(ms).padStart(7)}  ${fmt(ms / bareStart, 2)}x`);
  emit({ figure: `start to registered: ${d.name}`, ours: `${fmt(ms)} ms`, base: `${fmt(bareStart)} ms (bare node)`, ratio: ms / bareStart, target: '<= 1.5x', ok: ms / bareStart <= 1.5, note: `${program(d.name).build}${cache ? `, code cache ${cache[d.name]}` : ''}` });
}

// Idle memory: all at once (each on its own simulator), read after the same idle time. The VSS
// daemons run once per guard program (HVGUEST_GUARD), so the rows after the first backup show
// both; in rounds, because each simulator in this process holds one libuv threadpool thread (its
// poll) and there are four: the bare node and the three daemons, then the two VSS daemons again
// with the node guard.
const guardKinds = existsSync(nativeGuardPath()) ? ['native', 'node'] : ['node'];
const rounds = guardKinds.map((guard, i) => daemons.filter((d) => i === 0 || d.services.includes('vss')).map((d) => ({ d, guard: d.services.includes('vss') ? guard : undefined })));

/** One round: start, idle, read, CHECK, read the process trees and the guards, stop. */
async function measure(runs) {
  const sims = [];
  const procs = [];
  try {
    const bare = await startBareNode();
    procs.push(bare);
    for (const r of runs) {
      const s = await startSim('linux');
      sims.push(s);
      procs.push(await startDaemon(s.host, [...program(r.d.name).args, ...r.d.args(s)], r.d.services, { ...NO_FREEZE, ...(r.guard ? { HVGUEST_GUARD: r.guard } : {}) }));
    }
    await sleep(IDLE_MS);
    const base = rss(bare.pid);
    const daemonsOnly = procs.slice(1);
    const mem = daemonsOnly.map((p) => rss(p.pid));
    // The first backup starts the VSS freeze guard (a child process), which then stays: a CHECK
    // (which freezes nothing) shows what an idle daemon costs after its first backup.
    for (const [i, r] of runs.entries()) if (r.guard) await sims[i].host.vss('check');
    await sleep(quick ? 500 : 2000);
    const tree = daemonsOnly.map((p) => treeRss(p.pid));
    const mem2 = daemonsOnly.map((p) => rss(p.pid));
    // The guard child of each daemon: which program it is (from its command line) and its own RSS.
    const guards = daemonsOnly.map((p) => {
      const [pid] = processTree(p.pid).slice(1);
      if (pid === undefined) return undefined;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return { kind: /hvguest-freeze-guard/.test(cmdline) ? 'native' : /guard-main/.test(cmdline) ? 'node' : `unknown (${cmdline})`, ...rss(pid), priv: privateMiB(pid) };
    });
    return { base, mem, mem2, tree, guards };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    for (const s of sims) await s.close();
  }
}

const results = [];
for (const runs of rounds) results.push({ runs, ...(await measure(runs)) });
const { base, mem } = results[0];
console.log(`idle RSS after ${IDLE_MS / 1000} s (MiB; anonymous part in brackets)`);
console.log(`  bare node                              ${fmt(base.rss).padStart(6)} (${fmt(base.anon)})`);
// The daemon alone, before any backup (the same whichever guard it will start): from the first round.
results[0].runs.forEach(({ d }, i) => {
  const m = mem[i];
  const extra = m.rss - base.rss;
  console.log(`  ${d.name.padEnd(36)}   ${fmt(m.rss).padStart(6)} (${fmt(m.anon)})  +${fmt(extra)}`);
  emit({
    figure: d.services.length > 1 ? 'idle RSS, KVP + VSS in one process (hvguestd)' : `idle RSS: ${d.name}`,
    ours: `${fmt(m.rss)} MiB (+${fmt(extra)}; anon ${fmt(m.anon)})`,
    base: `${fmt(base.rss)} MiB (bare node; anon ${fmt(base.anon)})`,
    ratio: m.rss / base.rss,
    target: `<= bare + ${d.limitMb} MiB`,
    ok: extra <= d.limitMb,
    note: 'the daemon process alone',
  });
});
for (const res of results) {
  res.runs.forEach(({ d, guard }, i) => {
    if (!guard) return;
    const t = res.tree[i];
    const g = res.guards[i];
    if (!g) throw new Error(`${d.name} (HVGUEST_GUARD=${guard}) started no freeze guard on CHECK`);
    if (g.kind !== guard) throw new Error(`${d.name}: HVGUEST_GUARD=${guard}, but the guard that ran is ${g.kind}`);
    // RSS summed over the two processes counts twice the pages they share (the C library the
    // memory-locked native guard maps whole, the node binary for the node guard). What the guard
    // adds is its private memory (smaps_rollup Private_*): the verdict takes the daemon's RSS plus
    // that; the plain sum is shown too.
    const total = res.mem2[i].rss + g.priv;
    console.log(`  ${`${d.name} + ${g.kind} guard, after a CHECK`.padEnd(36)}   ${fmt(total).padStart(6)}  +${fmt(total - res.base.rss)} (daemon ${fmt(res.mem2[i].rss)} + the guard's private ${fmt(g.priv, 2)}; RSS sum ${fmt(t.rss)}, guard RSS ${fmt(g.rss)})`);
    emit({
      figure: `idle RSS after the first backup started the freeze guard (${g.kind} guard): ${d.name}`,
      ours: `${fmt(total)} MiB (+${fmt(total - res.base.rss)}: daemon ${fmt(res.mem2[i].rss)} + the guard's private ${fmt(g.priv, 2)}; RSS of both summed ${fmt(t.rss)}, the guard's RSS ${fmt(g.rss)})`,
      base: `${fmt(res.base.rss)} MiB (bare node)`,
      ratio: total / res.base.rss,
      target: `<= bare + ${d.limitMb} MiB`,
      ok: total - res.base.rss <= d.limitMb,
      note: g.kind === 'native' ? 'Linux: the guard is the C program hvguest-freeze-guard (memory-locked)' : 'Linux: the guard is a second node process (HVGUEST_GUARD=node, or no C compiler)',
    });
  });
}
