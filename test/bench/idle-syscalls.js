#!/usr/bin/env node
// System calls per second of idle daemons waiting on their devices, counted
// by strace -f over a window, after a settling time (V8 runs a few
// memory-reducer GCs in the first seconds of any node process). Baseline in
// the same run: a bare node process waiting on a timer. The daemons are the
// real ones (hv_kvp_daemon, hv_vss_daemon --dry-run, hvguestd), each on its
// own simulator, all traced over the same window.
// Usage: npm run build && node test/bench/idle-syscalls.js [--quick]   (needs strace)
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emit, fmt, program, quick, sleep, startBareNode, startDaemon, startSim } from './lib.js';

const SETTLE_MS = quick ? 3000 : 10000;
const WINDOW_S = quick ? 2 : 10;
try {
  execFileSync('strace', ['-V'], { stdio: 'ignore' });
} catch {
  console.log('idle-syscalls: strace is not installed; skipped (apt-get install strace)');
  emit({ figure: 'idle system calls per second', ours: 'n/a', base: 'n/a', target: '0 per second', note: 'strace not installed' });
  process.exit(0);
}

/** Calls per second of `pid` and its threads over the window. */
async function count(pid) {
  const file = join(tmpdir(), `hvguest-strace-${pid}.txt`);
  await new Promise((r) => {
    const s = spawn('strace', ['-f', '-tt', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
    setTimeout(() => s.kill('SIGINT'), WINDOW_S * 1000);
    s.on('exit', r);
  });
  const text = readFileSync(file, 'utf8');
  rmSync(file, { force: true });
  // Attaching interrupts every thread's blocked call, which then shows as one restarted call per
  // thread at the first instant; only calls that start later than 200 ms after attaching count.
  const secs = (l) => {
    const m = /^\d+\s+(\d+):(\d+):([\d.]+)/.exec(l);
    return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : undefined;
  };
  const lines = text.split('\n').filter((l) => secs(l) !== undefined && !/resumed>|restart_syscall/.test(l));
  const t0 = secs(text.split('\n').find((l) => secs(l) !== undefined) ?? '') ?? 0;
  const late = lines.filter((l) => secs(l) - t0 > 0.2);
  // Wake-ups: calls closer than 50 ms to each other belong to one (a GC, say); a polling timer shows as many.
  let bursts = 0;
  let last = -Infinity;
  for (const l of late) {
    if (secs(l) - last > 0.05) bursts++;
    last = secs(l);
  }
  return { perSecond: late.length / WINDOW_S, bursts, sample: late.slice(0, 3) };
}

const daemons = [
  { name: 'hv_kvp_daemon', services: ['kvp'], args: (s) => ['-n', '--flavor', 'linux', '--device', s.node('vmbus/hv_kvp'), '--pool-dir', join(s.dir, 'pool')] },
  { name: 'hv_vss_daemon', services: ['vss'], args: (s) => ['-n', '--flavor', 'linux', '--device', s.node('vmbus/hv_vss'), '--dry-run', '--state-file', join(s.dir, 'st'), '--hooks-dir', join(s.dir, 'nh')] },
  {
    name: 'hvguestd',
    services: ['kvp', 'vss'],
    args: (s) => ['-n', '--flavor', 'linux', '--kvp-device', s.node('vmbus/hv_kvp'), '--kvp-pool-dir', join(s.dir, 'pool'), '--vss-device', s.node('vmbus/hv_vss'), '--vss-dry-run', '--vss-state-file', join(s.dir, 'st'), '--vss-hooks-dir', join(s.dir, 'nh')],
  },
];
const bare = await startBareNode();
const sims = [];
const procs = [];
for (const d of daemons) {
  const s = await startSim('linux');
  sims.push(s);
  procs.push(await startDaemon(s.host, [...program(d.name).args, ...d.args(s)], d.services));
}
await sleep(SETTLE_MS);
const [base, ...counts] = await Promise.all([count(bare.pid), ...procs.map((p) => count(p.pid))]);
await Promise.all([bare.stop(), ...procs.map((p) => p.stop())]);
for (const s of sims) await s.close();
console.log(`idle system calls per second (after ${SETTLE_MS / 1000} s settling, ${WINDOW_S} s window)`);
console.log(`  bare node waiting on a timer (baseline)  ${fmt(base.perSecond).padStart(7)}  in ${base.bursts} wake-ups`);
daemons.forEach((d, i) => {
  const c = counts[i];
  console.log(`  ${d.name.padEnd(40)} ${fmt(c.perSecond).padStart(7)}  in ${c.bursts} wake-ups${c.sample.length ? `, e.g. ${c.sample[0]}` : ''}`);
  // One wake-up in the window is a one-off (V8's memory reducer runs a late GC now and then); polling is several.
  emit({ figure: `idle system calls per second: ${d.name}`, ours: `${fmt(c.perSecond)} (${c.bursts} wake-ups)`, base: `${fmt(base.perSecond)} (${base.bursts} wake-ups, bare node)`, target: '0 per second (no polling timers)', ok: c.bursts <= 1, note: `strace -f, ${WINDOW_S} s window after ${SETTLE_MS / 1000} s; one wake-up allowed for a late GC` });
});
