/**
 * Item 1, end to end: hostile messages delivered by `hvsim serve` (raw
 * requests: the exact bytes the driver would hand the daemon) to the real
 * hv_kvp_daemon and hv_vss_daemon processes, both flavors, each followed
 * by a valid host request that must still work. The VSS daemon runs
 * --dry-run (FreeBSD also with an empty --mount-table) and under the
 * suite-wide HVGUEST_FREEZE_ALLOW that names no real mount: nothing real
 * can be frozen. Counts: 150 per daemon and flavor in `npm test`, 20,000
 * with HVGUEST_RELIABILITY=full.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FLAVORS, HV_ERROR_NOT_SUPPORTED, HV_E_FAIL, HV_GUID_NOTFOUND, HV_INVALIDARG, HV_S_CONT, HV_S_OK, type Flavor } from '../../common/wire/constants.js';
import { kvpMsgSize } from '../../common/wire/structs.js';
import { stop, type Proc } from '../lib/procs.js';
import { kvpArbitrary, kvpSeeds, mutate, rng, vssArbitrary, vssSeeds } from './hostile.js';
import { percentile, report, size } from './lib.js';
import { createRig, hostGet, hostSet, procStats, type HostAnswer, type Rig } from './rig.js';

const PER_DAEMON = size(150, 20_000);
const KVP_STATUSES = new Set([HV_S_OK, HV_S_CONT, HV_E_FAIL, HV_ERROR_NOT_SUPPORTED, HV_GUID_NOTFOUND, HV_INVALIDARG]);

describe.each(FLAVORS)('hostile host end to end, %s', (flavor: Flavor) => {
  let rig: Rig;
  let kvpd: Proc;
  let vssd: Proc;

  beforeAll(async () => {
    rig = await createRig(flavor, ['--kvp-timeout', '5', '--vss-timeout', '5', '--vss-freeze-timeout', '5']);
    kvpd = await rig.kvp();
    vssd = await rig.vss();
  }, 60_000);
  afterAll(async () => {
    await rig?.close();
  });

  /** The hostile stream: mostly mutated valid messages, a tenth fast-check-built ones. */
  function stream(seeds: Buffer[], arb: fc.Arbitrary<Buffer>, seed: number, hot?: number[]): Buffer[] {
    const r = rng(seed);
    const nFc = Math.round(PER_DAEMON / 10);
    const out: Buffer[] = [];
    for (let i = 0; i < PER_DAEMON - nFc; i++) out.push(mutate(r.pick(seeds), r, { allowResize: true, ...(hot ? { hot } : {}) }));
    return out.concat(fc.sample(arb, { numRuns: nFc, seed }));
  }

  it(`KVP: ${PER_DAEMON} hostile raw messages, each answered, each followed by a working GET`, { timeout: 3_600_000 }, async () => {
    const before = procStats(kvpd.child.pid!);
    expect((await hostSet(rig, 0, 'probe', 'alive')).status).toBe(HV_S_OK);
    const statuses = new Map<string, number>();
    const outcomes = new Map<string, number>();
    const ms: number[] = [];
    const size = kvpMsgSize(flavor);
    let i = 0;
    for (const m of stream(kvpSeeds(flavor), kvpArbitrary(flavor), 1000 + (flavor === 'linux' ? 1 : 0))) {
      const t0 = Date.now();
      const r: HostAnswer = await rig.host({ cmd: 'raw', service: 'kvp', hex: m.toString('hex'), opts: { waitForDaemonMs: 5000 } });
      ms.push(Date.now() - t0);
      outcomes.set(r.outcome!, (outcomes.get(r.outcome!) ?? 0) + 1);
      if (flavor === 'linux' && m.length !== size && r.outcome === 'daemon-closed') {
        // A message of another length than the kernel ever queues: read(2) fails, the daemon
        // reopens and re-registers, and the kernel fails the request to the host.
        expect(r.status).toBe(HV_E_FAIL);
      } else {
        // Every message is answered: a whole message back, with a status the host knows.
        expect(r.outcome, `message ${i}: ${m.subarray(0, 16).toString('hex')}… (${m.length} bytes)`).toBe('answered');
        const reply = Buffer.from(r.reply ?? '', 'hex');
        expect(reply.length).toBe(size);
        const st = reply.readUInt32LE(0);
        expect(KVP_STATUSES.has(st), `status 0x${st.toString(16)}`).toBe(true);
        statuses.set(st.toString(16), (statuses.get(st.toString(16)) ?? 0) + 1);
      }
      // A valid request right after each hostile one still works.
      const g = await hostGet(rig, 0, 'probe');
      expect(g.status, `GET after message ${i}`).toBe(HV_S_OK);
      expect(g.value).toBe('alive');
      i++;
    }
    expect(kvpd.child.exitCode).toBe(null);
    const after = procStats(kvpd.child.pid!);
    report({
      item: 1,
      test: `hostile host, end to end, KVP ${flavor}`,
      load: `${i} hostile raw messages through hvsim + ${i} valid GETs`,
      faults: 'mutated valid messages (90%) and fast-check messages (10%): op/pool/sizes, unterminated and invalid UTF-8 fields, metacharacters',
      result: `0 crashes, 0 hangs (0 kernel timeouts); outcomes ${[...outcomes].map(([s, n]) => `${s}:${n}`).join(' ')} (daemon-closed: Linux, a message of another size than the kernel queues, read fails, the daemon re-registers); statuses ${[...statuses].map(([s, n]) => `${s}:${n}`).join(' ')}; round trip p50 ${percentile(ms, 50)} ms p99 ${percentile(ms, 99)} ms; RSS ${before.rssKiB}→${after.rssKiB} KiB, fds ${before.fds}→${after.fds}`,
      figures: { messages: i, p50: percentile(ms, 50), p99: percentile(ms, 99), rssBefore: before.rssKiB, rssAfter: after.rssKiB },
    });
  });

  it(`VSS: ${PER_DAEMON} hostile raw messages, each answered, each followed by a working CHECK (dry run)`, { timeout: 3_600_000 }, async () => {
    const statuses = new Map<string, number>();
    const outcomes = new Map<string, number>();
    const reopenMs: number[] = [];
    const hot = flavor === 'linux' ? [0, 1, 4, 8] : [0, 4, 8, 16];
    let i = 0;
    for (const m of stream(vssSeeds(flavor), vssArbitrary(flavor), 2000 + (flavor === 'linux' ? 1 : 0), hot)) {
      // FreeBSD: IOCHVVSSREAD hands a queued request over with status VSS_SUCCESS, always (status 1 means "queue empty").
      // (The simulator pads a short buffer with zeros, so a short one keeps whatever status bytes it has: clear those too.)
      if (flavor === 'freebsd') m.fill(0, Math.min(4, m.length), Math.min(8, m.length));
      const r: HostAnswer = await rig.host({ cmd: 'raw', service: 'vss', hex: m.toString('hex'), opts: { waitForDaemonMs: 5000 } });
      outcomes.set(r.outcome!, (outcomes.get(r.outcome!) ?? 0) + 1);
      if (flavor === 'linux' && m.length !== 12 && r.outcome === 'daemon-closed') {
        expect(r.status).toBe(HV_E_FAIL);
        // Linux hv_vss fails requests at once while no daemon is registered: wait for the re-registration.
        const t0 = Date.now();
        await rig.registered('vss');
        reopenMs.push(Date.now() - t0);
      } else {
        expect(r.outcome, `message ${i}: ${m.toString('hex').slice(0, 48)} (${m.length} bytes)`).toBe('answered');
        expect([HV_S_OK, HV_E_FAIL]).toContain(r.status);
        statuses.set(String(r.status), (statuses.get(String(r.status)) ?? 0) + 1);
      }
      const c = await rig.host({ cmd: 'vss', op: 'check', opts: { waitForDaemonMs: 5000 } });
      expect(c.status, `CHECK after message ${i}: ${JSON.stringify(c)}`).toBe(HV_S_OK);
      i++;
    }
    expect(vssd.child.exitCode).toBe(null);
    // A THAW to finish whatever FREEZE the stream left; then the daemon stops cleanly.
    await rig.host({ cmd: 'vss', op: 'thaw', opts: { waitForDaemonMs: 5000 } });
    expect(await stop(vssd)).toBe(0);
    report({
      item: 1,
      test: `hostile host, end to end, VSS ${flavor}`,
      load: `${i} hostile raw messages through hvsim + ${i} valid CHECKs (--dry-run)`,
      faults: 'mutated valid messages (90%) and random whole messages (10%)',
      result: `0 crashes, 0 hangs; outcomes ${[...outcomes].map(([s, n]) => `${s}:${n}`).join(' ')}; statuses (${[...statuses].map(([s, n]) => `${Number(s).toString(16)}:${n}`).join(' ')}); re-registered after ${reopenMs.length} device failures (max ${Math.max(0, ...reopenMs)} ms); clean exit 0 on SIGTERM`,
      figures: { messages: i },
    });
  });
});
