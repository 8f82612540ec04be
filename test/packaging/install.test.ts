/**
 * `make install` into a staging directory, both layouts: the FreeBSD tree
 * is exactly the port's pkg-plist (plus the rc.d scripts USE_RC_SUBR adds),
 * the Linux tree is what the spec lists, the devd rules name installed
 * programs, `make uninstall` removes everything, and the staged programs run
 * from a copy of the staged tree outside the checkout, with no
 * node_modules reachable: hvsim serve, hv_kvp_daemon, hv_vss_daemon and
 * hvctl from the tree itself, the daemons registering and answering.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { ROOT, killAll, run, start, stop, tempDir, type Proc } from '../lib/procs.js';
import { MAKES, cleanEnv, listDirs, listFiles, make, mode, packageJson, programDir } from './make.js';

const m = MAKES.find((x) => x.present);
/** The Linux layout compiles the native freeze guard with cc when there is one (build/mk/install.sh guard_decide). */
// Whether `make install` (LAYOUT=linux, MACHINE_ARCH=x86_64 as the tests give it) compiles the native
// guard here: install.sh's guard_decide builds with the default cc only for this machine's own system and CPU.
const HAVE_CC = process.platform === 'linux' && process.arch === 'x64' && spawnSync('sh', ['-c', 'command -v cc'], { stdio: 'ignore' }).status === 0;
const GUARD = 'usr/lib/hvguest/hvguest-freeze-guard';
const PORT = join(ROOT, 'build/freebsd/sysutils/hvguest');

/** The port's pkg-plist with %%KOFFI_ARCH%% as on amd64, plus the rc.d scripts USE_RC_SUBR installs. */
function portFiles(): string[] {
  const plist = readFileSync(join(PORT, 'pkg-plist'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('@'))
    .map((l) => l.replaceAll('%%KOFFI_ARCH%%', 'x64'));
  const rc = /^USE_RC_SUBR=\s*(.+)$/m.exec(readFileSync(join(PORT, 'Makefile'), 'utf8'))![1]!.trim().split(/\s+/);
  return [...plist, ...rc.map((r) => `etc/rc.d/${r}`)].sort();
}

describe.skipIf(!m)(`staged make install${m ? ` (${m.name})` : ' (skipped: neither bmake nor GNU make is installed)'}`, () => {
  const cmd = m?.cmd ?? 'make';
  let tmp: { dir: string; remove: () => void };
  let bundle: string;
  /** Why the FreeBSD koffi binary could not be bundled (npm registry unreachable), if so. */
  let noFreebsd: string | undefined;

  beforeAll(async () => {
    tmp = tempDir('hvguest-install-');
    bundle = join(tmp.dir, 'bundle');
    // One bundle for every case: this machine's koffi to run, FreeBSD's for the port's file list.
    const r = await make(cmd, ['all', `BUNDLE=${bundle}`, 'KOFFI_PLATFORMS=linux-x64 freebsd-x64'], {}, 240000);
    if (r.code !== 0) {
      if (!/cannot fetch @koromix\/koffi-freebsd-x64/.test(r.stderr)) throw new Error(`make all failed: ${r.stderr}`);
      noFreebsd = r.stderr.trim();
      const host = await make(cmd, ['all', `BUNDLE=${bundle}`, 'KOFFI_PLATFORMS=linux-x64']);
      if (host.code !== 0) throw new Error(`make all failed: ${host.stderr}`);
    }
  }, 300000);

  afterAll(() => tmp?.remove());

  const install = async (dest: string, ...vars: string[]) => {
    const r = await make(cmd, ['install', ...(dest ? [`DESTDIR=${dest}`] : []), `BUNDLE=${bundle}`, ...vars]);
    expect(r.code, r.stderr).toBe(0);
    return r;
  };

  it('FreeBSD layout: exactly the files of the port (pkg-plist + USE_RC_SUBR), in the right places and modes', async (ctx) => {
    if (noFreebsd) ctx.skip(`koffi's FreeBSD binary could not be fetched: ${noFreebsd}`);
    const dest = join(tmp.dir, 'freebsd');
    await install(dest, 'LAYOUT=freebsd', 'PREFIX=/usr/local', 'MACHINE_ARCH=amd64');
    // This bundle is also for this machine, so it carries V8 code caches (bundle.js); the port's
    // distfile is made without them (port-tarball.sh), so pkg-plist lists none. Besides the caches,
    // the trees are the same.
    const all = listFiles(join(dest, 'usr/local'));
    const caches = all.filter((f) => f.endsWith('.js.cache'));
    expect(caches).toEqual(Object.keys(packageJson().bin).sort().map((n) => `lib/hvguest/${n}.js.cache`));
    const staged = all.filter((f) => !f.endsWith('.js.cache'));
    expect(staged, 'staged tree vs pkg-plist; regenerate with `MACHINE_ARCH=amd64 sh build/mk/install.sh plist > build/freebsd/sysutils/hvguest/pkg-plist`').toEqual(portFiles());
    expect(listFiles(dest).every((f) => f.startsWith('usr/local/'))).toBe(true);

    const p = (f: string) => join(dest, 'usr/local', f);
    for (const [name] of Object.entries(packageJson().bin)) {
      const launcher = p(`${programDir(name)}/${name}`);
      expect(readFileSync(launcher, 'utf8').split('\n')[0], name).toBe('#!/usr/local/bin/node');
      expect(mode(launcher), name).toBe(0o755);
    }
    for (const f of readdirSync(p('libexec/hyperv'))) expect(mode(p(`libexec/hyperv/${f}`)), f).toBe(0o755);
    for (const [rc, program] of [['hv_kvpd', 'hv_kvp_daemon'], ['hv_vssd', 'hv_vss_daemon'], ['hvguestd', 'hvguestd']]) {
      const text = readFileSync(p(`etc/rc.d/${rc}`), 'utf8');
      expect(text).not.toContain('%%');
      expect(text).toMatch(new RegExp(`^command=/usr/local/sbin/${program}$`, 'm'));
      expect(mode(p(`etc/rc.d/${rc}`))).toBe(0o755);
    }
    // Man pages compressed, and still the page.
    for (const f of readdirSync(join(ROOT, 'build/man'))) {
      const gz = p(`share/man/man${f.split('.').pop()}/${f}.gz`);
      expect(gunzipSync(readFileSync(gz)).equals(readFileSync(join(ROOT, 'build/man', f))), f).toBe(true);
    }
    expect(existsSync(p('lib/hvguest/node_modules/@koromix/koffi-freebsd-x64/freebsd_x64/koffi.node'))).toBe(true);
  });

  it('FreeBSD layout: every program a devd rule runs from PREFIX is installed there and executable (issue #6)', async (ctx) => {
    if (noFreebsd) ctx.skip(`koffi's FreeBSD binary could not be fetched: ${noFreebsd}`);
    const dest = join(tmp.dir, 'freebsd-devd');
    await install(dest, 'LAYOUT=freebsd', 'MACHINE_ARCH=amd64');
    const devd = join(dest, 'usr/local/etc/devd');
    const actions: string[] = [];
    for (const f of readdirSync(devd)) {
      // Each shell command of an action (an action may run several, separated by ';').
      for (const a of readFileSync(join(devd, f), 'utf8').matchAll(/^\s*action\s+"([^"]+)"/gm)) actions.push(...a[1]!.split(';').map((c) => c.trim().split(/\s+/)[0]!));
    }
    const ours = actions.filter((a) => a.startsWith('/usr/local/'));
    expect(ours).toEqual(expect.arrayContaining(['/usr/local/libexec/hyperv/hyperv_vfup', '/usr/local/libexec/hyperv/hyperv_vfattach']));
    for (const a of ours) expect(mode(join(dest, a)) & 0o111, a).toBe(0o111);
    // The rest are base-system programs (service(8)), not ours to install.
    for (const a of actions.filter((x) => !x.startsWith('/usr/local/'))) expect(a).toMatch(/^\/usr\/sbin\/service$/);
    // The VF wrappers call the hvctl that is installed.
    for (const w of ['hyperv_vfup', 'hyperv_vfattach']) {
      const hvctl = /HVCTL:-([^}]+)\}/.exec(readFileSync(join(dest, 'usr/local/libexec/hyperv', w), 'utf8'))?.[1];
      expect(hvctl, w).toBe('/usr/local/bin/hvctl');
      expect(existsSync(join(dest, hvctl!))).toBe(true);
    }
  });

  it('Linux layout: /usr/sbin, /usr/bin, /usr/lib/hvguest, /usr/libexec/hypervkvpd, units, udev rule, man pages', async () => {
    const dest = join(tmp.dir, 'linux');
    await install(dest, 'LAYOUT=linux', 'MACHINE_ARCH=x86_64');
    const bundled = listFiles(join(bundle, 'hvguest')).filter((f) => !f.startsWith('node_modules/@koromix/') || f.startsWith('node_modules/@koromix/koffi-linux-x64/'));
    const dir = (d: string) => readdirSync(join(ROOT, d)).filter((f) => !f.endsWith('.ts'));
    const want = [
      ...Object.keys(packageJson().bin).map((n) => `usr/${programDir(n)}/${n}`),
      ...bundled.map((f) => `usr/lib/hvguest/${f}`),
      ...(HAVE_CC ? [GUARD] : []),
      'usr/lib/hvguest/install-manifest',
      ...dir('build/scripts/linux').map((f) => `usr/libexec/hypervkvpd/${f}`),
      ...dir('build/linux/systemd').map((f) => `usr/lib/systemd/system/${f}`),
      ...dir('build/linux/udev').map((f) => `usr/lib/udev/rules.d/${f}`),
      ...dir('build/man').map((f) => `usr/share/man/man${f.split('.').pop()}/${f}.gz`),
    ].sort();
    expect(listFiles(dest)).toEqual(want);
    expect(want).toEqual(expect.arrayContaining(['usr/lib/systemd/system/hv-kvp-daemon.service', 'usr/lib/systemd/system/hvguestd.service', 'usr/lib/udev/rules.d/70-hvguest.rules', 'usr/sbin/hv_kvp_daemon', 'usr/sbin/hvguestd']));
    expect(readFileSync(join(dest, 'usr/sbin/hv_kvp_daemon'), 'utf8').split('\n')[0]).toBe('#!/usr/bin/node');
    expect(readFileSync(join(dest, 'usr/lib/systemd/system/hv-kvp-daemon.service'), 'utf8')).toMatch(/^ExecStart=\/usr\/sbin\/hv_kvp_daemon -n$/m);
    expect(readFileSync(join(dest, 'usr/lib/systemd/system/hvguestd.service'), 'utf8')).toMatch(/^ExecStart=\/usr\/sbin\/hvguestd -n$/m);
    if (HAVE_CC) {
      // Beside the bundles, where the VSS daemon looks for it; a program that speaks the guard protocol.
      expect(mode(join(dest, GUARD))).toBe(0o755);
      const g = spawnSync(join(dest, GUARD), [], { input: '{"thaw":[]}\n', encoding: 'utf8' });
      expect(g.status).toBe(0);
      expect(g.stdout).toBe('ready\nok\n');
    }
  });

  it('Linux layout without a usable C compiler, or cross-installing with the default one: one line, no native guard, nothing else changes', async () => {
    const dest = join(tmp.dir, 'linux-no-cc');
    const r = await install(dest, 'LAYOUT=linux', 'MACHINE_ARCH=x86_64', 'CC=no-such-cc');
    expect(r.stdout).toMatch(/^hvguest: no C compiler \(no-such-cc\): the native freeze guard is not installed \(the VSS daemon will use the node guard\)$/m);
    const files = listFiles(dest);
    expect(files).not.toContain(GUARD);
    expect(files).toContain('usr/lib/hvguest/guard-main.js');
    expect(readFileSync(join(dest, 'usr/lib/hvguest/install-manifest'), 'utf8')).not.toContain('hvguest-freeze-guard');
    // The default cc builds for this machine, not for another architecture.
    const other = process.arch === 'arm64' ? 'x86_64' : 'aarch64';
    const cross = await install(join(tmp.dir, 'linux-cross'), 'LAYOUT=linux', `MACHINE_ARCH=${other}`, 'WITH_HYPERV=yes', `KOFFI_PLATFORM=linux-${process.arch}`);
    expect(cross.stdout).toMatch(/^hvguest: installing for Linux on \S+ from \S+ on \S+: the native freeze guard is not installed .*set CC to a compiler for the target$/m);
    expect(listFiles(join(tmp.dir, 'linux-cross'))).not.toContain(GUARD);
    if (!HAVE_CC) return;
    // An upgrade that can no longer build it removes the one an earlier install put.
    const up = join(tmp.dir, 'linux-cc-then-none');
    await install(up, 'LAYOUT=linux', 'MACHINE_ARCH=x86_64');
    expect(listFiles(up)).toContain(GUARD);
    const again = await install(up, 'LAYOUT=linux', 'MACHINE_ARCH=x86_64', 'CC=no-such-cc');
    expect(again.stdout).toContain(`removed ${join(up, GUARD)}`);
    expect(listFiles(up)).not.toContain(GUARD);
  });

  it('another PREFIX reaches the files that name installed paths (units, rc.d, devd, wrappers)', async (ctx) => {
    const lin = join(tmp.dir, 'linux-opt');
    await install(lin, 'LAYOUT=linux', 'PREFIX=/opt/hv', 'MACHINE_ARCH=x86_64');
    expect(readFileSync(join(lin, 'opt/hv/lib/systemd/system/hv-kvp-daemon.service'), 'utf8')).toMatch(/^ExecStart=\/opt\/hv\/sbin\/hv_kvp_daemon -n$/m);
    expect(readFileSync(join(lin, 'opt/hv/lib/systemd/system/hvguestd.service'), 'utf8')).toMatch(/^ExecStart=\/opt\/hv\/sbin\/hvguestd -n$/m);
    // Other programs' paths stay where the system has them.
    expect(readFileSync(join(lin, 'opt/hv/libexec/hypervkvpd/hv_set_ifconfig'), 'utf8')).toBe(readFileSync(join(ROOT, 'build/scripts/linux/hv_set_ifconfig'), 'utf8'));
    if (noFreebsd) ctx.skip(`koffi's FreeBSD binary could not be fetched: ${noFreebsd}`);
    const bsd = join(tmp.dir, 'freebsd-opt');
    await install(bsd, 'LAYOUT=freebsd', 'PREFIX=/opt/hv', 'MACHINE_ARCH=amd64');
    expect(readFileSync(join(bsd, 'opt/hv/etc/rc.d/hv_kvpd'), 'utf8')).toMatch(/^command=\/opt\/hv\/sbin\/hv_kvp_daemon$/m);
    expect(readFileSync(join(bsd, 'opt/hv/etc/rc.d/hvguestd'), 'utf8')).toMatch(/^command=\/opt\/hv\/sbin\/hvguestd$/m);
    expect(readFileSync(join(bsd, 'opt/hv/etc/devd/hvguest-vf.conf'), 'utf8')).toContain('action "/opt/hv/libexec/hyperv/hyperv_vfup $subsystem"');
    expect(readFileSync(join(bsd, 'opt/hv/libexec/hyperv/hyperv_vfup'), 'utf8')).toContain('HVCTL=${HVCTL:-/opt/hv/bin/hvctl}');
  });

  it('make uninstall removes everything install put, for both layouts, and leaves foreign files alone', async () => {
    for (const layout of noFreebsd ? ['linux'] : ['linux', 'freebsd']) {
      const dest = join(tmp.dir, `un-${layout}`);
      await install(dest, `LAYOUT=${layout}`, 'MACHINE_ARCH=amd64');
      expect(listFiles(dest).length).toBeGreaterThan(20);
      const r = await make(cmd, ['uninstall', `DESTDIR=${dest}`, `LAYOUT=${layout}`, 'MACHINE_ARCH=amd64']);
      expect(r.code, r.stderr).toBe(0);
      expect(listFiles(dest), layout).toEqual([]);
      expect(listDirs(dest), layout).toEqual([]);
    }
    // No DESTDIR (a live system; here a PREFIX in /tmp): every file goes, but of the directories only
    // hvguest's own, never shared ones such as bin/ or share/man/man8.
    const live = join(tmp.dir, 'live-prefix');
    await install('', 'LAYOUT=linux', `PREFIX=${live}`, 'MACHINE_ARCH=amd64');
    expect(listFiles(live).length).toBeGreaterThan(20);
    expect((await make(cmd, ['uninstall', 'LAYOUT=linux', `PREFIX=${live}`, 'MACHINE_ARCH=amd64'])).code).toBe(0);
    expect(listFiles(live)).toEqual([]);
    const left = listDirs(live);
    expect(left).toEqual(expect.arrayContaining(['bin', 'sbin', 'lib', 'lib/systemd/system', 'share/man/man8']));
    expect(left.filter((d) => d.includes('hvguest') || d.includes('hypervkvpd'))).toEqual([]);

    // An administrator's file next to ours (the hyperv_vfup.<hnX> override) survives, with its directory.
    const dest = join(tmp.dir, 'un-foreign');
    await install(dest, 'LAYOUT=linux', 'MACHINE_ARCH=amd64');
    const mine = join(dest, 'usr/libexec/hypervkvpd/local-override');
    cpSync(join(ROOT, 'package.json'), mine);
    expect((await make(cmd, ['uninstall', `DESTDIR=${dest}`, 'LAYOUT=linux', 'MACHINE_ARCH=amd64'])).code).toBe(0);
    expect(listFiles(dest)).toEqual(['usr/libexec/hypervkvpd/local-override']);
  });

  it('DESTDIR may contain spaces; a reinstall removes what an earlier install put and this one lacks', async () => {
    const dest = join(tmp.dir, 'with space', 'stage dir');
    await install(dest, 'LAYOUT=linux', 'MACHINE_ARCH=amd64');
    const manifest = join(dest, 'usr/lib/hvguest/install-manifest');
    const listed = () => readFileSync(manifest, 'utf8').trim().split('\n').map((p) => p.slice(1)).sort();
    const first = listed();
    expect(listFiles(dest)).toEqual(first);
    // What an older version installed and recorded, and this version no longer ships.
    const old = 'usr/libexec/hypervkvpd/hv_retired_helper';
    writeFileSync(join(dest, old), '#!/bin/sh\n');
    writeFileSync(manifest, `/${old}\n${readFileSync(manifest, 'utf8')}`);
    const again = await install(dest, 'LAYOUT=linux', 'MACHINE_ARCH=amd64');
    expect(again.stdout).toContain(`removed ${join(dest, old)}`);
    expect(listFiles(dest)).toEqual(first);
    expect(listed()).toEqual(first);
    const un = await make(cmd, ['uninstall', `DESTDIR=${dest}`, 'LAYOUT=linux', 'MACHINE_ARCH=amd64']);
    expect(un.code, un.stderr).toBe(0);
    expect(listFiles(join(tmp.dir, 'with space'))).toEqual([]);
  });

  const asNobody = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
  it.skipIf(!asNobody)(`not root and no DESTDIR: one clear line naming the directory, status 77, nothing written${asNobody ? '' : ' (skipped: needs root and setpriv to run as nobody)'}`, async () => {
    // A root-owned PREFIX that nobody may read but not write, as /usr/local is to a user.
    const prefix = join(tmp.dir, 'root-owned');
    mkdirSync(join(prefix, 'sbin'), { recursive: true });
    for (const d of [tmp.dir, prefix, join(prefix, 'sbin')]) chmodSync(d, 0o755);
    spawnSync('chmod', ['-R', 'a+rX', bundle]);
    const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', 'cd "$0" && exec "$@"', ROOT, cmd, 'install', 'LAYOUT=linux', `PREFIX=${prefix}`, `BUNDLE=${bundle}`, 'MACHINE_ARCH=amd64'], { env: cleanEnv() });
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^hvguest: cannot write to ${prefix}\\S* \\(for ${prefix}/\\S+\\): run \`make install\` as root, or stage into DESTDIR=DIR$`, 'm'));
    expect(r.stderr).not.toMatch(/Permission denied/);
    expect(listFiles(prefix)).toEqual([]);
    expect(listDirs(prefix)).toEqual(['sbin']);
  });

  it('uninstall without hvguest\'s manifest removes nothing, not even files with hvguest\'s names (another package\'s)', async () => {
    // Debian's hyperv-daemons: the same daemon path and unit name.
    const dest = join(tmp.dir, 'other-package');
    const theirs = ['usr/lib/systemd/system/hv-kvp-daemon.service', 'usr/sbin/hv_kvp_daemon'];
    for (const f of theirs) {
      mkdirSync(join(dest, f, '..'), { recursive: true });
      writeFileSync(join(dest, f), 'not hvguest\n');
    }
    const r = await make(cmd, ['uninstall', `DESTDIR=${dest}`, 'LAYOUT=linux', 'MACHINE_ARCH=amd64']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/hvguest is not installed .* removing nothing/);
    expect(listFiles(dest)).toEqual(theirs);
  });
});

/** Run the staged programs from a copy of the staged tree in a fresh /tmp directory. */
describe.skipIf(!m)(`staged programs run with no checkout in reach${m ? '' : ' (skipped: no make)'}`, () => {
  const cmd = m?.cmd ?? 'make';
  let tmp: { dir: string; remove: () => void };
  let bundle: string;
  let sim: Proc | undefined;

  beforeAll(async () => {
    tmp = tempDir('hvguest-staged-');
    bundle = join(tmp.dir, 'bundle');
    const r = await make(cmd, ['all', `BUNDLE=${bundle}`, 'KOFFI_PLATFORMS=linux-x64']);
    if (r.code !== 0) throw new Error(`make all failed: ${r.stderr}`);
  }, 300000);

  afterEach(async () => {
    await killAll();
    sim = undefined;
  });
  afterAll(() => tmp?.remove());

  /** Install LAYOUT with this node as the #! interpreter, then move the tree elsewhere. */
  async function staged(layout: 'linux' | 'freebsd'): Promise<string> {
    const dest = join(tmp.dir, `dest-${layout}`);
    const r = await make(cmd, ['install', `DESTDIR=${dest}`, `BUNDLE=${bundle}`, `LAYOUT=${layout}`, 'MACHINE_ARCH=amd64', `NODEBIN=${process.execPath}`, 'KOFFI_PLATFORM=linux-x64']);
    expect(r.code, r.stderr).toBe(0);
    const moved = join(tmp.dir, `moved-${layout}`);
    cpSync(dest, moved, { recursive: true });
    return moved;
  }

  const env = () => cleanEnv({ HVGUEST_FREEZE_ALLOW: '/nonexistent/hvguest-tests-may-freeze-nothing' });

  for (const [layout, flavor, prefix] of [
    ['linux', 'linux', 'usr'],
    ['freebsd', 'freebsd', 'usr/local'],
  ] as const) {
    it(`${layout} layout (flavor ${flavor}): hvsim serve, hv_kvp_daemon, hv_vss_daemon and hvctl from the staged tree`, async () => {
      const root = await staged(layout);
      const p = (f: string) => join(root, prefix, f);
      const work = join(tmp.dir, `work-${layout}`);
      const simDir = join(work, 'sim');
      const pools = join(work, 'pools');
      mkdirSync(simDir, { recursive: true });
      mkdirSync(pools, { recursive: true });
      const node = flavor === 'freebsd' ? { kvp: 'hv_kvp_dev', vss: 'hv_fsvss_dev' } : { kvp: 'vmbus/hv_kvp', vss: 'vmbus/hv_vss' };
      // Launchers run directly: their #! line is this node; NODE_PATH unset, cwd outside the checkout.
      const go = (prog: string, args: string[]) => start('sh', ['-c', 'cd "$0" && exec "$@"', work, prog, ...args], env());
      const once = (prog: string, args: string[]) => run('sh', ['-c', 'cd "$0" && exec "$@"', work, prog, ...args], { env: env() });
      const host = async (...args: string[]) => {
        const r = await once(p('bin/hvsim'), ['--dir', simDir, '--json', ...args]);
        return { code: r.code, out: r.stdout ? JSON.parse(r.stdout) : undefined, err: r.stderr };
      };

      sim = go(p('bin/hvsim'), ['serve', '--flavor', flavor, '--dir', simDir]);
      await sim.waitFor(/^hvsim: ready/);
      const kvp = go(p('sbin/hv_kvp_daemon'), ['-n', '--flavor', flavor, '--device', join(simDir, node.kvp), '--pool-dir', pools, '--helper-dir', p(layout === 'linux' ? 'libexec/hypervkvpd' : 'libexec/hyperv'), '--config-dir', join(work, 'cfg')]);
      // Without --dry-run on Linux the daemon starts its freeze guard (the installed native one, else the bundled guard-main.js) on the first CHECK.
      const vss = go(p('sbin/hv_vss_daemon'), ['-n', ...(flavor === 'freebsd' ? ['--dry-run'] : []), '--flavor', flavor, '--device', join(simDir, node.vss), '--state-file', join(work, 'vss.state'), '--hooks-dir', join(work, 'no-hooks')]);

      let status: { kvp?: { registered?: boolean }; vss?: { registered?: boolean } } | undefined;
      for (let i = 0; i < 200 && !(status?.kvp?.registered && status?.vss?.registered); i++) {
        status = (await host('status')).out;
        if (!status?.kvp?.registered || !status?.vss?.registered) await new Promise((r) => setTimeout(r, 50));
      }
      expect(status, `kvp: ${kvp.stderr()} vss: ${vss.stderr()}`).toMatchObject({ kvp: { registered: true }, vss: { registered: true } });

      // A guest tool (staged hvctl) publishes a key; the host reads it through the staged daemon.
      const set = await once(p('bin/hvctl'), ['kvp', 'set', 'PackagedBy', 'make install', '--pool', 'guest', '--pool-dir', pools, '--flavor', flavor]);
      expect(set.code, set.stderr).toBe(0);
      const get = await host('kvp', 'get', 'guest', 'PackagedBy');
      expect(get.code, get.err).toBe(0);
      expect(get.out).toMatchObject({ status: 0, value: 'make install' });
      if (flavor === 'freebsd') {
        // The version comes from the package.json installed beside the bundles.
        const ver = await host('kvp', 'enum', 'auto', '1');
        expect(ver.out).toMatchObject({ key: 'IntegrationServicesVersion', value: `hvguest ${packageJson().version}` });
      }
      const check = await host('vss', 'check');
      expect(check.code, check.err + vss.stderr()).toBe(0);
      // The CHECK started the freeze guard: on Linux the native one installed beside the bundles.
      if (flavor === 'linux') expect(vss.stderr()).toMatch(HAVE_CC ? /freeze guard started: native, pid \d+/ : /freeze guard started: node, pid \d+/);

      expect(await stop(kvp)).toBe(0);
      expect(await stop(vss)).toBe(0);
      expect(await stop(sim)).toBe(0);
    });
  }

  it('FreeBSD layout, as rc.subr runs it: detaches, writes the pidfile, and ps shows "INTERPRETER COMMAND ARGS" from the #! line, even when node is a symlink', async () => {
    // rc.d runs `$command --pidfile $pidfile` and later finds the daemon with
    // check_pidfile: the pid's ps command must start with the launcher's #!
    // interpreter and the command path (rc.subr's _find_processes). A node
    // reached through a symlink (NODEBIN) must not show up resolved.
    const links = join(tmp.dir, 'links');
    mkdirSync(links, { recursive: true });
    const nodebin = join(links, 'node');
    symlinkSync(process.execPath, nodebin);
    const dest = join(tmp.dir, 'dest-rcd');
    const r = await make(cmd, ['install', `DESTDIR=${dest}`, `BUNDLE=${bundle}`, 'LAYOUT=freebsd', 'MACHINE_ARCH=amd64', `NODEBIN=${nodebin}`, 'KOFFI_PLATFORM=linux-x64']);
    expect(r.code, r.stderr).toBe(0);
    const command = join(dest, 'usr/local/sbin/hv_kvp_daemon');
    expect(readFileSync(command, 'utf8').split('\n')[0]).toBe(`#!${nodebin}`);
    const work = join(tmp.dir, 'work-rcd');
    const simDir = join(work, 'sim');
    mkdirSync(simDir, { recursive: true });
    sim = start(join(dest, 'usr/local/bin/hvsim'), ['serve', '--flavor', 'freebsd', '--dir', simDir], env());
    await sim.waitFor(/^hvsim: ready/);
    const pidfile = join(work, 'hv_kvp_daemon.pid');
    const args = ['--pidfile', pidfile, '--flavor', 'freebsd', '--device', join(simDir, 'hv_kvp_dev'), '--pool-dir', join(work, 'pools'), '--config-dir', join(work, 'cfg')];
    let pid = 0;
    try {
      const first = await run(command, args, { env: env() });
      expect(first.code, first.stderr).toBe(0);
      pid = Number(readFileSync(pidfile, 'utf8').trim());
      expect(pid).toBeGreaterThan(0);
      const ps = await run('ps', ['-ww', '-o', 'args=', '-p', String(pid)]);
      expect(ps.stdout.trim()).toBe(`${nodebin} ${command} ${args.join(' ')}`);
      // quietstart racing a running daemon: refused, the first one keeps running.
      const second = await run(command, args, { env: env() });
      expect(second.code).toBe(75);
      expect(() => process.kill(pid, 0)).not.toThrow();
      // rc.subr's stop: SIGTERM to the pid, then wait for it; the daemon removes its pidfile.
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100 && existsSync(pidfile); i++) await new Promise((res) => setTimeout(res, 50));
      expect(existsSync(pidfile)).toBe(false);
      pid = 0;
    } finally {
      if (pid) process.kill(pid, 'SIGKILL');
    }
  });

  it('the bundles reach nothing outside the staged tree: no node_modules of the checkout, only Node built-ins and koffi', () => {
    for (const f of readdirSync(join(bundle, 'hvguest')).filter((x) => x.endsWith('.js'))) {
      const text = readFileSync(join(bundle, 'hvguest', f), 'utf8');
      const imports = [...text.matchAll(/^import\s[^'"]*['"]([^'"]+)['"]/gm)].map((x) => x[1]!);
      for (const i of imports) expect(i, `${f} imports ${i}`).toMatch(/^node:|^(fs|path|os|util|events|stream|child_process|worker_threads|module|url|crypto|net|tty|zlib|buffer|assert|string_decoder|diagnostics_channel|async_hooks|timers)$/);
      expect(text, f).not.toContain(ROOT);
      for (const dev of ['vitest', 'fast-check', 'typescript', 'esbuild']) expect(text.includes(`node_modules/${dev}/`), `${f} bundles ${dev}`).toBe(false);
    }
  });
});
