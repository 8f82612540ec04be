/**
 * Differential test, VSS: Debian's C hv_vss_daemon and ours answer the same
 * scripted session of 12-byte Linux VSS messages, delivered raw through the
 * simulator's FUSE node; replies are compared byte for byte, and after each
 * FREEZE and THAW the test looks at the test images themselves (frozen or
 * not).
 *
 * Safety: the C daemon freezes every writable block-device mount it sees and
 * has no allow list. It runs only inside lib/vss-root.ts's pivot_root'ed
 * namespace, whose mount table the test reads before sending anything: only
 * the tmpfs root, proc, sysfs, the FUSE node and this test's loop-mounted
 * ext4 images. If that is not exactly so, the C daemon is killed and the
 * test fails before any FREEZE. Ours runs with --include and
 * HVGUEST_FREEZE_ALLOW naming only the images.
 *
 * Needs root, /dev/fuse, `hvsim serve --fuse`, /usr/sbin/hv_vss_daemon and
 * the tools vss-root.ts lists; skipped, with the reason in its name,
 * otherwise.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HV_E_FAIL, HV_S_OK, VSS_OP_FREEZE, VSS_OP_HOT_BACKUP, VSS_OP_THAW, statusName } from '../../common/wire/constants.js';
import { realFreezeUnavailable } from '../../vss/testing/loop-namespace.js';
import { ROOT, bin, killAll, stop, type Proc } from '../lib/procs.js';
import { runSession, type StepResult } from './lib/compare.js';
import { fuseUnavailable } from '../../sim/fuse-server.js';
import { C_VSS_DAEMON, removeFuseMountsUnder, startFuseSim, stopFuseSim, waitRegistered } from './lib/daemon-run.js';
import { createVssRoot, mountPointsOf, vssRootUnavailable, type VssImage, type VssRoot } from './lib/vss-root.js';

const reason =
  realFreezeUnavailable() ?? vssRootUnavailable() ?? (existsSync(C_VSS_DAEMON) ? undefined : `${C_VSS_DAEMON} missing (Debian package hyperv-daemons)`) ?? fuseUnavailable();

/**
 * The test images. b's image file lives on a, so ours must freeze b before
 * a and thaw it after; only where the C daemon skips loop devices (it would
 * freeze a first, then wait on it while freezing b).
 */
const imagesFor = (loopAware: boolean): VssImage[] => (loopAware ? [{ name: 'a' }, { name: 'b', on: 'a' }, { name: 'c' }] : [{ name: 'a' }, { name: 'c' }]);
/** The C daemon's whole mount table (mount points, sorted): nothing of this machine's. */
const expectedCMounts = (images: string[]) => ['/', '/dev/vmbus/hv_vss', '/proc', '/sys', ...images.map((n) => `/mnt/${n}`)].sort();
const COMPAT = readFileSync(join(ROOT, 'docs/compatibility.md'), 'utf8');

/** A 12-byte hv_vss_msg with `op` in byte 0, the rest zero. */
const msg = (op: number) => {
  const b = Buffer.alloc(12);
  b.writeUInt8(op, 0);
  return b;
};

interface VssStep {
  label: string;
  request: Buffer;
  /** After the reply: the images must be frozen (true) or not (false), per daemon. */
  expectFrozen?: { c: boolean; ours: boolean };
}

/**
 * The session. The freeze-state checks encode #vss-loop: where the C daemon
 * can tell the images are loop devices (`loopAware`), it skips them.
 */
function vssSession(loopAware: boolean): VssStep[] {
  const s: VssStep[] = [];
  const add = (label: string, request: Buffer, expectFrozen?: VssStep['expectFrozen']) => s.push({ label, request, ...(expectFrozen ? { expectFrozen } : {}) });
  const frozen = { c: !loopAware, ours: true };
  const thawed = { c: false, ours: false };
  add('check (HOT_BACKUP)', msg(VSS_OP_HOT_BACKUP));
  add('freeze', msg(VSS_OP_FREEZE), frozen);
  add('thaw', msg(VSS_OP_THAW), thawed);
  add('check again', msg(VSS_OP_HOT_BACKUP));
  add('freeze 2', msg(VSS_OP_FREEZE), frozen);
  add('freeze while frozen', msg(VSS_OP_FREEZE), frozen);
  add('thaw 2', msg(VSS_OP_THAW), thawed);
  add('thaw while thawed', msg(VSS_OP_THAW), thawed);
  // Ops the kernel answers itself, and ones that do not exist, delivered anyway.
  for (const op of [0, 1, 3, 4, 7, 8, 99, 128, 129, 255]) add(`unknown op ${op}`, msg(op));
  const flags = msg(VSS_OP_HOT_BACKUP);
  flags.writeUInt32LE(0xdeadbeef, 8);
  add('check with flags set', flags);
  const junk = msg(VSS_OP_FREEZE);
  for (let i = 1; i < 8; i++) junk[i] = 0xa5;
  add('freeze with junk in reserved', junk, frozen);
  add('thaw 3', msg(VSS_OP_THAW), thawed);
  add('short message (4 bytes)', msg(VSS_OP_HOT_BACKUP).subarray(0, 4));
  add('check after short message', msg(VSS_OP_HOT_BACKUP));
  add('freeze last', msg(VSS_OP_FREEZE), frozen);
  add('thaw last', msg(VSS_OP_THAW), thawed);
  return s;
}

/** Deliberate differences, by step label, with their section of docs/compatibility.md. */
const DELIBERATE: { doc: string; label: RegExp; what: 'status' | 'frozen' | 'outcome' }[] = [
  { doc: 'vss-unknown-op', label: /^unknown op \d+$/, what: 'status' },
  { doc: 'vss-loop', label: /^freeze/, what: 'frozen' },
  { doc: 'vss-short-read', label: /^short message/, what: 'outcome' },
];

interface Run {
  results: StepResult[];
  frozen: (boolean[] | undefined)[];
}

/**
 * Two setups: with the loop devices' nodes in the C daemon's /dev it
 * recognises the images as loop devices and skips them, as on a real
 * system; without them it cannot stat the devices, treats the images as
 * ordinary disks and freezes them, so its real freeze and thaw are compared
 * with ours.
 */
for (const loopAware of [true, false]) {
const setup = loopAware ? 'images recognisable as loop devices' : 'images as ordinary block devices';
describe.skipIf(reason !== undefined)(`VSS: Debian's C hv_vss_daemon and ours answer the same session, ${setup}${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let work = '';
  let simDir = '';
  let sim: Proc | undefined;
  let vr: VssRoot | undefined;
  const steps = vssSession(loopAware);
  const IMAGES = imagesFor(loopAware).map((i) => i.name);
  const EXPECTED_C_MOUNTS = expectedCMounts(IMAGES);
  const deliberate = DELIBERATE.filter((d) => loopAware || d.doc !== 'vss-loop');
  let c: Run;
  let o: Run;
  let cMounts: string[] = [];

  /** Play the session with `daemon` registered; record the images' freeze state after each step that asks. */
  async function play(daemon: () => Promise<Proc>): Promise<Run> {
    let d = await daemon();
    const frozen: (boolean[] | undefined)[] = [];
    const results = await runSession(
      simDir,
      steps,
      async (outcome, i) => {
        // One probe at a time, nested images first: a probe freezes for a moment what is not frozen.
        if (steps[i]!.expectFrozen) {
          const state: boolean[] = [];
          for (const n of [...IMAGES].reverse()) state.unshift(await vr!.frozen(n));
          frozen[i] = state;
        }
        const alive = () => d.child.exitCode === null && d.child.signalCode === null;
        if (alive() && outcome !== 'answered') await Promise.race([d.exited, new Promise((r) => setTimeout(r, 500))]);
        if (alive()) return undefined;
        const how = d.child.signalCode ? `signal ${d.child.signalCode}` : `exit ${d.child.exitCode}`;
        d = await daemon();
        return how;
      },
      { service: 'vss', waitMs: 10_000 },
    );
    await stop(d, 5000);
    return { results, frozen };
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'hvg-diff-vss-'));
    simDir = join(work, 'sim');
    sim = await startFuseSim(simDir, ['--vss-timeout', '10', '--vss-freeze-timeout', '10']);
    vr = await createVssRoot(work, join(simDir, 'vmbus/hv_vss'), imagesFor(loopAware), loopAware);
    // The C daemon, pivoted into the root. Every instance's mount table is
    // checked once it has registered, before the host sends it anything.
    c = await play(async () => {
      const p = vr!.startPivoted([C_VSS_DAEMON, '-n']);
      await waitRegistered(simDir, 'vss', p);
      const seen = mountPointsOf(p.child.pid!).sort();
      cMounts = seen;
      if (JSON.stringify(seen) !== JSON.stringify(EXPECTED_C_MOUNTS)) {
        p.child.kill('SIGKILL');
        throw new Error(`refusing to drive the C VSS daemon: its mount table is ${seen.join(' ')}`);
      }
      return p;
    });
    const allow = IMAGES.map((n) => vr!.mounts[n]!);
    o = await play(async () => {
      const p = vr!.startInKeeper(
        [bin('hv_vss_daemon'), '-n', '--device', join(simDir, 'vmbus/hv_vss'), '--state-file', join(work, 'vss.state'), '--hooks-dir', join(work, 'no-hooks'), ...allow.flatMap((m) => ['--include', m])],
        { HVGUEST_FREEZE_ALLOW: allow.join(':') },
      );
      await waitRegistered(simDir, 'vss', p);
      return p;
    });
  }, 120_000);

  // Up to 20 s for the keeper to thaw and unmount, 5 s for the simulator: more than the default 30 s hook time on a loaded machine.
  afterAll(async () => {
    await killAll();
    await vr?.close();
    await stopFuseSim(sim, simDir);
    if (work) {
      removeFuseMountsUnder(work);
      rmSync(work, { recursive: true, force: true });
    }
  }, 60_000);

  it("the C daemon's mount table held only the test root, proc, sysfs, the device node and the test images", () => {
    expect(cMounts).toEqual(EXPECTED_C_MOUNTS);
  });

  it('every difference in the replies is a deliberate one that docs/compatibility.md explains', () => {
    const lines: string[] = [];
    const unexplained: string[] = [];
    const used = new Set<string>();
    steps.forEach((s, i) => {
      const rc = c.results[i]!;
      const ro = o.results[i]!;
      const diffs: [string, string][] = [];
      if (rc.outcome !== ro.outcome || rc.died !== ro.died) diffs.push(['outcome', `C ${rc.outcome}${rc.died ? ` (${rc.died})` : ''}, ours ${ro.outcome}${ro.died ? ` (${ro.died})` : ''}`]);
      else if (rc.status !== ro.status) diffs.push(['status', `C ${statusName(rc.status ?? 0)}, ours ${statusName(ro.status ?? 0)}`]);
      else if (rc.reply && ro.reply && !rc.reply.equals(ro.reply)) diffs.push(['status', `reply bytes C ${rc.reply.toString('hex')}, ours ${ro.reply.toString('hex')}`]);
      if (JSON.stringify(c.frozen[i]) !== JSON.stringify(o.frozen[i])) diffs.push(['frozen', `images frozen: C ${JSON.stringify(c.frozen[i])}, ours ${JSON.stringify(o.frozen[i])}`]);
      for (const [what, detail] of diffs) {
        const r = deliberate.find((d) => d.what === what && d.label.test(s.label));
        if (r) used.add(r.doc);
        else unexplained.push(`${s.label}: ${detail}`);
        lines.push(`  ${r ? `deliberate #${r.doc}` : 'UNEXPLAINED'} ${s.label}: ${detail}`);
      }
    });
    console.log([`VSS session (${setup}): ${steps.length} requests compared, ${new Set(lines.map((l) => l.split(':')[0])).size} differences`, ...lines].join('\n'));
    expect(unexplained).toEqual([]);
    expect(deliberate.map((d) => d.doc).filter((d) => !used.has(d))).toEqual([]);
    for (const d of deliberate) expect(COMPAT).toContain(`<a id="${d.doc}"></a>`);
  });

  it('both answer CHECK, FREEZE and THAW with success, and ours really freezes and thaws the images', () => {
    steps.forEach((s, i) => {
      if (!/^(check|freeze|thaw)/.test(s.label)) return;
      expect(c.results[i]!.status, `C ${s.label}`).toBe(HV_S_OK);
      expect(o.results[i]!.status, `ours ${s.label}`).toBe(HV_S_OK);
      if (s.expectFrozen) {
        expect(o.frozen[i], `ours ${s.label}`).toEqual(IMAGES.map(() => s.expectFrozen!.ours));
        expect(c.frozen[i], `C ${s.label}`).toEqual(IMAGES.map(() => s.expectFrozen!.c));
      }
    });
  });

  it('ours answers operations it does not implement with HV_E_FAIL; the C daemon with success', () => {
    steps.forEach((s, i) => {
      if (!s.label.startsWith('unknown op')) return;
      expect(o.results[i]!.status, s.label).toBe(HV_E_FAIL);
      expect(c.results[i]!.status, s.label).toBe(HV_S_OK);
    });
  });
});
}
