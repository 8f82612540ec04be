/**
 * hvguestd end to end, real processes: one daemon process serving KVP and
 * VSS on the simulated device nodes of `hvsim serve`, driven by hvsim host
 * commands.
 *
 * Dry-run VSS runs for both flavors. The real-freeze case (Linux, root)
 * freezes only loop-mounted ext4 images inside a private mount namespace,
 * with --vss-include naming them and HVGUEST_FREEZE_ALLOW set to exactly
 * them, and keeps the KVP pool files ON one of them: without the freeze
 * gate a host SET during the freeze would block the one thread that must
 * answer THAW.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, killAll, run, start, stop, tempDir, type Proc } from './lib/procs.js';
import { logged, writeHook } from './lib/vss-hooks.js';
import { HV_S_OK, type Flavor } from '../common/wire/constants.js';
import { createLoopNamespace, realFreezeUnavailable, type LoopNamespace } from '../vss/testing/loop-namespace.js';

const NODES: Record<Flavor, { kvp: string; vss: string }> = {
  freebsd: { kvp: 'hv_kvp_dev', vss: 'hv_fsvss_dev' },
  linux: { kvp: 'vmbus/hv_kvp', vss: 'vmbus/hv_vss' },
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** hvsim host commands against the simulator in `simDir`. */
function host(simDir: () => string) {
  const hvsim = (...args: string[]) => run(bin('hvsim'), ['--dir', simDir(), ...args]);
  const json = async (...args: string[]) => {
    const r = await hvsim('--json', ...args);
    return { code: r.code, out: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
  };
  /** Resolves once the simulator shows these services registered (and the others not). */
  const registered = async (want: { kvp: boolean; vss: boolean }) => {
    for (let i = 0; i < 200; i++) {
      const s = (await json('status')).out;
      if (s && s.kvp.registered === want.kvp && s.vss.registered === want.vss) return s;
      await sleep(25);
    }
    throw new Error(`services did not register as ${JSON.stringify(want)}`);
  };
  return { hvsim, json, registered };
}

for (const flavor of ['freebsd', 'linux'] as const) {
  describe(`hvguestd end to end (VSS dry run), ${flavor}`, () => {
    let tmp: { dir: string; remove: () => void };
    let sim: Proc;
    const simDir = () => join(tmp.dir, 'sim');
    const poolDir = () => join(tmp.dir, 'pool');
    const { hvsim, json, registered } = host(simDir);
    const args = (...extra: string[]) => [
      '-n',
      '--flavor',
      flavor,
      '--kvp-device',
      join(simDir(), NODES[flavor].kvp),
      '--kvp-pool-dir',
      poolDir(),
      '--kvp-helper-dir',
      join(tmp.dir, 'no-helpers'),
      '--vss-device',
      join(simDir(), NODES[flavor].vss),
      '--vss-dry-run',
      '--vss-state-file',
      join(tmp.dir, 'vss.state'),
      '--vss-hooks-dir',
      join(tmp.dir, 'no-hooks'),
      ...(flavor === 'freebsd' ? ['--vss-mount-table', join(tmp.dir, 'mount.txt')] : []),
      ...extra,
    ];

    beforeAll(async () => {
      tmp = tempDir('hvguest-guestd-');
      writeFileSync(join(tmp.dir, 'mount.txt'), '/dev/da0p2 on / (ufs, local, soft-updates)\n/dev/da1p1 on /data (ufs, local)\n');
      sim = start(bin('hvsim'), ['serve', '--flavor', flavor, '--dir', simDir(), '--kvp-timeout', '20', '--vss-timeout', '5', '--vss-freeze-timeout', '5']);
      await sim.waitFor(/^hvsim: ready/);
    });
    afterEach(async () => {
      await killAll([sim]);
    });
    afterAll(async () => {
      await killAll();
      tmp.remove();
    });

    it('one process serves both: a host SET reaches the pool file and GET returns it; CHECK, FREEZE and THAW succeed', async () => {
      const d = start(bin('hvguestd'), args());
      await registered({ kvp: true, vss: true });
      expect((await hvsim('kvp', 'set', '0', 'combined', 'one process')).code).toBe(0);
      expect((await json('kvp', 'get', '0', 'combined')).out).toMatchObject({ status: HV_S_OK, value: 'one process' });
      const file = readFileSync(join(poolDir(), '.kvp_pool_0'));
      expect(file.subarray(0, 9).toString()).toBe('combined\0');
      expect(file.subarray(512, 524).toString()).toBe('one process\0');
      expect((await json('kvp', 'enum', 'auto')).out.map((i: { key: string }) => i.key)).toContain('OSName');
      for (const op of ['check', 'freeze', 'thaw']) expect((await json('vss', op)).out?.status, op).toBe(HV_S_OK);
      // Both services log through the one process, each line tagged with its service.
      expect(d.stderr()).toMatch(/"service":"kvp".*"registered with the device"/);
      expect(d.stderr()).toMatch(/"service":"vss".*"VSS starting; pid is:\d+"/);
      expect(await stop(d)).toBe(0);
    });

    it('a KVP request that arrives during a freeze waits for the thaw, then succeeds', async () => {
      const d = start(bin('hvguestd'), args());
      await registered({ kvp: true, vss: true });
      expect((await json('vss', 'freeze')).out?.status).toBe(HV_S_OK);
      let done = false;
      const set = hvsim('kvp', 'set', '0', 'during', 'freeze').then((r) => ((done = true), r));
      await sleep(700);
      expect(done, 'the SET was answered while frozen').toBe(false);
      expect((await json('vss', 'thaw')).out?.status).toBe(HV_S_OK);
      expect((await set).code).toBe(0);
      expect((await json('kvp', 'get', '0', 'during')).out).toMatchObject({ status: HV_S_OK, value: 'freeze' });
      // The SET ran after the thaw, not merely its log line.
      expect(d.stderr().indexOf('file systems thawed')).toBeLessThan(d.stderr().lastIndexOf('"key":"during"'));
      expect(await stop(d)).toBe(0);
    });

    it('KVP is served again right after the THAW reply, while a slow thaw hook still runs', async () => {
      const hooks = join(tmp.dir, 'hooks-slow-thaw');
      const marker = join(tmp.dir, 'thaw-hook-ended');
      writeHook(hooks, '10-slow', `if [ "$1" = thaw ]; then sleep 4; touch ${marker}; fi`);
      const d = start(bin('hvguestd'), args('--vss-hooks-dir', hooks, '--vss-hook-timeout', '10'));
      await registered({ kvp: true, vss: true });
      expect((await json('vss', 'freeze')).out?.status).toBe(HV_S_OK);
      expect((await json('vss', 'thaw')).out?.status).toBe(HV_S_OK);
      // The gate opened with the thaw: the SET does not wait for the hook.
      expect((await hvsim('kvp', 'set', '0', 'hooks', 'running')).code).toBe(0);
      expect(existsSync(marker), 'the SET waited for the thaw hook').toBe(false);
      await logged(d, /thaw hooks done/);
      expect(existsSync(marker)).toBe(true);
      expect(await stop(d)).toBe(0);
    });

    it('--no-vss serves KVP only and --no-kvp VSS only; both off is a usage error', async () => {
      const k = start(bin('hvguestd'), args('--no-vss'));
      await registered({ kvp: true, vss: false });
      expect((await json('kvp', 'get', '0', 'nothing')).code).not.toBe(0);
      await stop(k);
      const v = start(bin('hvguestd'), args('--no-kvp'));
      await registered({ kvp: false, vss: true });
      expect((await json('vss', 'check')).out?.status).toBe(HV_S_OK);
      await stop(v);
      const none = await run(bin('hvguestd'), args('--no-kvp', '--no-vss'));
      expect(none.code).toBe(64);
      expect(none.stderr).toMatch(/--no-kvp and --no-vss/);
    });

    it('usage: -h exits 0 and lists every service option; an unknown flag 64; a missing VSS device 69 and KVP is not left running', async () => {
      const help = await run(bin('hvguestd'), ['-h']);
      expect(help.code).toBe(0);
      for (const o of ['--kvp-pool-dir', '--kvp-device', '--vss-include', '--vss-freeze-timeout', '--vss-dry-run', '--no-kvp', '--no-vss', 'HVGUEST_FREEZE_ALLOW']) expect(help.stdout).toContain(o);
      expect((await run(bin('hvguestd'), ['--bogus'])).code).toBe(64);
      const a = args();
      a[a.indexOf('--vss-device') + 1] = join(tmp.dir, 'no-such-node');
      const missing = await run(bin('hvguestd'), a, { ms: 15000 });
      expect(missing.code).toBe(69);
      expect(missing.stderr).toMatch(/no-such-node/);
      // The KVP half stopped with it: the node is free for the next daemon.
      const s = await json('status');
      expect(s.out.kvp.open).toBe(false);
    });
  });
}

// ---------------------------------------------------------------- real freezes

const skipReal = realFreezeUnavailable();

describe.skipIf(skipReal !== undefined)(`hvguestd real freeze in a private mount namespace, pool files on a frozen file system${skipReal ? ` (skipped: ${skipReal})` : ''}`, () => {
  let tmp: { dir: string; remove: () => void };
  let sim: Proc;
  let ns: LoopNamespace;
  let daemon: ChildProcess | undefined;
  let daemonErr = '';
  const simDir = () => join(tmp.dir, 'sim');
  const { hvsim, json, registered } = host(simDir);

  beforeAll(async () => {
    tmp = tempDir('hvguest-guestd-');
    sim = start(bin('hvsim'), ['serve', '--flavor', 'linux', '--dir', simDir(), '--kvp-timeout', '20', '--vss-timeout', '5', '--vss-freeze-timeout', '5']);
    await sim.waitFor(/^hvsim: ready/);
    ns = await createLoopNamespace(tmp.dir, [
      { name: 'a', sizeMb: 16 },
      { name: 'b', sizeMb: 16 },
    ]);
  });
  afterAll(async () => {
    // A daemon stuck writing to a frozen file system cannot die before the thaw: kill it, thaw
    // (ns.close runs fsfreeze -u on every test mount, then unmounts), then wait for it.
    const c = daemon;
    const gone = c && c.exitCode === null && c.signalCode === null ? new Promise((r) => c.on('exit', r)) : undefined;
    c?.kill('SIGKILL');
    await ns?.close();
    await gone;
    await stop(sim);
    tmp.remove();
  });

  it('FREEZE blocks writers on both mounts, a KVP SET to the frozen pool waits, THAW answers and the SET lands', async () => {
    const { a, b } = ns.mounts as Record<string, string>;
    const [cmd, ...pre] = ns.enter();
    const argv = [
      ...pre,
      bin('hvguestd'),
      '-n',
      '--flavor',
      'linux',
      '--kvp-device',
      join(simDir(), 'vmbus/hv_kvp'),
      '--kvp-pool-dir',
      join(a!, 'pool'),
      '--kvp-helper-dir',
      join(tmp.dir, 'no-helpers'),
      '--vss-device',
      join(simDir(), 'vmbus/hv_vss'),
      '--vss-include',
      a!,
      '--vss-include',
      b!,
      '--vss-state-file',
      join(tmp.dir, 'vss.state'),
      '--vss-hooks-dir',
      join(tmp.dir, 'no-hooks'),
    ];
    daemon = spawn(cmd!, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HVGUEST_FREEZE_ALLOW: `${a}:${b}` } });
    daemon.stderr!.on('data', (d: Buffer) => (daemonErr += d.toString()));
    await registered({ kvp: true, vss: true });
    expect((await hvsim('kvp', 'set', '0', 'before', 'freeze')).code).toBe(0);

    const fr = await json('vss', 'freeze');
    expect(fr.out?.status, daemonErr).toBe(HV_S_OK);
    expect(JSON.parse(readFileSync(join(tmp.dir, 'vss.state'), 'utf8')).mounts).toEqual([a, b]);
    const writers = [a!, b!].map((m) => ns.runIn(['dd', 'if=/dev/zero', `of=${join(m, 'w')}`, 'bs=4096', 'count=1', 'conv=fsync', 'status=none'], 10000));
    let writersDone = false;
    const w = Promise.all(writers).then((codes) => ((writersDone = true), codes));
    let setDone = false;
    const set = hvsim('kvp', 'set', '0', 'during', 'freeze').then((r) => ((setDone = true), r));
    await sleep(700);
    expect(writersDone, 'a write finished while frozen').toBe(false);
    expect(setDone, 'a KVP SET was answered while its pool was frozen').toBe(false);

    const th = await json('vss', 'thaw');
    expect(th.out?.status, daemonErr).toBe(HV_S_OK);
    expect(await w).toEqual([0, 0]);
    expect((await set).code).toBe(0);
    expect((await json('kvp', 'get', '0', 'during')).out).toMatchObject({ status: HV_S_OK, value: 'freeze' });
    expect((await json('kvp', 'get', '0', 'before')).out).toMatchObject({ status: HV_S_OK, value: 'freeze' });
    // The pool file really is on the loop mount: the namespace sees both records there.
    expect(await ns.runIn(['grep', '-q', 'during', join(a!, 'pool', '.kvp_pool_0')], 5000)).toBe(0);

    const done = new Promise<number | null>((r) => daemon!.on('exit', (code) => r(code)));
    daemon.kill('SIGTERM');
    expect(await done).toBe(0);
  });
});
