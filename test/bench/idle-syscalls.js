#!/usr/bin/env node
// System calls per second of an idle daemon waiting on its device, counted
// by strace -f over a window, after a settling time (V8 runs a few
// memory-reducer GCs in the first seconds of any node process). Baseline in
// the same run: a bare node process waiting on a timer.
// Usage: npm run build && node test/bench/idle-syscalls.js [--quick]   (needs strace)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const quick = process.argv.includes('--quick');
const SETTLE_MS = quick ? 3000 : 30000;
const WINDOW_S = quick ? 2 : 10;
try {
  execFileSync('strace', ['-V'], { stdio: 'ignore' });
} catch {
  console.log('idle-syscalls: strace is not installed; skipped (apt-get install strace)');
  process.exit(0);
}
const { createSimulator } = await import(join(root, 'dist/sim/simulator.js'));
const { SocketServer } = await import(join(root, 'dist/sim/socket-server.js'));

async function count(args, readyRe) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise((r) => child.stdout.on('data', (d) => { out += d; if (readyRe.test(out)) r(); }));
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const file = join(tmpdir(), `hvguest-strace-${child.pid}.txt`);
  await new Promise((r) => {
    const s = spawn('strace', ['-f', '-tt', '-o', file, '-p', String(child.pid)], { stdio: 'ignore' });
    setTimeout(() => s.kill('SIGINT'), WINDOW_S * 1000);
    s.on('exit', r);
  });
  child.kill('SIGKILL');
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
  const calls = lines.filter((l) => secs(l) - t0 > 0.2).length;
  return calls / WINDOW_S;
}

const host = createSimulator({ flavor: 'linux' });
const dir = mkdtempSync(join(tmpdir(), 'hvguest-bench-'));
const server = new SocketServer(dir, host.nodes);
server.start();
const [base, daemon] = await Promise.all([
  count(['-e', "console.log('ready');setTimeout(()=>{},1e9)"], /ready/),
  count([join(root, 'dist/test/fixtures/echo-daemon.js'), '--flavor', 'linux', '--service', 'kvp', '--device', join(dir, 'vmbus/hv_kvp')], /registered/),
]);
await server.stop();
host.close();
rmSync(dir, { recursive: true, force: true });
console.log(`idle system calls per second (after ${SETTLE_MS / 1000} s settling, ${WINDOW_S} s window)`);
console.log(`bare node waiting on a timer (baseline)     ${base.toFixed(1).padStart(7)}`);
console.log(`daemon waiting on its device                ${daemon.toFixed(1).padStart(7)}`);
