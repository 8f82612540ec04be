#!/usr/bin/env node
// VSS FREEZE + THAW of 8 loop-mounted ext4 file systems, host request to
// reply, against util-linux fsfreeze looping over the same mounts (freeze
// all in order, thaw all in reverse, timed inside the namespace so process
// start-up of nsenter is not counted; each fsfreeze is its own process, as
// a script would run it). Each side gets one untimed round first: the
// first freeze after mkfs waits for ext4's background initialisation. Root only: the images live in a private mount
// namespace (vss/testing/loop-namespace.ts), the daemons join it, and
// HVGUEST_FREEZE_ALLOW names exactly those mounts; nothing else can freeze.
// Usage: npm run build && node test/bench/vss-freeze.js [--quick]
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { dist, emit, fmt, median, program, quick, startDaemon, startSim } from './lib.js';

const { createLoopNamespace, realFreezeUnavailable } = await dist('vss/testing/loop-namespace.js');
const MOUNTS = 8;
const RUNS = quick ? 3 : 15;
const why = realFreezeUnavailable();
if (why) {
  console.log(`vss-freeze: skipped (${why})`);
  emit({ figure: `VSS freeze + thaw, ${MOUNTS} loop mounts`, ours: 'n/a', base: 'n/a', target: '<= 1.2x fsfreeze + 10 ms', note: `skipped: ${why}` });
  process.exit(0);
}

const sim = await startSim('linux');
const ns = await createLoopNamespace(sim.dir, Array.from({ length: MOUNTS }, (_, i) => ({ name: `m${i}`, sizeMb: 16 })));
const mounts = Object.values(ns.mounts);
const allow = { HVGUEST_FREEZE_ALLOW: mounts.join(':') };
try {
  /** fsfreeze loop inside the namespace: one line of nanoseconds per run. */
  const fsfreezeMs = async () => {
    const list = mounts.map((m) => `'${m}'`).join(' ');
    const rev = [...mounts].reverse().map((m) => `'${m}'`).join(' ');
    const script = `set -e; for r in $(seq ${RUNS + 1}); do t0=$(date +%s%N); for m in ${list}; do fsfreeze -f "$m"; done; for m in ${rev}; do fsfreeze -u "$m"; done; t1=$(date +%s%N); echo $((t1 - t0)); done`;
    const [cmd, ...rest] = [...ns.enter(), 'sh', '-c', script];
    const out = await new Promise((resolve, reject) => {
      const c = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
      let o = '';
      let e = '';
      c.stdout.on('data', (d) => (o += d));
      c.stderr.on('data', (d) => (e += d));
      c.on('exit', (code) => (code === 0 ? resolve(o) : reject(new Error(`fsfreeze loop failed (${code}): ${e}`))));
    });
    return out.trim().split('\n').slice(1).map((l) => Number(l) / 1e6); // the first round is the warm-up
  };

  /** FREEZE + THAW through `name` (in the namespace) as the host sees them. */
  const daemonMs = async (name, args, services) => {
    const d = await startDaemon(sim.host, [...program(name).args, ...args], services, allow, ns.enter());
    try {
      const ms = [];
      const checkMs = [];
      for (let i = -1; i < RUNS; i++) {
        // Each backup starts with CHECK, as the host's does (the first one also starts the freeze guard).
        const c0 = process.hrtime.bigint();
        const check = await sim.host.vss('check');
        if (check.status !== 0) throw new Error(`${name}: CHECK failed (${check.statusName})`);
        if (i >= 0) checkMs.push(Number(process.hrtime.bigint() - c0) / 1e6);
        const t0 = process.hrtime.bigint();
        const f = await sim.host.vss('freeze');
        const t = await sim.host.vss('thaw');
        if (i >= 0) ms.push(Number(process.hrtime.bigint() - t0) / 1e6); // round -1 is the warm-up
        if (f.status !== 0 || t.status !== 0) throw new Error(`${name}: freeze ${f.statusName}, thaw ${t.statusName}: ${d.stderr()}`);
      }
      // Proof that the freezes were real: the daemon's log names all the mounts as frozen.
      const frozen = d.stderr().split('\n').filter((l) => l.includes('"file systems frozen"'));
      if (frozen.length !== RUNS + 1 || !frozen.every((l) => mounts.every((m) => l.includes(`"${m}"`)))) throw new Error(`${name}: did not freeze all ${MOUNTS} mounts ${RUNS} times: ${frozen[0] ?? d.stderr()}`);
      if (process.env.BENCH_DEBUG) console.log(ms, frozen[0]);
      return { ms, checkMs };
    } finally {
      await d.stop();
    }
  };
  const common = (p) => [...mounts.flatMap((m) => [`--${p}include`, m]), `--${p}state-file`, join(sim.dir, 'vss.state'), `--${p}hooks-dir`, join(sim.dir, 'no-hooks')];
  const base = median(await fsfreezeMs());
  const rows = [
    ['hv_vss_daemon', await daemonMs('hv_vss_daemon', ['-n', '--flavor', 'linux', '--device', sim.node('vmbus/hv_vss'), ...common('')], ['vss'])],
    [
      'hvguestd',
      await daemonMs('hvguestd', ['-n', '--flavor', 'linux', '--kvp-device', sim.node('vmbus/hv_kvp'), '--kvp-pool-dir', join(sim.dir, 'pool'), '--vss-device', sim.node('vmbus/hv_vss'), ...common('vss-')], ['kvp', 'vss']),
    ],
  ];
  console.log(`FREEZE + THAW of ${MOUNTS} loop-mounted ext4 file systems, median of ${RUNS} (ms)`);
  console.log(`  fsfreeze -f each, then -u each (baseline)  ${fmt(base, 2).padStart(8)}`);
  for (const [name, r] of rows) {
    const ms = median(r.ms);
    const check = median(r.checkMs);
    const limit = 1.2 * base + 10;
    console.log(`  ${name.padEnd(42)} ${fmt(ms, 2).padStart(8)}  ${fmt(ms / base, 2)}x  (limit ${fmt(limit, 1)})`);
    emit({ figure: `VSS freeze + thaw, ${MOUNTS} loop mounts: ${name}`, ours: `${fmt(ms, 2)} ms`, base: `${fmt(base, 2)} ms (fsfreeze loop)`, ratio: ms / base, target: '<= 1.2x fsfreeze + 10 ms', ok: ms <= limit, note: `median of ${RUNS}; each after a CHECK` });
    console.log(`  ${`${name}: the CHECK before each`.padEnd(42)} ${fmt(check, 2).padStart(8)}`);
    emit({ figure: `VSS CHECK before each freeze: ${name}`, ours: `${fmt(check, 2)} ms`, base: '', target: 'report', note: `median of ${RUNS}` });
  }
} finally {
  await ns.close();
  await sim.close();
}
