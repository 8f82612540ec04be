/**
 * Item 7: soak. hv_kvp_daemon (real process on `hvsim serve`, Linux
 * flavor) answers a long stream of mixed host requests with realistic
 * pacing compressed in time: bursts (the host walking pool 2 and the
 * guest pool, pushing and deleting External items) separated by idle gaps,
 * over a persistent control connection. Sampled from /proc: RSS and the
 * descriptor count; per request: round-trip latency. 10,000 requests in
 * `npm test`, 1,000,000 with HVGUEST_RELIABILITY=full. Asserted: no
 * descriptor leak, every request answered, and (full run) RSS growth
 * under 5% after warm-up; latency deciles are reported, not asserted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnection, type Socket } from 'node:net';
import { controlPath } from '../../sim/control.js';
import { HV_S_CONT, HV_S_OK } from '../../common/wire/constants.js';
import { stop, type Proc } from '../lib/procs.js';
import { FULL, percentile, report, size, sleep } from './lib.js';
import { rng } from './hostile.js';
import { createRig, procStats, type Rig } from './rig.js';

const TOTAL = size(10_000, 1_000_000);

/** One persistent control connection: a request line out, one answer line back, in order. */
function controlClient(dir: string) {
  const sock: Socket = createConnection(controlPath(dir));
  sock.setEncoding('utf8');
  let buf = '';
  const waiting: Array<(line: string) => void> = [];
  sock.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      waiting.shift()?.(line);
    }
  });
  const ready = new Promise<void>((r, j) => {
    sock.once('connect', () => r());
    sock.once('error', j);
  });
  return {
    ready,
    request(req: unknown): Promise<{ ok: boolean; result?: { status?: number; outcome?: string }; error?: string }> {
      return new Promise((resolve) => {
        waiting.push((line) => resolve(JSON.parse(line)));
        sock.write(JSON.stringify(req) + '\n');
      });
    },
    close: () => sock.end(),
  };
}

describe('soak: hv_kvp_daemon under a long mixed request stream', () => {
  let rig: Rig;
  let d: Proc;

  beforeAll(async () => {
    rig = await createRig('linux');
    d = await rig.kvp();
  }, 60_000);
  afterAll(async () => {
    if (d) await stop(d);
    await rig?.close();
  });

  it(`${TOTAL} requests`, { timeout: 7_200_000 }, async () => {
    const c = controlClient(rig.simDir);
    await c.ready;
    const r = rng(7);
    const pid = d.child.pid!;
    const samples: Array<{ at: number; rssKiB: number; fds: number }> = [];
    const lat: number[] = new Array(TOTAL);
    const mix = new Map<string, number>();
    const opts = { waitForDaemonMs: 5000 };
    let failures = 0;
    const t0 = Date.now();
    let i = 0;
    while (i < TOTAL) {
      // A burst of 50-500 requests, then an idle gap of 0-30 ms (the host's timers, compressed).
      const burst = 50 + r.int(450);
      for (let b = 0; b < burst && i < TOTAL; b++, i++) {
        const x = r.next();
        let req: unknown;
        let kind: string;
        if (x < 0.3) {
          kind = 'enum auto';
          req = { cmd: 'kvp', req: { op: 'enum', pool: 2, index: r.int(11) }, opts };
        } else if (x < 0.5) {
          kind = 'enum guest';
          req = { cmd: 'kvp', req: { op: 'enum', pool: 1, index: r.int(30) }, opts };
        } else if (x < 0.75) {
          kind = 'set external';
          req = { cmd: 'kvp', req: { op: 'set', pool: 0, key: `item${r.int(200)}`, value: `v${i}-${'x'.repeat(r.int(900))}` }, opts };
        } else if (x < 0.9) {
          kind = 'get external';
          req = { cmd: 'kvp', req: { op: 'get', pool: 0, key: `item${r.int(200)}` }, opts };
        } else if (x < 0.97) {
          kind = 'delete external';
          req = { cmd: 'kvp', req: { op: 'delete', pool: 0, key: `item${r.int(200)}` }, opts };
        } else {
          kind = 'set guest';
          req = { cmd: 'kvp', req: { op: 'set', pool: 1, key: `g${r.int(30)}`, value: `guest ${i}` }, opts };
        }
        mix.set(kind, (mix.get(kind) ?? 0) + 1);
        const s = performance.now();
        const res = await c.request(req);
        lat[i] = performance.now() - s;
        const st = res.result?.status;
        if (!res.ok || res.result?.outcome !== 'answered' || (st !== HV_S_OK && st !== HV_S_CONT)) failures++;
        if (i % Math.max(1, Math.floor(TOTAL / 100)) === 0) samples.push({ at: i, ...procStats(pid) });
      }
      const gap = r.int(30);
      if (gap) await sleep(gap);
    }
    samples.push({ at: TOTAL, ...procStats(pid) });
    c.close();
    const wallS = (Date.now() - t0) / 1000;
    expect(failures).toBe(0);
    // Warm-up: the first 10% of the run (JIT, pool reaching its steady size, caches).
    const warm = samples.filter((s) => s.at >= TOTAL * 0.1);
    const base = warm[0]!.rssKiB;
    const maxLast = Math.max(...samples.filter((s) => s.at >= TOTAL * 0.9).map((s) => s.rssKiB));
    const growth = (maxLast - base) / base;
    const fds = new Set(warm.map((s) => s.fds));
    expect([...fds], 'descriptor count changed during the run').toHaveLength(1);
    if (FULL) expect(growth, `RSS ${base} KiB after warm-up, ${maxLast} KiB at the end`).toBeLessThan(0.05);
    const dec = Math.floor(TOTAL / 10);
    const first = lat.slice(0, dec);
    const last = lat.slice(TOTAL - dec);
    const f = (x: number) => x.toFixed(2);
    report({
      item: 7,
      test: 'soak, hv_kvp_daemon (Linux flavor)',
      load: `${TOTAL} requests in ${wallS.toFixed(0)} s (${(TOTAL / wallS).toFixed(0)}/s) in bursts of 50-500 with 0-30 ms gaps: ${[...mix].map(([k, n]) => `${k} ${((100 * n) / TOTAL).toFixed(0)}%`).join(', ')}; 200 External keys with values up to 900 bytes`,
      faults: 'none (endurance)',
      result: `${failures} failed; RSS ${samples[0]!.rssKiB} KiB at start, ${base} KiB after warm-up, ${maxLast} KiB max in the last decile (${(growth * 100).toFixed(1)}%); descriptors ${[...fds].join(',')} throughout; latency first decile p50 ${f(percentile(first, 50))} ms p99 ${f(percentile(first, 99))} ms, last decile p50 ${f(percentile(last, 50))} ms p99 ${f(percentile(last, 99))} ms`,
      figures: { requests: TOTAL, rssStart: samples[0]!.rssKiB, rssWarm: base, rssLastMax: maxLast, growthPct: Number((growth * 100).toFixed(2)), p50First: Number(f(percentile(first, 50))), p99First: Number(f(percentile(first, 99))), p50Last: Number(f(percentile(last, 50))), p99Last: Number(f(percentile(last, 99))) },
    });
  });
});
