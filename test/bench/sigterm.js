#!/usr/bin/env node
// How fast a daemon waiting on its device reacts to SIGTERM: the echo
// daemon (common/serve + FFI device) idles on the simulator's socket node,
// gets SIGTERM, and we time until the process has exited; the baseline, in
// the same run, is a bare node process that exits on SIGTERM.
// Usage: npm run build && node test/bench/sigterm.js [--quick]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const { createSimulator } = await import(join(root, 'dist/sim/simulator.js'));
const { SocketServer } = await import(join(root, 'dist/sim/socket-server.js'));
const RUNS = process.argv.includes('--quick') ? 3 : 10;

async function timeExit(args, readyRe) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise((r) => child.stdout.on('data', (d) => { out += d; if (readyRe.test(out)) r(); }));
  await new Promise((r) => setTimeout(r, 300)); // let it settle into its wait
  const t0 = process.hrtime.bigint();
  const exited = new Promise((r) => child.on('exit', (code, sig) => r({ code, sig })));
  child.kill('SIGTERM');
  const res = await exited;
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, ...res };
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const host = createSimulator({ flavor: 'linux' });
const dir = mkdtempSync(join(tmpdir(), 'hvguest-bench-'));
const server = new SocketServer(dir, host.nodes);
server.start();
const base = [];
const daemon = [];
for (let i = 0; i < RUNS; i++) {
  base.push((await timeExit(['-e', "process.on('SIGTERM',()=>process.exit(0));console.log('ready');setInterval(()=>{},1e6)"], /ready/)).ms);
  const r = await timeExit([join(root, 'dist/test/fixtures/echo-daemon.js'), '--flavor', 'linux', '--service', 'kvp', '--device', join(dir, 'vmbus/hv_kvp')], /registered/);
  if (r.code !== 0) throw new Error(`daemon exited ${r.code ?? r.sig}`);
  daemon.push(r.ms);
}
await server.stop();
host.close();
rmSync(dir, { recursive: true, force: true });
console.log(`SIGTERM to exit, median of ${RUNS} (ms)`);
console.log(`bare node, exits on SIGTERM (baseline)        ${median(base).toFixed(1).padStart(7)}  1.00x`);
console.log(`daemon waiting on its device (abort + close)  ${median(daemon).toFixed(1).padStart(7)}  ${(median(daemon) / median(base)).toFixed(2)}x`);
process.stdout.write(`BENCH-ROW ${JSON.stringify({ figure: 'SIGTERM to exit (echo daemon on its device)', ours: `${median(daemon).toFixed(1)} ms`, base: `${median(base).toFixed(1)} ms (bare node)`, ratio: median(daemon) / median(base), target: 'report', note: `median of ${RUNS}` })}\n`);
