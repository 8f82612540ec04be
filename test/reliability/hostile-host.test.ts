/**
 * Item 1, handler level: hostile host messages through exactly the path
 * the daemon loop uses for every message it reads (common/serve/loop.ts
 * answer(): the flavor's decode, the real KVP or VSS handler, encode or the
 * failure answer), both flavors. KVP runs on a real pool store (tmpfs) and
 * the real IP-injection code with a recording runner; VSS on the real
 * handler with an in-memory freezer. After every hostile message a valid
 * request must still work. Counts: 2,000 per daemon and flavor in
 * `npm test`, 1,000,000 with HVGUEST_RELIABILITY=full.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { answer } from '../../common/serve/loop.js';
import { kvpProtocol } from '../../common/serve/kvp.js';
import { vssProtocol, type VssRequest } from '../../common/serve/vss.js';
import {
  FLAVORS,
  HV_ERROR_NOT_SUPPORTED,
  HV_E_FAIL,
  HV_GUID_NOTFOUND,
  HV_INVALIDARG,
  HV_S_CONT,
  HV_S_OK,
  HV_VSS_CHECK,
  KVP_OP,
  VSS_FAIL,
  VSS_OP_HOT_BACKUP,
  VSS_SUCCESS,
  type Flavor,
} from '../../common/wire/constants.js';
import { encodeKvp, getValueTarget } from '../../common/wire/kvp.js';
import { kvpMsgSize, vssMsgSize } from '../../common/wire/structs.js';
import { encodeFreebsdVss, encodeLinuxVss } from '../../common/wire/vss.js';
import { createKvpHandler } from '../../kvp/handlers.js';
import { openPoolStore, type FilePoolStore } from '../../kvp/pool-store.js';
import { setIpInfo } from '../../kvp/set-ip.js';
import type { Runner } from '../../common/os/run.js';
import { createVssHandler } from '../../vss/handler.js';
import type { Freezer } from '../../vss/freezer.js';
import { kvpArbitrary, kvpSeeds, mutate, rng, vssArbitrary, vssSeeds } from './hostile.js';
import { report, size } from './lib.js';

const PER_DAEMON = size(2_000, 1_000_000);
/** Share of the count built from scratch by fast-check; the rest are mutated valid messages. */
const FC_SHARE = 0.1;
const KVP_STATUSES = new Set([HV_S_OK, HV_S_CONT, HV_E_FAIL, HV_ERROR_NOT_SUPPORTED, HV_GUID_NOTFOUND, HV_INVALIDARG]);
const log = pino({ level: 'silent' });
const b = (s: string) => Buffer.from(s, 'utf8');
const GUID = '{4f0c5a2e-1b2c-4d3e-8f90-a1b2c3d4e5f6}';

/** tmpfs when there is one: a million SETs with fdatasync on a disk would measure the disk, not the code. */
const scratchRoot = () => {
  try {
    const d = mkdtempSync('/dev/shm/hvguest-rel-');
    return d;
  } catch {
    return mkdtempSync(join(tmpdir(), 'hvguest-rel-'));
  }
};

interface Tally {
  messages: number;
  byStatus: Map<string, number>;
  probes: number;
  maxMs: number;
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));
const tally = (): Tally => ({ messages: 0, byStatus: new Map(), probes: 0, maxMs: 0 });
const count = (t: Tally, status: number) => t.byStatus.set(status.toString(16), (t.byStatus.get(status.toString(16)) ?? 0) + 1);

describe.each(FLAVORS)('hostile host, handler level, %s', (flavor: Flavor) => {
  let root: string;
  let store: FilePoolStore;
  const helperCalls: string[][] = [];

  beforeAll(() => {
    root = scratchRoot();
    mkdirSync(join(root, 'cfg'));
  });
  afterAll(() => {
    store?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it(`KVP: ${PER_DAEMON} hostile messages, each answered with a protocol status, each followed by a working request`, { timeout: 3_600_000 }, async () => {
    store = openPoolStore({ dir: join(root, 'pool'), flavor, log });
    // Helpers are never run for real here; the recorder makes sure the arguments stayed inside the config dir.
    const run: Runner = async (file, args) => {
      helperCalls.push([file, ...args]);
      return { code: 0, signal: null, stdout: 'ok\n', stderr: '', timedOut: false, truncated: false, ms: 0 };
    };
    const handler = createKvpHandler({
      flavor,
      store,
      intrinsics: { at: async (i) => (i < 10 ? { key: `Intrinsic${i}`, value: `value ${i}` } : undefined) },
      getIpInfo: async (req) =>
        req.adapterId.toUpperCase() === '00:15:5D:00:00:01'
          ? { adapterId: req.adapterId, addrFamily: 1, dhcpEnabled: 0, ipAddr: '10.0.0.5', subNet: '255.255.255.0', gateWay: '10.0.0.1', dnsAddr: '10.0.0.2' }
          : { error: 'no such adapter' },
      setIpInfo: (req) =>
        setIpInfo(req, {
          flavor,
          helperDir: join(root, 'helpers'),
          configDir: join(root, 'cfg'),
          run,
          sys: { interfaces: async () => [{ name: flavor === 'freebsd' ? 'hn0' : 'eth9', mac: '00:15:5d:00:00:01', vmbusId: GUID }] },
        }),
      log,
    });
    const protocol = kvpProtocol(flavor);
    const size = kvpMsgSize(flavor);
    const seeds = kvpSeeds(flavor);
    const valueAt = getValueTarget(flavor).offset;
    const t = tally();
    const probeKey = 'hvguest-reliability-probe';
    let probeValue = '';

    const send = async (raw: Buffer): Promise<Buffer> => {
      const t0 = performance.now();
      const reply = await answer(raw, { protocol, handler, log });
      t.maxMs = Math.max(t.maxMs, performance.now() - t0);
      // Every message gets a whole message back with a status the host knows.
      expect(reply, `no answer to ${raw.subarray(0, 16).toString('hex')}`).toBeDefined();
      expect(reply!.length).toBe(size);
      const status = reply!.readUInt32LE(0);
      expect(KVP_STATUSES.has(status), `status 0x${status.toString(16)}`).toBe(true);
      return reply!;
    };
    const probe = async (i: number) => {
      t.probes++;
      if (i % 16 === 0) {
        probeValue = `v${i}`;
        const r = await send(encodeKvp(flavor, { operation: KVP_OP.SET, pool: 0 }, 'kvp_set', { data: { value_type: 1, key_size: probeKey.length + 1, value_size: probeValue.length + 1, key: b(probeKey), value: b(probeValue) } }));
        expect(r.readUInt32LE(0), `SET after message ${i}`).toBe(HV_S_OK);
      } else {
        const r = await send(encodeKvp(flavor, { operation: KVP_OP.GET, pool: 0 }, 'kvp_get', { data: { value_type: 1, key_size: probeKey.length + 1, value_size: 0, key: b(probeKey), value: Buffer.alloc(0) } }));
        expect(r.readUInt32LE(0), `GET after message ${i}`).toBe(HV_S_OK);
        expect(r.subarray(valueAt, valueAt + probeValue.length + 1).toString('latin1')).toBe(probeValue + '\0');
      }
    };
    const hostile = async (raw: Buffer, i: number) => {
      // Everything here resolves through microtasks: let timers and vitest's own messages run now and then.
      if (i % 2000 === 0) await yieldToLoop();
      const r = await send(raw);
      t.messages++;
      count(t, r.readUInt32LE(0));
      await probe(i);
    };

    const nMut = Math.round(PER_DAEMON * (1 - FC_SHARE));
    const r = rng(0x5eed ^ (flavor === 'linux' ? 1 : 2));
    for (let i = 0; i < nMut; i++) await hostile(mutate(r.pick(seeds), r, { allowResize: true }), i);
    let j = nMut;
    await fc.assert(
      fc.asyncProperty(kvpArbitrary(flavor), async (m) => {
        await hostile(m, j++);
      }),
      { numRuns: PER_DAEMON - nMut, seed: 42 },
    );
    expect(t.messages).toBe(PER_DAEMON);
    // Nothing IP injection wrote or ran left its directory.
    for (const c of helperCalls) for (const a of c.slice(1)) expect(a.startsWith(join(root, 'cfg') + '/'), a).toBe(true);
    expect(readdirSync(root).sort()).toEqual(['cfg', 'pool']);
    const info = [0, 1, 3, 4].map((p) => store.info(p));
    report({
      item: 1,
      test: `hostile host, handler level, KVP ${flavor}`,
      load: `${t.messages} hostile messages (${nMut} mutated valid, ${PER_DAEMON - nMut} fast-check) + ${t.probes} valid probes`,
      faults: 'mutated header/op/pool/sizes, unterminated and invalid UTF-8 fields, shell metacharacters, wrong lengths',
      result: `0 crashes, 0 unanswered; statuses ${[...t.byStatus].map(([s, n]) => `${s}:${n}`).join(' ')}; every probe answered correctly; slowest answer ${t.maxMs.toFixed(1)} ms; pool records ${info.map((x) => x.records).join('/')}; ${helperCalls.length} helper runs, all with paths inside the config dir`,
      figures: { messages: t.messages, probes: t.probes, maxMs: Number(t.maxMs.toFixed(2)) },
    });
  });

  it(`VSS: ${PER_DAEMON} hostile messages, each answered (or, FreeBSD, failed) with a status, never left frozen`, { timeout: 3_600_000 }, async () => {
    const frozen: string[] = [];
    let freezes = 0;
    const freezer: Freezer = {
      check: () => ({ ok: true, freezable: ['/mnt/a', '/mnt/b'], notes: [] }),
      freeze: (list) => {
        freezes++;
        frozen.push(...list);
        return { ok: true, frozen: [...list] };
      },
      thaw: () => {
        frozen.length = 0;
        return { ok: true, failures: [] };
      },
      frozen: () => [...frozen],
    };
    const vss = createVssHandler({ flavor, freezer, log, watchdogMs: 600_000, stateFile: join(root, 'vss.state') });
    const protocol = vssProtocol(flavor);
    const handler = (req: VssRequest) => vss.handle(req);
    const msgSize = vssMsgSize(flavor);
    const seeds = vssSeeds(flavor);
    const t = tally();
    const check = flavor === 'linux' ? encodeLinuxVss({ operation: VSS_OP_HOT_BACKUP }) : encodeFreebsdVss({ opt: HV_VSS_CHECK, msgid: 7n });
    const statusOf = (reply: Buffer) => (flavor === 'linux' ? reply.readUInt32LE(0) : reply.readUInt32LE(4));
    const okSet = flavor === 'linux' ? new Set([HV_S_OK, HV_E_FAIL]) : new Set([VSS_SUCCESS, VSS_FAIL]);

    const send = async (raw: Buffer): Promise<Buffer | undefined> => {
      const t0 = performance.now();
      const reply = await answer(raw, { protocol, handler, log });
      t.maxMs = Math.max(t.maxMs, performance.now() - t0);
      if (reply === undefined) {
        // Only FreeBSD, and only for what IOCHVVSSREAD can never return (a wrong-size buffer): there is no message to answer.
        expect(flavor === 'freebsd' && raw.length !== msgSize, `unanswered ${raw.toString('hex')}`).toBe(true);
        return undefined;
      }
      expect(reply.length).toBe(msgSize);
      expect(okSet.has(statusOf(reply)), `status ${statusOf(reply)}`).toBe(true);
      return reply;
    };
    const hostile = async (raw: Buffer) => {
      if (t.messages % 2000 === 0) await yieldToLoop();
      const r = await send(raw);
      t.messages++;
      count(t, r ? statusOf(r) : -1);
      // A FREEZE among the hostile messages leaves the file systems frozen until a THAW; the valid CHECK must still work.
      t.probes++;
      const p = await send(check);
      expect(statusOf(p!)).toBe(flavor === 'linux' ? HV_S_OK : VSS_SUCCESS);
      expect(vss.isFrozen()).toBe(frozen.length > 0);
    };
    const nMut = Math.round(PER_DAEMON * (1 - FC_SHARE));
    const r = rng(0x7a55 ^ (flavor === 'linux' ? 1 : 2));
    const hot = flavor === 'linux' ? [0, 1, 4, 8] : [0, 4, 8, 16];
    for (let i = 0; i < nMut; i++) await hostile(mutate(r.pick(seeds), r, { allowResize: true, hot }));
    await fc.assert(fc.asyncProperty(vssArbitrary(flavor), hostile), { numRuns: PER_DAEMON - nMut, seed: 43 });
    await vss.thawAndResume('end of test');
    expect(frozen).toEqual([]);
    expect(freezes).toBeGreaterThan(0); // the stream really froze
    report({
      item: 1,
      test: `hostile host, handler level, VSS ${flavor}`,
      load: `${t.messages} hostile messages + ${t.probes} valid CHECKs`,
      faults: 'mutated op/status/msgid bytes, random whole messages, wrong lengths',
      result: `0 crashes, 0 hangs; statuses ${[...t.byStatus].map(([s, n]) => `${s}:${n}`).join(' ')}; ${freezes} freezes, all thawed; slowest answer ${t.maxMs.toFixed(1)} ms`,
      figures: { messages: t.messages, freezes, maxMs: Number(t.maxMs.toFixed(2)) },
    });
  });
});
