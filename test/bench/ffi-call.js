#!/usr/bin/env node
// FFI per-call cost: a koffi call into libc against the same work done by
// Node itself, measured side by side in one run. Prints ns per call and the
// ratio. Usage: node test/bench/ffi-call.js [--quick]
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const koffi = require('koffi');
const quick = process.argv.includes('--quick');
const N = quick ? 100_000 : 2_000_000;
const lib = koffi.load(process.platform === 'freebsd' ? 'libc.so.7' : 'libc.so.6');
const getppid = lib.func('int getppid()');
const labs = lib.func('long labs(long x)');
const pollFn = lib.func('int poll(void *fds, unsigned int nfds, int timeout)');
const empty = Buffer.alloc(8);

function time(label, fn) {
  for (let i = 0; i < N / 10; i++) fn(); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn();
  const ns = Number(process.hrtime.bigint() - t0) / N;
  return { label, ns };
}

const rows = [
  time('baseline: process.ppid (Node reads it through libuv)', () => process.ppid),
  time('baseline: Math.abs in JS (no call out)', () => Math.abs(-5)),
  time('koffi labs() (pure FFI overhead, no syscall)', () => labs(-5)),
  time('koffi getppid()', () => getppid()),
  time('koffi poll(fds, 0, 0) (a real syscall)', () => pollFn(empty, 0, 0)),
];
const base = rows[0].ns;
for (const r of rows) console.log(`${r.label.padEnd(56)} ${r.ns.toFixed(1).padStart(8)} ns/call  ${(r.ns / base).toFixed(2)}x`);
process.stdout.write(`BENCH-ROW ${JSON.stringify({ figure: 'FFI call overhead: koffi labs()', ours: `${rows[2].ns.toFixed(1)} ns`, base: `${base.toFixed(1)} ns (process.ppid)`, ratio: rows[2].ns / base, target: 'report' })}\n`);
const before = process.memoryUsage().rss;
for (let i = 0; i < N; i++) pollFn(empty, 0, 0);
const after = process.memoryUsage().rss;
console.log(`RSS change over ${N} more koffi calls: ${((after - before) / 1024).toFixed(0)} KiB`);
