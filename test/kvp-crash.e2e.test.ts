/**
 * kill -9 of hv_kvp_daemon during a stream of host SETs, 200 times: every
 * SET the host saw succeed is in the pool file afterwards with the value
 * last acknowledged, and the file parses (whole 2560-byte records, each
 * key and value NUL-terminated). Real processes: the simulator, the daemon,
 * and this test as the host (through hvsim's control socket).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, killAll, start, stop, tempDir, type Proc } from './lib/procs.js';
import { controlRequest } from '../sim/control.js';
import { HV_S_OK } from '../common/wire/constants.js';
import { openPoolStore } from '../kvp/pool-store.js';

const TRIALS = 200;

/** Parse a pool file strictly: whole records, NUL-terminated fields. */
function parsePool(buf: Buffer): Map<string, string> {
  expect(buf.length % 2560).toBe(0);
  const out = new Map<string, string>();
  for (let off = 0; off < buf.length; off += 2560) {
    const k = buf.subarray(off, off + 512);
    const v = buf.subarray(off + 512, off + 2560);
    expect(k.indexOf(0)).toBeGreaterThan(0);
    expect(v.indexOf(0)).toBeGreaterThanOrEqual(0);
    out.set(k.subarray(0, k.indexOf(0)).toString(), v.subarray(0, v.indexOf(0)).toString());
  }
  return out;
}

describe('hv_kvp_daemon: kill -9 during SETs loses no acknowledged write', () => {
  let tmp: { dir: string; remove: () => void };
  let sim: Proc;

  beforeAll(async () => {
    tmp = tempDir();
    sim = start(bin('hvsim'), ['serve', '--flavor', 'linux', '--dir', join(tmp.dir, 'sim'), '--kvp-timeout', '2']);
    await sim.waitFor(/^hvsim: ready/);
  });
  afterAll(async () => {
    await killAll([sim]);
    await stop(sim);
    tmp.remove();
  });

  it(`${TRIALS} trials`, { timeout: 240_000 }, async () => {
    const simDir = join(tmp.dir, 'sim');
    const poolDir = join(tmp.dir, 'pool');
    const acked = new Map<string, string>();
    let sets = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const d = start(bin('hv_kvp_daemon'), ['-n', '--flavor', 'linux', '--device', join(simDir, 'vmbus/hv_kvp'), '--pool-dir', poolDir, '--helper-dir', tmp.dir]);
      let killed = false;
      // Kill at a random moment of the stream (0-40 ms after the first SET was answered).
      const killAfter = Math.random() * 40;
      let first = true;
      for (let i = 0; !killed && i < 400; i++) {
        // Keys repeat across trials, so overwrites of existing records are exercised too.
        const key = `k${(trial * 7 + i) % 60}`;
        const value = `t${trial}-i${i}`;
        const r = await controlRequest(simDir, { cmd: 'kvp', req: { op: 'set', pool: 0, key, value }, opts: { waitForDaemonMs: 5000 } });
        const res = r.ok ? (r.result as { status?: number; outcome?: string }) : undefined;
        if (res?.status === HV_S_OK && res.outcome === 'answered') {
          acked.set(key, value);
          sets++;
        }
        if (first) {
          // The clock starts once the daemon is up and answering.
          first = false;
          setTimeout(() => {
            killed = true;
            d.child.kill('SIGKILL');
          }, killAfter);
        }
      }
      await d.exited;
      // Recovery as the next daemon does it at start (replay of an interrupted change from the
      // journal); then the raw file must be whole records holding every acknowledged SET.
      openPoolStore({ dir: poolDir, flavor: 'linux' }).close();
      const pool = parsePool(readFileSync(join(poolDir, '.kvp_pool_0')));
      for (const [k, v] of acked) {
        // A later unacknowledged SET of the same key may have landed: it must then be a value sent after the acked one.
        const got = pool.get(k);
        expect(got, `trial ${trial}: key ${k} lost`).toBeDefined();
        if (got !== v) {
          const [gt, gi] = got!.slice(1).split('-i').map(Number);
          const [vt, vi] = v.slice(1).split('-i').map(Number);
          expect(gt! > vt! || (gt === vt && gi! > vi!), `trial ${trial}: ${k} went back from ${v} to ${got}`).toBe(true);
          acked.set(k, got!);
        }
      }
    }
    expect(sets).toBeGreaterThan(TRIALS); // the stream really ran
  });
});
