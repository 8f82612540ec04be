#!/usr/bin/env node
// Start time and idle memory of each daemon against the runtime itself,
// measured side by side: bare `node -e` (spawn until it prints, then idle),
// hv_kvp_daemon, hv_vss_daemon and hvguestd (both services), each on its
// own simulator, from spawn until the simulator sees every service
// registered, then RSS after an idle wait. VSS runs as in production, not
// --dry-run; after the idle reading a CHECK starts its freeze guard (a
// child process, started by the first backup) and the process tree is
// measured again. No FREEZE is ever sent, and HVGUEST_FREEZE_ALLOW names no
// mount point.
// Usage: npm run build && node test/bench/footprint.js [--quick]
//        HVGUEST_BENCH_BUNDLE=DIR to start DIR/NAME.js instead of bin/NAME
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codeCacheState, emit, fmt, median, program, quick, rss, sleep, startBareNode, startDaemon, startSim, treeRss } from './lib.js';

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
for (const d of daemons) {
  mkdirSync(join(stateDir, d.name));
  const s = await startSim('linux');
  const p = await startDaemon(s.host, [...program(d.name).args, ...d.args(s, join(stateDir, d.name))], d.services, NO_FREEZE);
  await p.stop();
  await s.close();
}
const bareMs = [];
const startMs = Object.fromEntries(daemons.map((d) => [d.name, []]));
for (let i = 0; i < RUNS; i++) {
  const b = await startBareNode();
  bareMs.push(b.ms);
  await b.stop();
  for (const d of daemons) {
    const s = await startSim('linux');
    const p = await startDaemon(s.host, [...program(d.name).args, ...d.args(s, join(stateDir, d.name))], d.services, NO_FREEZE);
    startMs[d.name].push(p.ms);
    await p.stop();
    await s.close();
  }
}
rmSync(stateDir, { recursive: true, force: true });
const bareStart = median(bareMs);
const cache = codeCacheState(daemons.map((d) => d.name));
console.log(`start to registered, median of ${RUNS} (ms); build: ${program('hvguestd').build}${cache ? `; V8 code cache: ${Object.entries(cache).map(([n, st]) => `${n} ${st}`).join(', ')}` : ''}`);
console.log(`  bare node -e (spawn to first output)  ${fmt(bareStart).padStart(7)}`);
for (const d of daemons) {
  const ms = median(startMs[d.name]);
  console.log(`  ${d.name.padEnd(36)} ${fmt(ms).padStart(7)}  ${fmt(ms / bareStart, 2)}x`);
  emit({ figure: `start to registered: ${d.name}`, ours: `${fmt(ms)} ms`, base: `${fmt(bareStart)} ms (bare node)`, ratio: ms / bareStart, target: '<= 1.5x', ok: ms / bareStart <= 1.5, note: `${program(d.name).build}${cache ? `, code cache ${cache[d.name]}` : ''}` });
}

// Idle memory: all at once (each on its own simulator), read after the same idle time.
const sims = [];
const procs = [];
const bare = await startBareNode();
for (const d of daemons) {
  const s = await startSim('linux');
  sims.push(s);
  procs.push(await startDaemon(s.host, [...program(d.name).args, ...d.args(s)], d.services, NO_FREEZE));
}
await sleep(IDLE_MS);
const base = rss(bare.pid);
const mem = procs.map((p) => rss(p.pid));
// The first backup starts the VSS freeze guard (a second node process), which then stays: a CHECK
// (which freezes nothing) shows what an idle daemon costs after its first backup.
for (const [i, d] of daemons.entries()) if (d.services.includes('vss')) await sims[i].host.vss('check');
await sleep(quick ? 500 : 2000);
const tree = procs.map((p) => treeRss(p.pid));
await Promise.all([bare.stop(), ...procs.map((p) => p.stop())]);
for (const s of sims) await s.close();
console.log(`idle RSS after ${IDLE_MS / 1000} s (MiB; anonymous part in brackets)`);
console.log(`  bare node                              ${fmt(base.rss).padStart(6)} (${fmt(base.anon)})`);
daemons.forEach((d, i) => {
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
  const t = tree[i];
  if (t.processes > 1) {
    console.log(`  ${`${d.name} + guard, after a CHECK`.padEnd(36)}   ${fmt(t.rss).padStart(6)} (${fmt(t.anon)})  ${t.processes} processes`);
    emit({ figure: `idle RSS after the first backup started the freeze guard: ${d.name}`, ours: `${fmt(t.rss)} MiB (${t.processes} processes; anon ${fmt(t.anon)})`, base: `${fmt(base.rss)} MiB (bare node)`, ratio: t.rss / base.rss, target: `<= bare + ${d.limitMb} MiB`, ok: t.rss - base.rss <= d.limitMb, note: 'Linux: the guard is a second node process' });
  }
});
