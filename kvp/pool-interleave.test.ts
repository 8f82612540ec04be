/**
 * Concurrent writers on one pool file lose nothing: a cloud-init style
 * appender (open for append, flock(LOCK_EX), write, unlock; its own koffi
 * binding), a store in a child process, `hvctl kvp set` processes, and a
 * store in this process, 2,000 writes in all, interleaved. Afterwards every
 * appended record is there exactly once and each store writer's keys hold
 * exactly the values it last wrote (its deletes of records included, which
 * move other writers' records around).
 */
import { spawn } from 'node:child_process';
import * as nfs from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEntries, JOURNAL_HEADER_SIZE } from './pool-journal.js';
import { openPoolStore } from './pool-store.js';

const ROOT = resolve(import.meta.dirname, '..');
const R = 2560;
const APPENDS = 800;
const CHILD_OPS = 700;
const HVCTL_SETS = 20;
const OWN_OPS = 2000 - APPENDS - CHILD_OPS - HVCTL_SETS;

const APPENDER = `
import { createRequire } from 'node:module';
import fs from 'node:fs';
const koffi = createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('koffi');
const lib = koffi.load(process.platform === 'freebsd' ? 'libc.so.7' : 'libc.so.6');
const flock = lib.func('int flock(int fd, int op)');
const [file, n] = process.argv.slice(2);
const cell = new Int32Array(new SharedArrayBuffer(4));
for (let i = 0; i < Number(n); i++) {
  const rec = Buffer.alloc(2560);
  rec.write('CLOUD_INIT|1700000000|event|' + i, 0);
  rec.write(JSON.stringify({ name: 'ev' + i, type: 'start', ts: i }), 512);
  const fd = fs.openSync(file, 'a');            // cloud-init: open(path, "ab")
  if (flock(fd, 2) !== 0) throw new Error('flock failed'); // LOCK_EX, blocking, as cloud-init
  fs.writeSync(fd, rec);
  flock(fd, 8);
  fs.closeSync(fd);
  if (i % 7 === 0) Atomics.wait(cell, 0, 0, 1);
}
console.log('appended ' + n);
`;

/** The store writers' operation mix: mostly new keys, some overwrites, some deletes; returns the final key -> value. */
const OPS_SOURCE = `
function runOps(store, prefix, n, pick) {
  const model = new Map();
  for (let i = 0; i < n; i++) {
    const keys = [...model.keys()];
    if (i % 5 === 4 && keys.length > 0) {
      const k = keys[pick(keys.length)];
      if (!store.delete(1, Buffer.from(k))) throw new Error('lost ' + k);
      model.delete(k);
    } else if (i % 4 === 3 && keys.length > 0) {
      const k = keys[pick(keys.length)];
      const v = prefix + '-overwrite-' + i + '-' + 'y'.repeat(i % 40);
      store.set(1, Buffer.from(k), Buffer.from(v));
      model.set(k, v);
    } else {
      const k = prefix + i;
      const v = 'value-' + i;
      store.set(1, Buffer.from(k), Buffer.from(v));
      model.set(k, v);
    }
  }
  return model;
}
`;

const STORE_CHILD = (dist: string) => `
import { openPoolStore } from ${JSON.stringify(dist)};
${OPS_SOURCE}
const [dir, n] = process.argv.slice(2);
const s = openPoolStore({ dir, flavor: 'linux', lockTimeoutMs: 20000 });
const model = runOps(s, 'child', Number(n), (m) => Math.floor(Math.random() * m));
s.close();
console.log(JSON.stringify([...model]));
`;

const runOps = new Function(`${OPS_SOURCE}; return runOps;`)() as (
  store: { set(p: number, k: Buffer, v: Buffer): void; delete(p: number, k: Buffer): boolean },
  prefix: string,
  n: number,
  pick: (m: number) => number,
) => Map<string, string>;

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => res({ code, out, err }));
  });
}

describe('interleaved writers on one pool', () => {
  let dir: string;
  beforeAll(() => {
    const dist = join(ROOT, 'dist/kvp/pool-store.js');
    // Children run the compiled code: it must be there and not older than the sources.
    for (const f of ['kvp/pool-store', 'kvp/pool-file', 'kvp/pool-change', 'kvp/pool-journal', 'kvp/pool-image', 'kvp/pool-format', 'kvp/pool-fs', 'common/os/locks', 'cli/kvp']) {
      const out = join(ROOT, `dist/${f}.js`);
      if (!nfs.existsSync(out) || nfs.statSync(out).mtimeMs < nfs.statSync(join(ROOT, `${f}.ts`)).mtimeMs) throw new Error(`dist/${f}.js is missing or older than ${f}.ts: run npm run build first`);
    }
    dir = nfs.mkdtempSync(join(tmpdir(), 'hvguest-interleave-'));
    nfs.writeFileSync(join(dir, 'appender.mjs'), APPENDER);
    nfs.writeFileSync(join(dir, 'store-child.mjs'), STORE_CHILD(dist));
  });
  afterAll(() => nfs.rmSync(dir, { recursive: true, force: true }));

  it(`${APPENDS} flock appends + ${CHILD_OPS} child-store ops + ${HVCTL_SETS} hvctl sets + ${OWN_OPS} own ops lose nothing`, { timeout: 120_000 }, async () => {
    const poolDir = join(dir, 'pool');
    const own = openPoolStore({ dir: poolDir, flavor: 'linux', lockTimeoutMs: 20000 });
    const file = join(poolDir, '.kvp_pool_1');
    const appender = run(process.execPath, [join(dir, 'appender.mjs'), file, String(APPENDS)]);
    const child = run(process.execPath, [join(dir, 'store-child.mjs'), poolDir, String(CHILD_OPS)]);
    const hvctl = (async () => {
      for (let i = 0; i < HVCTL_SETS; i++) {
        const r = await run(join(ROOT, 'bin/hvctl'), ['kvp', 'set', '--pool-dir', poolDir, '--pool', 'guest', `hvctl${i}`, `from hvctl ${i}`]);
        expect(r.code, r.err).toBe(0);
      }
    })();
    // Our own writes, yielding between them so the children's output keeps flowing.
    let ownModel = new Map<string, string>();
    const batch = 20;
    for (let done = 0; done < OWN_OPS; done += batch) {
      const m = runOps(own, `own${done}-`, Math.min(batch, OWN_OPS - done), (n) => Math.floor(Math.random() * n));
      ownModel = new Map([...ownModel, ...m]);
      await new Promise((r) => setTimeout(r, 2));
    }
    const [a, c] = await Promise.all([appender, child, hvctl]);
    expect(a.code, a.err).toBe(0);
    expect(c.code, c.err).toBe(0);
    const childModel = new Map<string, string>(JSON.parse(c.out) as [string, string][]);

    const got = own.list(1).map((r) => [r.key.toString(), r.value.toString()] as const);
    own.close();
    const byKey = new Map<string, string[]>();
    for (const [k, v] of got) byKey.set(k, [...(byKey.get(k) ?? []), v]);
    // Every appended record exactly once.
    for (let i = 0; i < APPENDS; i++) {
      const vs = byKey.get(`CLOUD_INIT|1700000000|event|${i}`);
      expect(vs, `appended record ${i}`).toEqual([JSON.stringify({ name: `ev${i}`, type: 'start', ts: i })]);
    }
    // Each store writer's keys exactly as it last wrote them; nothing else.
    const expected = new Map<string, string>([...childModel, ...ownModel]);
    for (let i = 0; i < HVCTL_SETS; i++) expected.set(`hvctl${i}`, `from hvctl ${i}`);
    for (const [k, v] of expected) expect(byKey.get(k), k).toEqual([v]);
    expect(got.length).toBe(APPENDS + expected.size);
    // The file: whole records, nothing left in the journal.
    expect(nfs.statSync(file).size).toBe(got.length * R);
    const j = nfs.readFileSync(join(poolDir, '.hvguest_journal_1'));
    expect(decodeEntries(j.subarray(JOURNAL_HEADER_SIZE)).entries).toEqual([]);
  });
});
