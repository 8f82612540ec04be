/**
 * hv_vss_daemon end to end, real processes: the daemon on a simulated
 * device node (`hvsim serve`), driven by `hvsim vss check|freeze|thaw`.
 *
 * Dry-run flows run for both flavors. Real freezes (Linux) happen only
 * inside a private mount namespace, on loop-mounted ext4 images this test
 * creates there, with --include naming only them AND HVGUEST_FREEZE_ALLOW
 * set to exactly them; the namespace thaws and unmounts everything when it
 * is closed, whatever happened.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NATIVE_GUARD, bin, killAll, run, start, stop, tempDir, type Proc } from './lib/procs.js';
import { SIM_TRANSPORTS, noMountLeft, transportTitle } from './lib/transports.js';
import { logged, writeHook } from './lib/vss-hooks.js';
import { HV_E_FAIL, HV_S_OK, type Flavor } from '../common/wire/constants.js';
import { encodeLinuxVss } from '../common/wire/vss.js';
import { createLoopNamespace, realFreezeUnavailable, type LoopNamespace } from '../vss/testing/loop-namespace.js';

/** `mount` output recorded on a FreeBSD 14 guest with UFS root, a ZFS pool, tmpfs and NFS. */
const FREEBSD_MOUNT = `/dev/da0p2 on / (ufs, local, soft-updates, journaled soft-updates)
devfs on /dev (devfs)
/dev/da1p1 on /data (ufs, local, soft-updates)
/dev/da0p1 on /boot/efi (msdosfs, local)
tank on /tank (zfs, local, nfsv4acls)
tmpfs on /tmp (tmpfs, local)
nas:/export on /mnt/nas (nfs)
/dev/da2p1 on /devel (ufs, local, soft-updates)
/dev/cd0 on /cdrom (cd9660, local, read-only)
`;

const VSS_NODE: Record<Flavor, string> = { freebsd: 'hv_fsvss_dev', linux: 'vmbus/hv_vss' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const transport of SIM_TRANSPORTS)
for (const flavor of ['freebsd', 'linux'] as const) {
  describe.skipIf(transport.skip !== undefined)(`hv_vss_daemon end to end (dry run), ${flavor}, ${transportTitle(transport)}`, () => {
    let tmp: { dir: string; remove: () => void };
    let sim: Proc;
    let simDir: string;
    const stateFile = () => join(tmp.dir, 'vss.state');

    const hvsim = (...args: string[]) => run(bin('hvsim'), ['--dir', simDir, ...args]);
    const vss = async (op: string, ...extra: string[]) => {
      const r = await hvsim('--json', ...extra, 'vss', op);
      return { code: r.code, out: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
    };
    const registered = async () => {
      for (let i = 0; i < 200; i++) {
        const r = await hvsim('--json', 'status');
        if (r.stdout && JSON.parse(r.stdout).vss?.registered) return;
        await sleep(25);
      }
      throw new Error('daemon did not register');
    };
    const startDaemon = async (...extra: string[]) => {
      const table = flavor === 'freebsd' ? ['--mount-table', join(tmp.dir, 'mount.txt')] : [];
      const d = start(bin('hv_vss_daemon'), ['-n', '--dry-run', ...table, '--flavor', flavor, '--device', join(simDir, VSS_NODE[flavor]), '--state-file', stateFile(), '--hooks-dir', join(tmp.dir, 'hooks-none'), ...extra]);
      await registered();
      return d;
    };

    beforeAll(async () => {
      tmp = tempDir();
      simDir = join(tmp.dir, 'sim');
      writeFileSync(join(tmp.dir, 'mount.txt'), FREEBSD_MOUNT);
      sim = start(bin('hvsim'), ['serve', ...transport.serveArgs, '--flavor', flavor, '--dir', simDir, '--vss-timeout', '2', '--vss-freeze-timeout', '2']);
      await sim.waitFor(/^hvsim: ready/);
    });
    afterEach(async () => {
      await killAll([sim]);
    });
    afterAll(async () => {
      await stop(sim);
      noMountLeft(simDir);
      tmp.remove();
    });

    it('check, freeze, thaw: statuses and flags of the C daemon, state file while frozen, held logs flushed after thaw', async () => {
      const d = await startDaemon();
      const check = await vss('check');
      expect(check.code, check.stderr).toBe(0);
      expect(check.out).toMatchObject({ status: HV_S_OK, flags: 5 });
      const fr = await vss('freeze');
      expect(fr.code).toBe(0);
      expect(fr.out.status).toBe(HV_S_OK);
      const st = JSON.parse(readFileSync(stateFile(), 'utf8'));
      expect(st).toMatchObject({ flavor, dryRun: true });
      expect(Array.isArray(st.mounts)).toBe(true);
      const th = await vss('thaw');
      expect(th.code).toBe(0);
      expect(th.out.status).toBe(HV_S_OK);
      expect(existsSync(stateFile())).toBe(false);
      expect(await stop(d)).toBe(0);
      expect(d.stderr()).toMatch(/dry run: would freeze/);
      if (flavor === 'freebsd') {
        // One policy for CHECK and FREEZE: the check succeeds and says what it will not freeze and why.
        expect(st.mounts).toEqual(['/', '/data', '/devel']);
        expect(d.stderr()).toMatch(/"mount":"\/tank".*ZFS cannot be suspended/);
        expect(d.stderr()).toMatch(/"mount":"\/mnt\/nas".*network/);
        expect(d.stderr()).toMatch(/"mount":"\/boot\/efi".*msdosfs cannot be suspended/);
      }
      expect(d.stderr()).toMatch(/file systems thawed/);
    });

    it('a thaw with nothing frozen succeeds; a second freeze without thaw re-freezes cleanly', async () => {
      const d = await startDaemon();
      expect((await vss('thaw')).out.status).toBe(HV_S_OK);
      expect((await vss('freeze')).out.status).toBe(HV_S_OK);
      expect((await vss('freeze')).out.status).toBe(HV_S_OK);
      expect(d.stderr()).toMatch(/"reason":"freeze while frozen"/);
      expect((await vss('thaw')).out.status).toBe(HV_S_OK);
      await stop(d);
    });

    it('hooks run freeze in name order and thaw in reverse; a failing freeze hook fails the freeze and thaws the hooks already run', async () => {
      const hooks = join(tmp.dir, `hooks-${Date.now()}`);
      const trace = join(tmp.dir, `trace-${Date.now()}`);
      writeHook(hooks, '10-db', `echo "db $1" >> ${trace}`);
      writeHook(hooks, '20-app', `echo "app $1" >> ${trace}`);
      writeHook(hooks, 'README~', 'exit 1'); // backup files are not hooks
      const d = await startDaemon('--hooks-dir', hooks);
      expect((await vss('freeze')).out.status).toBe(HV_S_OK);
      expect((await vss('thaw')).out.status).toBe(HV_S_OK);
      await logged(d, /thaw hooks done/);
      expect(readFileSync(trace, 'utf8')).toBe('db freeze\napp freeze\napp thaw\ndb thaw\n');
      writeHook(hooks, '30-broken', `echo "broken $1" >> ${trace}; exit 3`);
      writeFileSync(trace, '');
      const fr = await vss('freeze');
      expect(fr.code).toBe(1);
      expect(fr.out.status).toBe(HV_E_FAIL);
      // The hooks already run get their thaw inside the freeze, before the FAIL reply (the failing one is not told).
      expect(readFileSync(trace, 'utf8')).toBe('db freeze\napp freeze\nbroken freeze\napp thaw\ndb thaw\n');
      expect(existsSync(stateFile())).toBe(false);
      expect(d.stderr()).toMatch(/freeze hook .*30-broken failed/);
      await stop(d);
    });

    it('THAW is answered before the thaw hooks run: a slow hook and one that hangs past its timeout cannot fail the backup', async () => {
      const hooks = join(tmp.dir, `hooks-late-${Date.now()}`);
      const marker = join(tmp.dir, `thawed-${Date.now()}`);
      // Thaw runs in reverse name order: 20-hang first (killed at the 3 s timeout), then 10-app.
      writeHook(hooks, '10-app', `if [ "$1" = thaw ]; then sleep 1; touch ${marker}; fi`);
      writeHook(hooks, '20-hang', 'if [ "$1" = thaw ]; then sleep 30; fi');
      // The simulator's kernel gives the daemon 2 s per THAW: answering after these hooks could never make it.
      const d = await startDaemon('--hooks-dir', hooks, '--hook-timeout', '3');
      expect((await vss('freeze')).out.status).toBe(HV_S_OK);
      const th = await vss('thaw');
      expect(th.code, th.stderr).toBe(0);
      expect(th.out.status).toBe(HV_S_OK);
      expect(d.stderr()).toMatch(/file systems thawed/);
      expect(existsSync(marker)).toBe(false);
      await logged(d, /thaw hooks done, 1 failed/);
      expect(existsSync(marker)).toBe(true);
      expect(d.stderr()).toMatch(/thaw hook .*20-hang failed: timed out after 3000 ms/);
      // The daemon goes on: the next backup is served.
      expect((await vss('check')).out.status).toBe(HV_S_OK);
      expect(await stop(d)).toBe(0);
    });

    it('the watchdog thaws when no THAW arrives', async () => {
      const d = await startDaemon('--freeze-timeout', '0.5');
      expect((await vss('freeze')).out.status).toBe(HV_S_OK);
      await sleep(1000);
      expect(d.stderr()).toMatch(/thawed by the watchdog/);
      expect(existsSync(stateFile())).toBe(false);
      await stop(d);
    });

    it('SIGTERM while frozen thaws before exiting', async () => {
      const d = await startDaemon();
      expect((await vss('freeze')).out.status).toBe(HV_S_OK);
      expect(await stop(d)).toBe(0);
      expect(d.stderr()).toMatch(/"reason":"stop"/);
      expect(existsSync(stateFile())).toBe(false);
    });

    it('a daemon that restarts mid-backup: the new one finds the state, and the host THAW succeeds', async () => {
      const d = await startDaemon();
      expect((await vss('freeze')).out.status).toBe(HV_S_OK);
      d.child.kill('SIGKILL');
      await d.exited;
      expect(existsSync(stateFile())).toBe(true);
      // Until a daemon reopens, the kernel fails requests at once.
      const lonely = await vss('thaw', '--wait', '1');
      expect(lonely.code).not.toBe(0);
      const d2 = await startDaemon();
      expect(existsSync(stateFile())).toBe(false);
      expect(d2.stderr()).toMatch(/startup: state of pid/);
      expect((await vss('thaw')).out.status).toBe(HV_S_OK);
      await stop(d2);
    });

    it('a freeze that outlives the kernel timeout: the host sees failure and the daemon ends thawed', async () => {
      const hooks = join(tmp.dir, `hooks-slow-${Date.now()}`);
      writeHook(hooks, '10-slow', 'if [ "$1" = freeze ]; then sleep 3; fi');
      const d = await startDaemon('--hooks-dir', hooks);
      const fr = await vss('freeze');
      expect(fr.code).not.toBe(0);
      // Linux: the late reply fails, the daemon reopens and thaws first. FreeBSD: the reply is dropped
      // by the kernel; the watchdog (default 10 s) or the next THAW ends it. Either way a THAW works.
      await sleep(1500);
      const th = await vss('thaw');
      expect(th.out.status).toBe(HV_S_OK);
      if (flavor === 'linux') expect(d.stderr()).toMatch(/"reason":"(device reopen|thaw request)"/);
      await stop(d);
    });

    if (flavor === 'linux') {
      it('an op the daemon does not implement gets HV_E_FAIL (pitfall L7)', async () => {
        const d = await startDaemon();
        const bad = await hvsim('--json', 'raw', '--service', 'vss', '--hex', encodeLinuxVss({ operation: 9 }).toString('hex'));
        expect(bad.code).toBe(1);
        expect(JSON.parse(bad.stdout).status).toBe(HV_E_FAIL);
        await stop(d);
      });
    }

    it('usage: -h exits 0, an unknown flag 64, a missing device 69, a second daemon 75', async () => {
      const help = await run(bin('hv_vss_daemon'), ['-h']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/--include <MOUNT>/);
      expect(help.stdout).toMatch(/HVGUEST_FREEZE_ALLOW/);
      expect((await run(bin('hv_vss_daemon'), ['--bogus'])).code).toBe(64);
      expect((await run(bin('hv_vss_daemon'), ['-n', '--dry-run', '--flavor', flavor, '--device', join(tmp.dir, 'nope'), '--state-file', stateFile()])).code).toBe(69);
      const d = await startDaemon();
      const second = await run(bin('hv_vss_daemon'), ['-n', '--dry-run', '--flavor', flavor, '--device', join(simDir, VSS_NODE[flavor]), '--state-file', join(tmp.dir, 'other.state')]);
      expect(second.code).toBe(75);
      await stop(d);
    });

    it('hvctl vss status reports frozen, what and since when', async () => {
      const d = await startDaemon();
      const idle = await run(bin('hvctl'), ['vss', 'status', '--json', '--state-file', stateFile()]);
      expect(idle.code).toBe(0);
      expect(JSON.parse(idle.stdout)).toMatchObject({ frozen: false });
      await vss('freeze');
      const fr = await run(bin('hvctl'), ['vss', 'status', '--json', '--state-file', stateFile()]);
      const s = JSON.parse(fr.stdout);
      expect(s).toMatchObject({ frozen: true, dryRun: true, daemonAlive: true });
      expect(Date.parse(s.since)).toBeGreaterThan(Date.now() - 60000);
      const text = await run(bin('hvctl'), ['vss', 'status', '--state-file', stateFile()]);
      expect(text.stdout).toMatch(/frozen since/);
      await vss('thaw');
      await stop(d);
    });
  });
}

// ---------------------------------------------------------------- real freezes

const skipReal = realFreezeUnavailable();

for (const transport of SIM_TRANSPORTS)
describe.skipIf(skipReal !== undefined || transport.skip !== undefined)(`hv_vss_daemon real freeze in a private mount namespace, ${transportTitle(transport)}${skipReal ? ` (skipped: ${skipReal})` : ''}`, () => {
  let tmp: { dir: string; remove: () => void };
  let sim: Proc;
  let simDir: string;
  let ns: LoopNamespace;
  let daemon: ChildProcess | undefined;
  let daemonErr = '';
  const stateFile = () => join(tmp.dir, 'vss.state');
  const hvsim = (...args: string[]) => run(bin('hvsim'), ['--dir', simDir, ...args]);
  const vss = async (op: string) => {
    const r = await hvsim('--json', 'vss', op);
    return { code: r.code, out: r.stdout ? JSON.parse(r.stdout) : undefined };
  };

  /** Start the daemon inside the namespace, allowed to freeze only `allow`. */
  async function startDaemon(include: string[], allow: string[], extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
    const [cmd, ...pre] = ns.enter();
    daemonErr = '';
    const args = [...pre, bin('hv_vss_daemon'), '-n', '--flavor', 'linux', '--device', join(simDir, 'vmbus/hv_vss'), '--state-file', stateFile(), '--hooks-dir', join(tmp.dir, 'no-hooks'), ...include.flatMap((m) => ['--include', m]), ...extra];
    const c = spawn(cmd!, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env, HVGUEST_FREEZE_ALLOW: allow.join(':') } });
    c.stderr!.on('data', (d: Buffer) => (daemonErr += d.toString()));
    daemon = c;
    for (let i = 0; i < 200; i++) {
      const r = await hvsim('--json', 'status');
      if (r.stdout && JSON.parse(r.stdout).vss?.registered) return c;
      if (c.exitCode !== null) break;
      await sleep(25);
    }
    throw new Error(`daemon did not register: ${daemonErr}`);
  }
  async function stopDaemon() {
    const c = daemon;
    daemon = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const done = new Promise((r) => c.on('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
  }

  /** Start a write of one block with fsync to each mount; returns their exit promises. */
  const writers = (mounts: string[], tag: string) =>
    mounts.map((m) => ns.runIn(['dd', 'if=/dev/zero', `of=${join(m, `w-${tag}`)}`, 'bs=4096', 'count=1', 'conv=fsync', 'status=none'], 10000));

  beforeAll(async () => {
    tmp = tempDir('hvguest-vss-');
    simDir = join(tmp.dir, 'sim');
    sim = start(bin('hvsim'), ['serve', ...transport.serveArgs, '--flavor', 'linux', '--dir', simDir, '--vss-timeout', '5', '--vss-freeze-timeout', '5']);
    await sim.waitFor(/^hvsim: ready/);
    // b's image file lives on a: b must be frozen before a and thawed after it.
    ns = await createLoopNamespace(tmp.dir, [
      { name: 'a', sizeMb: 48 },
      { name: 'b', sizeMb: 16, on: 'a' },
      { name: 'c', sizeMb: 16 },
    ]);
  });
  afterEach(async () => {
    await stopDaemon();
  });
  afterAll(async () => {
    await stopDaemon();
    // Last resort inside close(): fsfreeze -u on every test mount, then unmount.
    await ns?.close();
    await stop(sim);
    noMountLeft(simDir);
    tmp.remove();
  });

  it('freeze blocks writes on every test file system (ext4 on a loop file on another), in dependency order; thaw lets them through', async () => {
    const { a, b, c } = ns.mounts as Record<string, string>;
    await startDaemon([a!, b!, c!], [a!, b!, c!]);
    const fr = await vss('freeze');
    expect(fr.out?.status, daemonErr).toBe(HV_S_OK);
    // The state file records the freeze order: b (backed on a) before a; c keeps mount order.
    const st = JSON.parse(readFileSync(stateFile(), 'utf8'));
    expect(st.mounts).toEqual([b, a, c]);
    let done = false;
    const w = Promise.all(writers([a!, b!, c!], 'frozen')).then((codes) => ((done = true), codes));
    await sleep(700);
    expect(done, 'a write finished while frozen').toBe(false);
    const th = await vss('thaw');
    expect(th.out?.status).toBe(HV_S_OK);
    const t0 = Date.now();
    expect(await w).toEqual([0, 0, 0]);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(existsSync(stateFile())).toBe(false);
    // Logs written while frozen were held and flushed after the thaw, in order.
    expect(daemonErr.indexOf('file systems frozen')).toBeLessThan(daemonErr.indexOf('file systems thawed'));
  });

  it('a file system that cannot be frozen fails the whole freeze: everything already frozen is thawed and the host sees failure', async () => {
    const { a, b, c } = ns.mounts as Record<string, string>;
    // c is included but not allowed: the interlock refuses it after b and a are frozen.
    await startDaemon([a!, b!, c!], [a!, b!]);
    const fr = await vss('freeze');
    expect(fr.code).toBe(1);
    expect(fr.out?.status).toBe(HV_E_FAIL);
    expect(await Promise.all(writers([a!, b!, c!], 'failed'))).toEqual([0, 0, 0]);
    expect(daemonErr).toMatch(/FREEZE of .*\/c failed: .*EHVALLOW/);
    expect(existsSync(stateFile())).toBe(false);
  });

  it('a failing freeze hook: nothing is frozen and the host sees failure', async () => {
    const { a, b } = ns.mounts as Record<string, string>;
    const hooks = join(tmp.dir, 'hooks-fail');
    writeHook(hooks, '10-fail', 'exit 1');
    await startDaemon([a!, b!], [a!, b!], ['--hooks-dir', hooks]);
    const fr = await vss('freeze');
    expect(fr.out?.status).toBe(HV_E_FAIL);
    expect(await Promise.all(writers([a!, b!], 'hook'))).toEqual([0, 0]);
  });

  it('daemon and guard both killed while frozen: the file systems stay frozen until the next daemon start thaws them from the state file', async () => {
    const { a, b } = ns.mounts as Record<string, string>;
    const c = await startDaemon([a!, b!], [a!, b!]);
    expect((await vss('freeze')).out?.status).toBe(HV_S_OK);
    const guardPid = Number(readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    expect(readFileSync(`/proc/${guardPid}/cmdline`, 'utf8')).toMatch(/hvguest-freeze-guard|guard-main\.js/);
    process.kill(guardPid, 'SIGKILL');
    const died = new Promise((r) => c.on('exit', r));
    c.kill('SIGKILL');
    await died;
    let done = false;
    const w = Promise.all(writers([a!, b!], 'startup')).then((codes) => ((done = true), codes));
    await sleep(500);
    expect(done, 'nothing should have thawed yet').toBe(false);
    expect(existsSync(stateFile())).toBe(true);
    await startDaemon([a!, b!], [a!, b!]);
    expect(await w).toEqual([0, 0]);
    expect(daemonErr).toMatch(/startup: thawed .*\/a left by pid/);
    expect(existsSync(stateFile())).toBe(false);
  });

  // The guard's one job: the daemon killed outright while file systems are frozen. Each guard
  // program, and the default choice (the native guard whenever it is built).
  for (const choice of ['auto', 'native', 'node'] as const) {
    const kind = choice === 'auto' ? (existsSync(NATIVE_GUARD) ? 'native' : 'node') : choice;
    it.skipIf(kind === 'native' && !existsSync(NATIVE_GUARD))(`daemon SIGKILLed while frozen, HVGUEST_GUARD=${choice}: the ${kind} guard thaws every file system, the one below last${kind === 'native' && !existsSync(NATIVE_GUARD) ? ` (skipped: ${NATIVE_GUARD} not built)` : ''}`, async () => {
      const { a, b, c } = ns.mounts as Record<string, string>;
      const d = await startDaemon([a!, b!, c!], [a!, b!, c!], [], { HVGUEST_GUARD: choice });
      expect((await vss('freeze')).out?.status, daemonErr).toBe(HV_S_OK);
      const started = /freeze guard started: (\w+), pid (\d+)/.exec(daemonErr);
      expect(started?.[1], daemonErr).toBe(kind);
      expect(daemonErr.match(/freeze guard started/g)).toHaveLength(1);
      const guardPid = Number(started![2]);
      expect(readFileSync(`/proc/${guardPid}/cmdline`, 'utf8')).toMatch(kind === 'native' ? /^\/\S*\/hvguest-freeze-guard\0$/ : /guard-main\.js/);
      let done = false;
      const w = Promise.all(writers([a!, b!, c!], `kill-${choice}`)).then((codes) => ((done = true), codes));
      await sleep(500);
      expect(done, 'a write finished while frozen').toBe(false);
      const died = new Promise((r) => d.on('exit', r));
      d.kill('SIGKILL');
      await died;
      const t0 = Date.now();
      expect(await w).toEqual([0, 0, 0]);
      expect(Date.now() - t0).toBeLessThan(2000);
      // Its work done, the guard is gone too.
      for (let i = 0; i < 100 && existsSync(`/proc/${guardPid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${guardPid}/status`, 'utf8')); i++) await sleep(20);
      expect(existsSync(`/proc/${guardPid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${guardPid}/status`, 'utf8')), 'the guard still runs').toBe(false);
      // The state file the killed daemon left is what the next start cleans up; nothing is frozen any more.
      expect(existsSync(stateFile())).toBe(true);
      await startDaemon([a!, b!, c!], [a!, b!, c!]);
      expect(existsSync(stateFile())).toBe(false);
    });
  }

  it('SIGTERM while frozen thaws; so does the watchdog', async () => {
    const { a, b } = ns.mounts as Record<string, string>;
    await startDaemon([a!, b!], [a!, b!]);
    expect((await vss('freeze')).out?.status).toBe(HV_S_OK);
    await stopDaemon();
    expect(await Promise.all(writers([a!, b!], 'term'))).toEqual([0, 0]);
    await startDaemon([a!, b!], [a!, b!], ['--freeze-timeout', '0.5']);
    expect((await vss('freeze')).out?.status).toBe(HV_S_OK);
    await sleep(900);
    expect(await Promise.all(writers([a!, b!], 'watchdog'))).toEqual([0, 0]);
    expect(daemonErr).toMatch(/thawed by the watchdog/);
  });
});

describe.skipIf(process.platform !== 'linux')('hv_vss_daemon HVGUEST_GUARD', () => {
  it('a value other than native, node or auto stops the start-up with status 64, naming the variable', async () => {
    const tmp = tempDir('hvguest-vss-guardenv-');
    try {
      const r = await run(bin('hv_vss_daemon'), ['-n', '--flavor', 'linux', '--device', join(tmp.dir, 'no-device'), '--state-file', join(tmp.dir, 'vss.state')], { env: { ...process.env, HVGUEST_GUARD: 'c' } });
      expect(r.code, r.stderr).toBe(64);
      expect(r.stderr).toMatch(/HVGUEST_GUARD=c: expected native, node or auto/);
    } finally {
      tmp.remove();
    }
  });
});
