/**
 * The service files hvguest ships, checked with the tools that read them:
 * - every man page in build/man lints clean under mandoc;
 * - every shell script in the tree (found by its #! line) parses under sh -n;
 * - the systemd units pass `systemd-analyze verify` against a throw-away
 *   root holding copies of the programs they run, and say what the daemons
 *   need (device binding, early KVP, no mount namespace for VSS);
 * - the udev rule tags exactly the nodes the units are bound to;
 * - the FreeBSD rc.d scripts: FreeBSD's rc.subr is not available here, so
 *   start/stop are not run. Instead each script is evaluated by /bin/sh with
 *   a stub in place of rc.subr that only records what the script defines
 *   (name, rcvar, command, pidfile, ...), which must agree with the daemon's
 *   own defaults, and the script's start precondition is run for real;
 * - the devd rules parse (test/lib/devd-conf.ts, shared with the VF rules)
 *   and every action runs an rc.d script this build ships, by service(8).
 * Tools that are missing make their tests skip with the reason in the name.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GUESTD_PIDFILE } from '../guestd/main.js';
import { KVP_DEFAULTS } from '../kvp/defaults.js';
import { VSS_DEFAULTS } from '../vss/defaults.js';
import { parseDevd } from './lib/devd-conf.js';
import { ROOT, tempDir } from './lib/procs.js';

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const sh = (args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) =>
  spawnSync('/bin/sh', args, { encoding: 'utf8', env: opts.env ?? { PATH: '/usr/bin:/bin' }, ...(opts.input ? { input: opts.input } : {}) });

const BIN: Record<string, string> = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).bin;
const MAN = join(ROOT, 'build/man');
const UNITS = join(ROOT, 'build/linux/systemd');
const UDEV = join(ROOT, 'build/linux/udev/70-hvguest.rules');
const RCD = join(ROOT, 'build/freebsd/sysutils/hvguest/files');
const DEVD = join(ROOT, 'build/freebsd/devd/hvguest.conf');

/**
 * The daemons and the facts their service files must agree with. `device`
 * is the node a daemon cannot do without (hvguestd: KVP's; VSS is optional
 * there, --no-vss); `combined` marks hvguestd, the alternative to the two
 * separate daemons, which udev does not name and which is enabled instead.
 * `startOverrides`: what else the start precondition needs to pass here.
 */
const DAEMONS = [
  { program: 'hv_kvp_daemon', rc: 'hv_kvpd', unit: 'hv-kvp-daemon.service', freebsd: KVP_DEFAULTS.freebsd, linux: KVP_DEFAULTS.linux, combined: false, startOverrides: '' },
  { program: 'hv_vss_daemon', rc: 'hv_vssd', unit: 'hv-vss-daemon.service', freebsd: VSS_DEFAULTS.freebsd, linux: VSS_DEFAULTS.linux, combined: false, startOverrides: '' },
  {
    program: 'hvguestd',
    rc: 'hvguestd',
    unit: 'hvguestd.service',
    freebsd: { pidfile: GUESTD_PIDFILE.freebsd, device: KVP_DEFAULTS.freebsd.device },
    linux: { pidfile: GUESTD_PIDFILE.linux, device: KVP_DEFAULTS.linux.device },
    combined: true,
    startOverrides: 'hvguestd_vss_device=/dev/null; ',
  },
] as const;
/** hv_kvp_daemon and hv_vss_daemon: one device node each, started by udev and devd directly. */
const SEPARATE = DAEMONS.filter((d) => !d.combined);

const scratch = tempDir('hvguest-pkgfiles-');
afterAll(() => scratch.remove());

// ---------------------------------------------------------------- man pages

const manPages = readdirSync(MAN).filter((f) => /\.[1-9]$/.test(f));

describe.skipIf(!has('mandoc'))(`man pages: mandoc -Tlint${has('mandoc') ? '' : ' (skipped: mandoc is not installed)'}`, () => {
  it('finds the pages of every program in package.json "bin"', () => {
    for (const p of Object.keys(BIN)) expect(manPages.filter((f) => f.replace(/\.[18]$/, '') === p), `build/man/${p}.1 or .8`).toHaveLength(1);
  });

  it('every page has the sections of issue #7, in mdoc order', () => {
    const want = ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'FILES', 'EXIT STATUS', 'EXAMPLES', 'SEE ALSO', 'HISTORY'];
    for (const page of manPages) {
      const have = [...readFileSync(join(MAN, page), 'utf8').matchAll(/^\.Sh (.+)$/gm)].map((m) => m[1]!);
      expect(have.filter((h) => want.includes(h)), page).toEqual(want);
    }
  });

  /** mandoc's machine-dependent findings: cross-references the local man database lacks (FreeBSD pages on Linux), and the database's age. */
  const machineDependent = (line: string) => /referenced manual not found|mandoc\.db/.test(line);

  for (const page of manPages) {
    it(`${page}: mandoc -Tlint -W warning reports nothing and exits 0`, () => {
      const w = spawnSync('mandoc', ['-Tlint', '-W', 'warning', join(MAN, page)], { encoding: 'utf8' });
      expect(w.stdout + w.stderr).toBe('');
      expect(w.status).toBe(0);
    });

    it(`${page}: mandoc -Tlint at style level reports nothing but cross-references this machine's man database lacks`, () => {
      const w = spawnSync('mandoc', ['-Tlint', '-W', 'style', join(MAN, page)], { encoding: 'utf8' });
      const findings = (w.stdout + w.stderr).split('\n').filter((l) => l !== '' && !machineDependent(l));
      expect(findings).toEqual([]);
    });
  }

  it('the style check can fail: FreeBSD spelled out instead of .Fx is reported', () => {
    const bad = join(scratch.dir, 'style.8');
    writeFileSync(bad, '.Dd November 25, 2026\n.Dt STYLE 8\n.Os\n.Sh NAME\n.Nm style\n.Nd x\n.Sh DESCRIPTION\nRuns on FreeBSD.\n');
    const w = spawnSync('mandoc', ['-Tlint', '-W', 'style', bad], { encoding: 'utf8' });
    expect((w.stdout + w.stderr).split('\n').filter((l) => l !== '' && !machineDependent(l)).join('\n')).toMatch(/consider using OS macro/);
  });

  it('the check can fail: a page with a broken list and sections out of order is reported', () => {
    const bad = join(scratch.dir, 'bad.8');
    writeFileSync(bad, '.Dd November 25, 2026\n.Dt BAD 8\n.Os\n.Sh NAME\n.Nm bad\n.Nd x\n.Sh SEE ALSO\n.Sh DESCRIPTION\n.Bl -tag\n.It x\n');
    const r = spawnSync('mandoc', ['-Tlint', '-W', 'warning', bad], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/out of conventional order|missing/);
  });
});

// ------------------------------------------------------------ shell scripts

/** Every file under the tree whose first line is a #! for sh/bash, or that ends in .sh (node_modules, dist, .git excluded). */
function shellScripts(): { path: string; shell: string }[] {
  const out: { path: string; shell: string }[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (['node_modules', 'dist', '.git'].includes(e.name)) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const head = readFileSync(p, 'utf8').slice(0, 200).split('\n')[0]!;
        const m = /^#!\s*(?:\/usr\/bin\/env\s+)?(?:\S*\/)?(sh|bash|dash)\b/.exec(head);
        if (m) out.push({ path: p, shell: m[1] === 'bash' ? 'bash' : 'sh' });
        else if (e.name.endsWith('.sh')) out.push({ path: p, shell: 'sh' });
      }
    }
  };
  walk(ROOT);
  return out;
}

/** The directories build/mk/layout.sh gives a layout at its default PREFIX. */
function layoutDirs(layout: 'freebsd' | 'linux'): Record<string, string> {
  const vars = ['PREFIX', 'HELPERDIR', 'RCDIR', 'DEVDDIR', 'SYSTEMDUNITDIR', 'UDEVRULESDIR'];
  const r = sh(['-c', `cd "$0" && . build/mk/hyperv.sh && . build/mk/layout.sh && hv_layout && for v in ${vars.join(' ')}; do eval "echo $v=\\$$v"; done`, ROOT], {
    env: { PATH: '/usr/bin:/bin', LAYOUT: layout, MACHINE_ARCH: 'amd64' },
  });
  expect(r.status, r.stderr).toBe(0);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

describe('man pages name the installed service files where make install puts them', () => {
  const bsd = layoutDirs('freebsd');
  const lin = layoutDirs('linux');
  const shipped = new Map<string, string>([
    ...readdirSync(RCD).filter((f) => f.endsWith('.in')).map((f) => [f.slice(0, -3), `${bsd.RCDIR}/${f.slice(0, -3)}`] as [string, string]),
    ...readdirSync(dirname(DEVD)).map((f) => [f, `${bsd.DEVDDIR}/${f}`] as [string, string]),
    ...readdirSync(UNITS).map((f) => [f, `${lin.SYSTEMDUNITDIR}/${f}`] as [string, string]),
    ...readdirSync(dirname(UDEV)).map((f) => [f, `${lin.UDEVRULESDIR}/${f}`] as [string, string]),
  ]);

  it('the layouts are read (not empty)', () => {
    expect(lin.SYSTEMDUNITDIR).toBe('/usr/lib/systemd/system');
    expect(bsd.RCDIR).toBe('/usr/local/etc/rc.d');
    expect(shipped.size).toBeGreaterThanOrEqual(6);
  });

  for (const page of manPages) {
    it(`${page}: every shipped rc.d script, devd file, unit and udev rule in FILES has its installed path`, () => {
      const files = /^\.Sh FILES\n([\s\S]*?)(?=^\.Sh )/m.exec(readFileSync(join(MAN, page), 'utf8'))?.[1] ?? '';
      for (const m of files.matchAll(/\bPa (\/\S+)/g)) {
        const path = m[1]!;
        const want = shipped.get(basename(path));
        if (want) expect(path, `${page} FILES`).toBe(want);
        else if (/hyperv(kvpd)?$/.test(path) && path.includes('/libexec/')) expect([bsd.HELPERDIR, lin.HELPERDIR], `${page} FILES`).toContain(path);
      }
    });
  }
});

describe('shell scripts: sh -n', () => {
  const scripts = shellScripts();

  it('the scan finds the rc.d scripts and the helper scripts (it is not empty by accident)', () => {
    const rel = scripts.map((s) => relative(ROOT, s.path));
    for (const d of DAEMONS) expect(rel).toContain(`build/freebsd/sysutils/hvguest/files/${d.rc}.in`);
    for (const f of ['hv_set_ifconfig', 'hv_get_dns_info', 'hv_get_dhcp_info']) {
      expect(rel).toContain(`build/scripts/linux/${f}`);
      expect(rel).toContain(`build/scripts/freebsd/${f}`);
    }
  });

  it('every one parses', () => {
    const failed = scripts
      .map((s) => ({ ...s, r: spawnSync(s.shell === 'bash' ? 'bash' : '/bin/sh', ['-n', s.path], { encoding: 'utf8' }) }))
      .filter((s) => s.r.status !== 0)
      .map((s) => `${relative(ROOT, s.path)}: ${s.r.stderr.trim()}`);
    expect(failed).toEqual([]);
  });

  it('the check can fail: a script with an unclosed if is rejected', () => {
    const bad = join(scratch.dir, 'bad.sh');
    writeFileSync(bad, '#!/bin/sh\nif true; then\n  echo x\n');
    expect(sh(['-n', bad]).status).not.toBe(0);
  });
});

// ------------------------------------------------------------ systemd units

/** A unit file as section -> key -> values (a key may repeat; comments and blank lines dropped). */
function readUnit(path: string): Record<string, Record<string, string[]>> {
  const unit: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      unit[section] ??= {};
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !section) throw new Error(`${basename(path)}: not a unit line: ${line}`);
    (unit[section]![kv[1]!] ??= []).push(kv[2]!);
  }
  return unit;
}
const words = (v: string[] | undefined) => (v ?? []).flatMap((x) => x.split(/\s+/)).filter(Boolean);

/** systemd's name for the device unit of a /dev path (systemd-escape --path). */
const deviceUnit = (path: string) => `${path.replace(/^\//, '').replace(/-/g, '\\x2d').replace(/\//g, '-')}.device`;

/** A throw-away root for systemd-analyze: the units, the targets they name, and the launchers as the ExecStart programs. */
function verifyRoot(): string {
  const root = join(scratch.dir, 'sysroot');
  const sysdir = join(root, 'lib/systemd/system');
  mkdirSync(sysdir, { recursive: true });
  mkdirSync(join(root, 'usr/sbin'), { recursive: true });
  for (const f of readdirSync('/lib/systemd/system').filter((n) => n.endsWith('.target'))) copyFileSync(join('/lib/systemd/system', f), join(sysdir, f));
  for (const f of readdirSync(UNITS)) copyFileSync(join(UNITS, f), join(sysdir, f));
  for (const d of DAEMONS) {
    copyFileSync(join(ROOT, BIN[d.program]!), join(root, 'usr/sbin', d.program));
    chmodSync(join(root, 'usr/sbin', d.program), 0o755);
  }
  return root;
}

const analyze = has('systemd-analyze') && existsSync('/lib/systemd/system/sysinit.target');

describe('systemd units', () => {
  it('one unit per daemon and nothing else', () => {
    expect(readdirSync(UNITS).sort()).toEqual(DAEMONS.map((d) => d.unit).sort());
  });

  describe.skipIf(!analyze)(`systemd-analyze verify${analyze ? '' : ' (skipped: systemd-analyze or the systemd unit directory is missing)'}`, () => {
    const root = analyze ? verifyRoot() : '';
    const verify = (unitPath: string) => spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, unitPath], { encoding: 'utf8' });

    for (const d of DAEMONS) {
      it(`${d.unit}: no message, exit 0`, () => {
        const r = verify(join(root, 'lib/systemd/system', d.unit));
        expect(r.stdout + r.stderr).toBe('');
        expect(r.status).toBe(0);
      });
    }

    it('the check can fail: a missing ExecStart program and an unknown key are reported', () => {
      const bad = join(root, 'lib/systemd/system/hvguest-bad.service');
      writeFileSync(bad, '[Service]\nExecStart=/usr/sbin/hvguest-no-such-program -n\nProtectHomes=yes\n');
      const r = verify(bad);
      expect(r.stdout + r.stderr).toMatch(/not executable/);
      expect(r.stdout + r.stderr).toMatch(/Unknown key/);
    });
  });

  for (const d of DAEMONS) {
    describe(d.unit, () => {
      const u = readUnit(join(UNITS, d.unit));
      const unit = u.Unit ?? {};
      const service = u.Service ?? {};

      it(`runs /usr/sbin/${d.program} -n, a program of package.json "bin"`, () => {
        expect(Object.keys(BIN)).toContain(d.program);
        expect(service.ExecStart).toEqual([`/usr/sbin/${d.program} -n`]);
        expect(service.Type).toEqual(['simple']);
      });

      it(`is bound to ${d.linux.device} (condition, BindsTo and After its device unit) and left alone by isolate`, () => {
        expect(unit.ConditionPathExists).toEqual([d.linux.device]);
        expect(words(unit.BindsTo)).toEqual([deviceUnit(d.linux.device)]);
        expect(words(unit.After)).toContain(deviceUnit(d.linux.device));
        expect(unit.IgnoreOnIsolate).toEqual(['yes']);
      });

      if (d.combined) {
        it(`is enabled into ${deviceUnit(d.linux.device)}'s wants (started when udev announces the node; no 90 s wait where it never comes), and conflicts with the separate units`, () => {
          expect(u.Install).toEqual({ WantedBy: [deviceUnit(d.linux.device)] });
          expect(words(unit.Conflicts)).toEqual(expect.arrayContaining(SEPARATE.map((x) => x.unit)));
        });

        it('restarts after a crash and on no-device (the VSS node may follow the KVP node), not on usage, busy or permission errors', () => {
          expect(service.Restart).toEqual(['on-failure']);
          expect(words(service.RestartPreventExitStatus).sort()).toEqual(['64', '75', '77']);
        });
      } else {
        it('is started by udev only: no [Install] section', () => {
          expect(u.Install).toBeUndefined();
        });

        it('restarts after a crash but not on usage, no-device, busy or permission errors', () => {
          expect(service.Restart).toEqual(['on-failure']);
          expect(words(service.RestartPreventExitStatus).sort()).toEqual(['64', '69', '75', '77']);
        });
      }

      it('a daemon that keeps failing stops being restarted: the start limit can trip at the RestartSec pace', () => {
        const secs = (v: string[] | undefined, dflt: number) => {
          if (!v) return dflt;
          const m = /^(\d+)(s|min)?$/.exec(v.at(-1)!);
          if (!m) throw new Error(`unexpected time span ${v.at(-1)}`);
          return Number(m[1]) * (m[2] === 'min' ? 60 : 1);
        };
        // systemd's defaults: RestartSec 100 ms, StartLimitIntervalSec 10 s, StartLimitBurst 5.
        const restart = secs(service.RestartSec, 0.1);
        const interval = secs(unit.StartLimitIntervalSec, 10);
        const burst = Number(unit.StartLimitBurst?.at(-1) ?? 5);
        expect(interval, 'StartLimitIntervalSec is not 0 (which disables the limit)').toBeGreaterThan(0);
        expect(burst * restart, `${burst} starts ${restart} s apart fit in ${interval} s`).toBeLessThan(interval);
      });
    });
  }

  it('hv-kvp-daemon: starts before cloud-init-local in early boot (no default dependencies, so no ordering cycle)', () => {
    const u = readUnit(join(UNITS, 'hv-kvp-daemon.service')).Unit!;
    expect(u.DefaultDependencies).toEqual(['no']);
    expect(words(u.Before)).toEqual(expect.arrayContaining(['cloud-init-local.service', 'sysinit.target', 'shutdown.target']));
    expect(words(u.Conflicts)).toContain('shutdown.target');
    expect(words(u.RequiresMountsFor)).toEqual([KVP_DEFAULTS.linux.poolDir]);
  });

  it('hv-kvp-daemon: keeps /etc writable and the capabilities IP injection needs', () => {
    const s = readUnit(join(UNITS, 'hv-kvp-daemon.service')).Service!;
    expect(s.ProtectSystem).toEqual(['yes']);
    expect(words(s.CapabilityBoundingSet)).toEqual(expect.arrayContaining(['CAP_NET_ADMIN', 'CAP_NET_RAW']));
    expect(words(s.DeviceAllow)).toEqual([KVP_DEFAULTS.linux.device, 'rw']);
    for (const k of ['ProtectKernelTunables', 'ProtectHostname', 'MemoryDenyWriteExecute', 'PrivateNetwork']) expect(s[k], k).toBeUndefined();
  });

  const systemctl = has('systemctl');
  it.skipIf(!systemctl)(`hvguestd is chosen as documented: enable puts it in the KVP device unit's wants, mask turns the separate units off, disable undoes it (systemctl --root on a throw-away tree)${systemctl ? '' : ' (skipped: systemctl is not installed)'}`, () => {
    const root = join(scratch.dir, 'enable-root');
    const sysdir = join(root, 'usr/lib/systemd/system');
    mkdirSync(sysdir, { recursive: true });
    for (const f of readdirSync(UNITS)) copyFileSync(join(UNITS, f), join(sysdir, f));
    const ctl = (...args: string[]) => spawnSync('systemctl', [`--root=${root}`, ...args], { encoding: 'utf8' });
    const g = DAEMONS.find((d) => d.combined)!;
    const wants = join(root, 'etc/systemd/system', `${deviceUnit(g.linux.device)}.wants`, g.unit);
    expect(ctl('enable', g.unit).status).toBe(0);
    expect(readlinkSync(wants)).toBe(`/usr/lib/systemd/system/${g.unit}`);
    expect(ctl('mask', ...SEPARATE.map((d) => d.unit)).status).toBe(0);
    const state = ctl('is-enabled', g.unit, ...SEPARATE.map((d) => d.unit));
    expect(state.stdout.trim().split('\n')).toEqual(['enabled', ...SEPARATE.map(() => 'masked')]);
    expect(ctl('disable', g.unit).status).toBe(0);
    expect(existsSync(wants)).toBe(false);
  });

  /** Settings that give a unit its own mount namespace or take CAP_SYS_ADMIN (FIFREEZE) or hook programs' rights away. */
  const notForVss = ['ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateMounts', 'PrivateDevices', 'ReadOnlyPaths', 'ReadWritePaths', 'InaccessiblePaths', 'TemporaryFileSystem', 'BindPaths', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectControlGroups', 'ProtectKernelLogs', 'ProtectHostname', 'ProtectClock', 'ProtectProc', 'MountFlags', 'RootDirectory', 'CapabilityBoundingSet', 'NoNewPrivileges', 'DevicePolicy', 'DeviceAllow'];

  for (const unitName of ['hv-vss-daemon.service', 'hvguestd.service']) {
    it(`${unitName}: nothing that gives it its own mount namespace or takes CAP_SYS_ADMIN away`, () => {
      const s = readUnit(join(UNITS, unitName)).Service!;
      expect(notForVss.filter((k) => s[k] !== undefined)).toEqual([]);
    });
  }

  it('hvguestd: starts early like hv-kvp-daemon (before cloud-init-local, pools mounted) and stops before local file systems are unmounted', () => {
    const u = readUnit(join(UNITS, 'hvguestd.service'));
    expect(u.Unit!.DefaultDependencies).toEqual(['no']);
    expect(words(u.Unit!.Before)).toEqual(expect.arrayContaining(['cloud-init-local.service', 'sysinit.target', 'shutdown.target']));
    expect(words(u.Unit!.Conflicts)).toContain('shutdown.target');
    expect(words(u.Unit!.After)).toContain('local-fs.target');
    expect(words(u.Unit!.RequiresMountsFor)).toEqual([KVP_DEFAULTS.linux.poolDir]);
    expect(u.Service!.StateDirectory).toEqual(['hyperv']);
    // Bound to KVP only: VSS is optional (--no-vss), and neither binds nor waits for its device.
    expect(JSON.stringify(u.Unit)).not.toContain(deviceUnit(VSS_DEFAULTS.linux.device));
  });

  it('hvguestd: the hardening is that of hv-vss-daemon, the more permissive of the two (every setting it has, hv-vss-daemon has with the same value)', () => {
    const g = readUnit(join(UNITS, 'hvguestd.service')).Service!;
    const v = readUnit(join(UNITS, 'hv-vss-daemon.service')).Service!;
    const hardening = Object.keys(g).filter((k) => /^(Restrict|Lock|SystemCall|Protect|Private|Capability|Memory|NoNew|Device)/.test(k));
    expect(hardening.length).toBeGreaterThan(0);
    for (const k of hardening) expect(g[k], k).toEqual(v[k]);
  });
});

// ---------------------------------------------------------------- udev rule

describe('udev rule 70-hvguest.rules', () => {
  /** Each rule as its key/operator/value triples; throws on anything udev would not parse. */
  const rules = readFileSync(UDEV, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    .map((line) => {
      const parts = line.split(/,\s*/);
      return parts.map((p) => {
        const m = /^([A-Z_]+)(\{[A-Za-z_]+\})?(==|!=|\+=|-=|:=|=)"([^"]*)"$/.exec(p.trim());
        if (!m) throw new Error(`not a udev key: ${p}`);
        return { key: m[1]! + (m[2] ?? ''), op: m[3]!, value: m[4]! };
      });
    });

  it('one rule per separate daemon; matches compare, assignments assign', () => {
    expect(rules).toHaveLength(SEPARATE.length);
    for (const r of rules) {
      for (const k of r) {
        if (['SUBSYSTEM', 'KERNEL'].includes(k.key)) expect(['==', '!='], k.key).toContain(k.op);
        else expect(['=', '+=', ':='], k.key).toContain(k.op);
      }
    }
  });

  for (const d of SEPARATE) {
    it(`tags ${d.linux.device} for systemd and wants ${d.unit}, a unit this build ships`, () => {
      const r = rules.find((x) => x.some((k) => k.key === 'KERNEL' && `/dev/${k.value}` === d.linux.device));
      expect(r, d.linux.device).toBeDefined();
      expect(r).toEqual(
        expect.arrayContaining([
          { key: 'SUBSYSTEM', op: '==', value: 'misc' },
          { key: 'TAG', op: '+=', value: 'systemd' },
          { key: 'ENV{SYSTEMD_WANTS}', op: '+=', value: d.unit },
        ]),
      );
      expect(existsSync(join(UNITS, d.unit))).toBe(true);
    });
  }

  it('hvguestd.service is never wanted by the rule (it is chosen by enabling it), but the node its WantedBy names is tagged for systemd', () => {
    const g = DAEMONS.find((d) => d.combined)!;
    expect(rules.flat().filter((k) => k.value.includes(g.unit))).toEqual([]);
    const r = rules.find((x) => x.some((k) => k.key === 'KERNEL' && `/dev/${k.value}` === g.linux.device));
    expect(r).toEqual(expect.arrayContaining([{ key: 'TAG', op: '+=', value: 'systemd' }]));
  });
});

// -------------------------------------------------------------- rc.d scripts

/** Header keywords of an rc.d script (PROVIDE, REQUIRE, BEFORE, KEYWORD). */
function rcorderHeader(text: string): Record<string, string[]> {
  const h: Record<string, string[]> = {};
  for (const m of text.matchAll(/^# (PROVIDE|REQUIRE|BEFORE|KEYWORD):(.*)$/gm)) (h[m[1]!] ??= []).push(...m[2]!.trim().split(/\s+/));
  return h;
}

/**
 * Evaluate an rc.d script under /bin/sh with `. /etc/rc.subr` replaced by a
 * stub: load_rc_config does nothing, run_rc_command prints the variables
 * rc.subr would use and, for `start`, runs the script's start_precmd after
 * applying `overrides` (shell assignments), printing its status.
 */
function evalRcScript(rc: string, opts: { prefix: string; env?: Record<string, string>; overrides?: string; arg?: string }) {
  const stub = join(scratch.dir, 'rc.subr.stub');
  writeFileSync(
    stub,
    [
      // load_rc_config NAME reads rc.conf.d/NAME (here: from $STUB_RCCONFD, when set).
      'load_rc_config() { if [ -n "$STUB_RCCONFD" ] && [ -f "$STUB_RCCONFD/$1" ]; then . "$STUB_RCCONFD/$1"; fi; }',
      // rc.subr's checkyesno: YES/TRUE/ON/1 true, NO/FALSE/OFF/0 false, anything else warns.
      'checkyesno() { eval "_v=\\$$1"; case $_v in [Yy][Ee][Ss]|[Tt][Rr][Uu][Ee]|[Oo][Nn]|1) return 0 ;; [Nn][Oo]|[Ff][Aa][Ll][Ss][Ee]|[Oo][Ff][Ff]|0) return 1 ;; *) echo "\\$$1 is not set properly" >&2; return 1 ;; esac; }',
      'run_rc_command() {',
      '  for v in name rcvar desc command command_args command_interpreter pidfile start_precmd; do eval "echo $v=\\$$v"; done',
      '  eval "echo enable=\\$${rcvar}"',
      '  eval "echo device=\\$${name}_device"',
      '  if [ "$1" = start ]; then eval "$STUB_OVERRIDES"; $start_precmd; echo precmd=$?; fi',
      '}',
      '',
    ].join('\n'),
  );
  const text = readFileSync(join(RCD, `${rc}.in`), 'utf8').replaceAll('%%PREFIX%%', opts.prefix);
  expect(text, 'the script sources rc.subr').toContain('. /etc/rc.subr\n');
  const script = join(scratch.dir, rc);
  writeFileSync(script, text.replace('. /etc/rc.subr\n', `. ${stub}\n`));
  const r = sh([script, opts.arg ?? 'status'], { env: { PATH: '/usr/bin:/bin', STUB_OVERRIDES: opts.overrides ?? '', ...opts.env } });
  const vars: Record<string, string> = {};
  for (const l of r.stdout.split('\n')) {
    const i = l.indexOf('=');
    if (i > 0) vars[l.slice(0, i)] = l.slice(i + 1);
  }
  return { ...r, vars };
}

/** A fake PREFIX with sbin/PROGRAM: the real launcher, its #! line pointing at `interpreter`. */
function fakePrefix(tag: string, interpreterLine: string): string {
  const prefix = join(scratch.dir, `prefix-${tag}`);
  mkdirSync(join(prefix, 'sbin'), { recursive: true });
  for (const d of DAEMONS) {
    const launcher = readFileSync(join(ROOT, BIN[d.program]!), 'utf8').replace(/^#!.*\n/, `#!${interpreterLine}\n`);
    writeFileSync(join(prefix, 'sbin', d.program), launcher, { mode: 0o755 });
  }
  return prefix;
}

describe('rc.d scripts (evaluated with a stub for rc.subr; FreeBSD\'s rc.subr is not here, so start/stop are not run)', () => {
  const node = process.execPath;
  const prefix = fakePrefix('ok', node);

  for (const d of DAEMONS) {
    describe(`${d.rc}.in`, () => {
      const text = readFileSync(join(RCD, `${d.rc}.in`), 'utf8');

      it('parses under sh -n', () => {
        expect(sh(['-n', join(RCD, `${d.rc}.in`)]).status).toBe(0);
      });

      it(`defines name, rcvar (default NO), command, pidfile and device as ${d.program}'s FreeBSD defaults`, () => {
        const r = evalRcScript(d.rc, { prefix });
        expect(r.stderr).toBe('');
        expect(r.vars).toMatchObject({
          name: d.rc,
          rcvar: `${d.rc}_enable`,
          enable: 'NO',
          command: `${prefix}/sbin/${d.program}`,
          pidfile: d.freebsd.pidfile,
          command_args: `--pidfile ${d.freebsd.pidfile}`,
          command_interpreter: node,
          device: d.freebsd.device,
        });
        expect(Object.keys(BIN)).toContain(d.program);
      });

      it(`${d.rc}_pidfile from rc.conf reaches both rc.subr and the daemon; ${d.rc}_enable is kept`, () => {
        const r = evalRcScript(d.rc, { prefix, env: { [`${d.rc}_pidfile`]: '/var/run/other.pid', [`${d.rc}_enable`]: 'YES' } });
        expect(r.vars).toMatchObject({ pidfile: '/var/run/other.pid', command_args: '--pidfile /var/run/other.pid', enable: 'YES' });
      });

      it('rcorder header: PROVIDE its name, after FILESYSTEMS and ldconfig, before devd (whose replayed CREATE event then finds it running); nojail', () => {
        const h = rcorderHeader(text);
        expect(h.PROVIDE).toEqual([d.rc]);
        expect(h.REQUIRE).toEqual(expect.arrayContaining(['FILESYSTEMS', 'ldconfig']));
        expect(h.BEFORE).toContain('devd');
        expect(h.KEYWORD).toContain('nojail');
        expect(text).toMatch(/^#!\/bin\/sh\n/);
        expect(text).toMatch(/\nrun_rc_command "\$1"\n$/);
      });

      it('start precondition: a missing device node is refused with a message naming it', () => {
        const r = evalRcScript(d.rc, { prefix, arg: 'start', overrides: `${d.startOverrides}${d.rc}_device=${join(scratch.dir, 'no-such-node')}` });
        expect(r.vars.precmd).toBe('1');
        expect(r.stderr).toContain(`${d.rc}: ${join(scratch.dir, 'no-such-node')} does not exist: not a Hyper-V guest`);
      });

      it('start precondition: with the node present (a character device) and node installed, it passes', () => {
        const r = evalRcScript(d.rc, { prefix, arg: 'start', overrides: `${d.startOverrides}${d.rc}_device=/dev/null` });
        expect(r.stderr).toBe('');
        expect(r.vars.precmd).toBe('0');
      });

      it(`start precondition: -n or --foreground in ${d.rc}_flags is refused (rc.subr would wait forever)`, () => {
        // Every spelling the daemons accept: -n alone or in a cluster, --foreground, --no-daemon.
        for (const flags of ['-d -n', '--foreground', '-dn', '-nd', '--no-daemon', '--exclude /mnt -n']) {
          const r = evalRcScript(d.rc, { prefix, arg: 'start', overrides: `${d.startOverrides}${d.rc}_device=/dev/null; rc_flags='${flags}'` });
          expect(r.vars.precmd, flags).toBe('1');
          expect(r.stderr).toContain(`${d.rc}: remove -n/--foreground/--no-daemon from ${d.rc}_flags`);
        }
        // Words that merely contain an n (paths, long options), and a glob that must not be expanded.
        for (const flags of ['-d --exclude /n', '-d --exclude /mnt --include /nfs', '--hooks-dir /etc/n* -d']) {
          const r = evalRcScript(d.rc, { prefix, arg: 'start', overrides: `${d.startOverrides}${d.rc}_device=/dev/null; rc_flags='${flags}'` });
          expect(r.vars.precmd, flags).toBe('0');
          expect(r.stderr, flags).toBe('');
        }
      });

      it('start precondition: a missing node interpreter, or a launcher without an absolute #! path, is refused', () => {
        const missing = evalRcScript(d.rc, { prefix: fakePrefix('nonode', '/nonexistent/bin/node'), arg: 'start', overrides: `${d.startOverrides}${d.rc}_device=/dev/null` });
        expect(missing.vars.precmd).toBe('1');
        expect(missing.stderr).toContain('/nonexistent/bin/node not found: install Node.js');
        const env = evalRcScript(d.rc, { prefix: fakePrefix('env', '/usr/bin/env node'), arg: 'start', overrides: `${d.startOverrides}${d.rc}_device=/dev/null` });
        expect(env.vars.command_interpreter).toBe('node');
        expect(env.vars.precmd).toBe('1');
        expect(env.stderr).toContain('must start with #! and the absolute path of node');
      });
    });
  }

  for (const rc of ['hv_vssd', 'hvguestd']) {
    it(`${rc} stops at shutdown (KEYWORD shutdown: thaw before file systems are unmounted)`, () => {
      expect(rcorderHeader(readFileSync(join(RCD, `${rc}.in`), 'utf8')).KEYWORD).toContain('shutdown');
    });
  }

  for (const rc of ['hv_kvpd', 'hvguestd']) {
    it(`${rc} starts before NETWORKING (it serves KVP)`, () => {
      expect(rcorderHeader(readFileSync(join(RCD, `${rc}.in`), 'utf8')).BEFORE).toContain('NETWORKING');
    });
  }

  it('one rc.d script per daemon and nothing else', () => {
    expect(readdirSync(RCD).filter((f) => f.endsWith('.in')).sort()).toEqual(DAEMONS.map((d) => `${d.rc}.in`).sort());
  });

  describe('hvguestd and hv_kvpd/hv_vssd exclude each other (the same exclusive device nodes)', () => {
    const start = (d: (typeof DAEMONS)[number], extra: string) =>
      evalRcScript(d.rc, { prefix, arg: 'start', overrides: `${d.startOverrides}${d.rc}_device=/dev/null; ${extra}` });
    const g = DAEMONS.find((d) => d.combined)!;

    for (const other of SEPARATE) {
      it(`hvguestd refuses to start while ${other.rc}_enable is YES, naming it`, () => {
        const r = start(g, `${other.rc}_enable=YES`);
        expect(r.vars.precmd).toBe('1');
        expect(r.stderr).toContain(`hvguestd: ${other.rc}_enable is YES`);
      });

      it(`${other.rc} refuses to start while hvguestd_enable is YES, naming it`, () => {
        const r = start(other, 'hvguestd_enable=yes');
        expect(r.vars.precmd).toBe('1');
        expect(r.stderr).toContain(`${other.rc}: hvguestd_enable is YES`);
      });
    }

    it('an enable set only in the other service\'s rc.conf.d file counts too', () => {
      const dir = join(scratch.dir, 'rc.conf.d');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'hv_vssd'), 'hv_vssd_enable="YES"\n');
      writeFileSync(join(dir, 'hvguestd'), 'hvguestd_enable="YES"\n');
      const env = { STUB_RCCONFD: dir };
      const r = evalRcScript(g.rc, { prefix, arg: 'start', env, overrides: `${g.startOverrides}hvguestd_device=/dev/null` });
      expect(r.stderr).toContain('hvguestd: hv_vssd_enable is YES');
      expect(r.vars.precmd).toBe('1');
      const k = evalRcScript('hv_kvpd', { prefix, arg: 'start', env, overrides: 'hv_kvpd_device=/dev/null' });
      expect(k.stderr).toContain('hv_kvpd: hvguestd_enable is YES');
      expect(k.vars.precmd).toBe('1');
    });

    it('unset or NO is no obstacle, and makes no warning', () => {
      for (const d of DAEMONS) {
        const r = start(d, DAEMONS.filter((x) => x !== d).map((x) => `${x.rc}_enable=NO`).join('; '));
        expect(r.vars.precmd, d.rc).toBe('0');
        expect(r.stderr, d.rc).toBe('');
      }
    });
  });

  describe('hvguestd start precondition: the node of every service the flags leave on', () => {
    const missing = join(scratch.dir, 'no-such-node');
    const start = (overrides: string) => evalRcScript('hvguestd', { prefix, arg: 'start', overrides });

    it('a missing VSS node is refused with a message naming it and --no-vss', () => {
      const r = start(`hvguestd_device=/dev/null; hvguestd_vss_device=${missing}`);
      expect(r.vars.precmd).toBe('1');
      expect(r.stderr).toContain(`hvguestd: ${missing} does not exist`);
      expect(r.stderr).toContain('--no-vss');
    });

    it('--no-vss skips the VSS node, --no-kvp the KVP node (and neither counts as -n)', () => {
      expect(start(`hvguestd_device=/dev/null; hvguestd_vss_device=${missing}; rc_flags='--no-vss -d'`).vars.precmd).toBe('0');
      expect(start(`hvguestd_device=${missing}; hvguestd_vss_device=/dev/null; rc_flags='--no-kvp'`).vars.precmd).toBe('0');
      const both = start(`hvguestd_device=${missing}; hvguestd_vss_device=${missing}; rc_flags='--no-kvp'`);
      expect(both.vars.precmd).toBe('1');
      expect(both.stderr).toContain('hv_vss driver is not loaded');
    });

    it('a flag is a whole word: --no-vss inside another word does not count', () => {
      const r = start(`hvguestd_device=/dev/null; hvguestd_vss_device=${missing}; rc_flags='--vss-exclude /--no-vss'`);
      expect(r.vars.precmd).toBe('1');
    });
  });
});

// -------------------------------------------------------------- devd rules

describe('devd rules hvguest.conf', () => {
  const rules = parseDevd(readFileSync(DEVD, 'utf8'));

  it('a CREATE and a DESTROY rule for each daemon\'s node (no vm_guest guard: older devd lacks it, and only Hyper-V makes these nodes), above the base rules (10, 11)', () => {
    const want = SEPARATE.flatMap((d) =>
      ['CREATE', 'DESTROY'].map((type) => ({ system: 'DEVFS', subsystem: 'CDEV', type, cdev: basename(d.freebsd.device) })),
    );
    expect(rules.map((r) => r.match)).toEqual(want);
    for (const r of rules) {
      expect(r.kind).toBe('notify');
      expect(r.priority).toBeGreaterThan(11);
    }
  });

  it('every action runs shipped rc.d scripts through service(8): quietstart on CREATE, faststop on DESTROY (silent, status 0 when the daemon is already gone)', () => {
    for (const r of rules) {
      for (const cmd of r.action.split(/\s*;\s*/)) {
        const m = /^\/usr\/sbin\/service (\w+) (quietstart|faststop)$/.exec(cmd);
        expect(m, r.action).not.toBeNull();
        expect(m![2]).toBe(r.match.type === 'CREATE' ? 'quietstart' : 'faststop');
        const script = join(RCD, `${m![1]}.in`);
        expect(statSync(script).isFile(), script).toBe(true);
        expect(rcorderHeader(readFileSync(script, 'utf8')).PROVIDE).toEqual([m![1]]);
      }
    }
  });

  it('each node starts its own daemon and hvguestd (devd runs one rule per event; rc.conf decides which runs); hvguestd stops only with the KVP node', () => {
    const scripts = (cdev: string, type: string) =>
      rules
        .filter((r) => r.match.cdev === cdev && r.match.type === type)
        .flatMap((r) => r.action.split(/\s*;\s*/))
        .map((c) => c.split(' ')[1]);
    const kvp = basename(KVP_DEFAULTS.freebsd.device);
    const vss = basename(VSS_DEFAULTS.freebsd.device);
    expect(scripts(kvp, 'CREATE')).toEqual(['hv_kvpd', 'hvguestd']);
    expect(scripts(vss, 'CREATE')).toEqual(['hv_vssd', 'hvguestd']);
    expect(scripts(kvp, 'DESTROY')).toEqual(['hv_kvpd', 'hvguestd']);
    expect(scripts(vss, 'DESTROY')).toEqual(['hv_vssd']);
  });

  it('both rule files outrank every base-system rule for the same event (devd runs only the highest-priority match; ties are unordered)', () => {
    // /etc/devd/hyperv.conf of the base system (spec/packaging.md 1.4, spec/vf.md 4).
    const base = [
      { priority: 10, match: { system: 'DEVFS', subsystem: 'CDEV', type: 'CREATE', cdev: 'hv_kvp_dev' } },
      { priority: 10, match: { system: 'DEVFS', subsystem: 'CDEV', type: 'DESTROY', cdev: 'hv_kvp_dev' } },
      { priority: 11, match: { system: 'DEVFS', subsystem: 'CDEV', type: 'CREATE', cdev: 'hv_fsvss_dev' } },
      { priority: 11, match: { system: 'DEVFS', subsystem: 'CDEV', type: 'DESTROY', cdev: 'hv_fsvss_dev' } },
      { priority: 10, match: { system: 'HYPERV_NIC_VF', type: 'VF_UP' } },
      { priority: 10, match: { system: 'ETHERNET', type: 'IFATTACH', vm_guest: 'hv' } },
    ];
    const ours = [...rules, ...parseDevd(readFileSync(join(dirname(DEVD), 'hvguest-vf.conf'), 'utf8'))];
    // Two rules can match one event when no key both name has different values.
    const overlap = (a: Record<string, string>, b: Record<string, string>) => Object.keys(a).every((k) => !(k in b) || a[k] === b[k]);
    let compared = 0;
    for (const b of base)
      for (const r of ours.filter((o) => overlap(o.match, b.match))) {
        compared++;
        expect(r.priority, `${JSON.stringify(r.match)} against base priority ${b.priority}`).toBeGreaterThan(b.priority);
      }
    expect(compared).toBe(base.length);
  });

  it('the reader rejects what devd would (it is not a no-op)', () => {
    expect(() => parseDevd('notify 10 { match "system" "X"; action "y" };')).toThrow();
    expect(() => parseDevd('notify 10 { match "cdev" "x"; };\nstray')).toThrow(/trailing text/);
    expect(() => parseDevd('notify 10 { match "cdev" "x"; action "a; b };')).toThrow();
    expect(parseDevd('notify 10 { match "cdev" "x"; action "a; b"; };')[0]!.action).toBe('a; b');
  });
});
