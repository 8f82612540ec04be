#!/usr/bin/env node
// Host request -> daemon -> reply round trip through the simulator, per
// message: the echo daemon (test/fixtures/echo-daemon.ts) as a separate
// process on the socket transport, against the same loop in process on the
// in-memory device (the baseline, measured in the same run).
// Usage: npm run build && node test/bench/roundtrip.js [--quick]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';

const root = resolve(import.meta.dirname, '../..');
const d = (p) => import(join(root, 'dist', p));
const { createSimulator } = await d('sim/simulator.js');
const { SocketServer } = await d('sim/socket-server.js');
const { createMemoryDevice } = await d('sim/memory-device.js');
const { serve } = await d('common/serve/loop.js');
const { kvpProtocol } = await d('common/serve/kvp.js');

const N = process.argv.includes('--quick') ? 200 : 3000;
const quantile = (xs, q) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function measure(host) {
  for (let i = 0; i < 50; i++) await host.kvp({ op: 'get', pool: 1, key: 'warm' });
  const times = [];
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    const r = await host.kvp({ op: 'get', pool: 1, key: `k${i}` });
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
    if (r.status !== 0) throw new Error(`request ${i}: status ${r.status}`);
  }
  return { median: quantile(times, 0.5), p99: quantile(times, 0.99) };
}

const rows = [];
for (const flavor of ['freebsd', 'linux']) {
  const nodeName = flavor === 'freebsd' ? 'hv_kvp_dev' : 'vmbus/hv_kvp';
  // Baseline: the same loop and handler in process, on the in-memory device.
  {
    const host = createSimulator({ flavor });
    const node = host.nodes.find((n) => n.name === nodeName);
    const ac = new AbortController();
    const handler = (m) => ({ status: 0, variant: 'kvp_get', fields: { data: { value_type: 1, key_size: 1, value_size: 2, key: Buffer.alloc(0), value: Buffer.from('x') } } });
    const loop = serve({ device: () => createMemoryDevice(node, { flavor, service: 'kvp' }), protocol: kvpProtocol(flavor), handler, log: pino({ level: 'silent' }), signal: ac.signal });
    rows.push({ flavor, how: 'in process, memory device (baseline)', ...(await measure(host)) });
    ac.abort();
    await loop;
    host.close();
  }
  {
    const host = createSimulator({ flavor });
    const dir = mkdtempSync(join(tmpdir(), 'hvguest-bench-'));
    const server = new SocketServer(dir, host.nodes);
    server.start();
    const child = spawn(process.execPath, [join(root, 'dist/test/fixtures/echo-daemon.js'), '--flavor', flavor, '--service', 'kvp', '--device', join(dir, nodeName)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => child.stdout.once('data', r));
    rows.push({ flavor, how: 'daemon process, FFI device over the socket', ...(await measure(host)) });
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
    await server.stop();
    host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`KVP GET round trip, ${N} requests each (microseconds)`);
for (const r of rows) {
  const base = rows.find((x) => x.flavor === r.flavor && x.how.includes('baseline'));
  console.log(`${r.flavor.padEnd(8)} ${r.how.padEnd(45)} median ${r.median.toFixed(1).padStart(7)}  p99 ${r.p99.toFixed(1).padStart(7)}  ${(r.median / base.median).toFixed(2)}x`);
}
for (const r of rows.filter((x) => !x.how.includes('baseline'))) {
  const base = rows.find((x) => x.flavor === r.flavor && x.how.includes('baseline'));
  process.stdout.write(`BENCH-ROW ${JSON.stringify({ figure: `KVP GET round trip, daemon process over the socket, ${r.flavor}`, ours: `${r.median.toFixed(1)} us; p99 ${r.p99.toFixed(1)}`, base: `${base.median.toFixed(1)} us (same loop in process)`, ratio: r.median / base.median, target: 'report', note: `${N} requests, echo handler` })}\n`);
}
