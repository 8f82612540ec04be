/**
 * The WITHOUT_HYPERV knob and architecture gating, under FreeBSD make
 * (bmake) and GNU make alike: the decision over the whole matrix of
 * architectures and knobs (`make hyperv-status`, fast), the real effect on
 * `make all` and `make install` (nothing built, nothing installed), clear
 * errors for bad values, and one real `make all` per make whose program
 * list comes from package.json; and what `make check` adds to tsc.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, run, tempDir } from '../lib/procs.js';
import { HAVE_BMAKE, HAVE_GMAKE, MAKES, make, packageJson, programDir } from './make.js';

const ARCHES = ['amd64', 'i386', 'x86_64', 'i686', 'aarch64', 'riscv64'] as const;
const KNOBS = { default: [], 'WITHOUT_HYPERV=yes': ['WITHOUT_HYPERV=yes'], 'WITH_HYPERV=yes': ['WITH_HYPERV=yes'] } as const;
type Knob = keyof typeof KNOBS;

/** FreeBSD's name for each architecture as given. */
const NAME: Record<(typeof ARCHES)[number], string> = { amd64: 'amd64', i386: 'i386', x86_64: 'amd64', i686: 'i386', aarch64: 'aarch64', riscv64: 'riscv64' };

/** What the spec says should happen: built or skipped, and the line that says so. */
function expected(arch: (typeof ARCHES)[number], knob: Knob): { built: boolean; line: RegExp } {
  const name = NAME[arch];
  const x86 = name === 'amd64' || name === 'i386';
  if (knob === 'WITHOUT_HYPERV=yes') return { built: false, line: /^hvguest: WITHOUT_HYPERV is set: building and installing nothing Hyper-V-related$/ };
  if (knob === 'WITH_HYPERV=yes') return { built: true, line: x86 ? new RegExp(`^hvguest: Hyper-V components enabled for ${name}$`) : new RegExp(`^hvguest: Hyper-V components forced on for ${name} by WITH_HYPERV$`) };
  return x86
    ? { built: true, line: new RegExp(`^hvguest: Hyper-V components enabled for ${name}$`) }
    : { built: false, line: new RegExp(`^hvguest: skipping Hyper-V components on ${name} \\(.*WITH_HYPERV=yes.*aarch64.*\\)$`) };
}

describe.skipIf(!HAVE_BMAKE || !HAVE_GMAKE)(`the knob over {arch} x {knob}, bmake and GNU make${!HAVE_BMAKE ? ' (skipped: bmake is not installed, Debian package bmake)' : !HAVE_GMAKE ? ' (skipped: GNU make is not installed)' : ''}`, () => {
  it('both makes decide the same, as specified, for all 18 combinations (36 runs)', async () => {
    const seen: string[] = [];
    for (const arch of ARCHES) {
      for (const knob of Object.keys(KNOBS) as Knob[]) {
        const want = expected(arch, knob);
        const outs: string[] = [];
        for (const m of MAKES) {
          const r = await make(m.cmd, ['hyperv-status', `MACHINE_ARCH=${arch}`, ...KNOBS[knob]]);
          expect(r.code, `${m.name} ${arch} ${knob}: ${r.stderr}`).toBe(0);
          expect(r.stdout.trim(), `${m.name} ${arch} ${knob}`).toMatch(want.line);
          expect(r.stdout.trim().split('\n')).toHaveLength(1);
          outs.push(r.stdout);
          seen.push(`${m.name}/${arch}/${knob}`);
        }
        expect(outs[0], `${arch} ${knob}: bmake and GNU make differ`).toBe(outs[1]);
      }
    }
    expect(seen).toHaveLength(36);
  });

  it('WITHOUT_HYPERV from the environment counts like the command line; MK_HYPERV=no too', async () => {
    for (const m of MAKES) {
      const env = await make(m.cmd, ['hyperv-status'], { WITHOUT_HYPERV: '1' });
      expect(env.stdout.trim(), m.name).toMatch(/WITHOUT_HYPERV is set/);
      const mk = await make(m.cmd, ['hyperv-status', 'MK_HYPERV=no']);
      expect(mk.stdout.trim(), m.name).toMatch(/^hvguest: MK_HYPERV=no: building and installing nothing/);
    }
  });

  it('bmake with an object directory (MAKEOBJDIRPREFIX, as FreeBSD developers set it) still runs the recipes from the source tree', async () => {
    // bmake chdirs to ${MAKEOBJDIRPREFIX}${.CURDIR} when that exists, before running any recipe.
    const objs = tempDir('hvguest-objdir-');
    try {
      mkdirSync(join(objs.dir, ROOT), { recursive: true });
      const r = await make('bmake', ['hyperv-status', 'MACHINE_ARCH=amd64'], { MAKEOBJDIRPREFIX: objs.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('hvguest: Hyper-V components enabled for amd64');
      expect(readdirSync(join(objs.dir, ROOT))).toEqual([]);
    } finally {
      objs.remove();
    }
  });

  it('without MACHINE_ARCH both makes detect this machine the same way (uname -m mapped)', async () => {
    const uname = (await make('uname', ['-m'])).stdout.trim();
    const name = /^(x86_64|amd64)$/.test(uname) ? 'amd64' : /^i[3-6]86$/.test(uname) ? 'i386' : /^(arm64|aarch64)$/.test(uname) ? 'aarch64' : uname;
    const outs = await Promise.all(MAKES.map((m) => make(m.cmd, ['hyperv-status'])));
    for (const r of outs) expect(r.stdout).toContain(` ${name}`);
    expect(outs[0]!.stdout).toBe(outs[1]!.stdout);
  });
});

for (const m of MAKES) {
  describe.skipIf(!m.present)(`${m.name}: what the knob does to real targets${m.present ? '' : ` (skipped: ${m.missing})`}`, () => {
    let tmp: { dir: string; remove: () => void };
    beforeAll(() => {
      tmp = tempDir('hvguest-knob-');
    });
    afterAll(() => tmp.remove());

    it('WITHOUT_HYPERV=yes: `make all` and `make install` say so in one line and build and install nothing', async () => {
      const bundle = join(tmp.dir, 'bundle-without');
      const dest = join(tmp.dir, 'dest-without');
      const all = await make(m.cmd, ['all', 'WITHOUT_HYPERV=yes', `BUNDLE=${bundle}`]);
      expect(all.code, all.stderr).toBe(0);
      expect(all.stdout.trim()).toBe('hvguest: WITHOUT_HYPERV is set: building and installing nothing Hyper-V-related');
      expect(existsSync(bundle)).toBe(false);
      const inst = await make(m.cmd, ['install', `DESTDIR=${dest}`, `BUNDLE=${bundle}`], { WITHOUT_HYPERV: 'yes' });
      expect(inst.code, inst.stderr).toBe(0);
      expect(inst.stdout.trim()).toBe('hvguest: WITHOUT_HYPERV is set: building and installing nothing Hyper-V-related');
      expect(existsSync(dest)).toBe(false);
    });

    it('riscv64 by default: skipped with one line, nothing installed', async () => {
      const dest = join(tmp.dir, 'dest-riscv');
      const r = await make(m.cmd, ['install', 'MACHINE_ARCH=riscv64', `DESTDIR=${dest}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toMatch(/^hvguest: skipping Hyper-V components on riscv64 \(/);
      expect(existsSync(dest)).toBe(false);
    });

    it('aarch64 with WITH_HYPERV=yes is really attempted: it asks for the aarch64 koffi binary', async () => {
      const bundle = join(tmp.dir, 'bundle-host');
      // A bundle with only this machine's koffi: the forced aarch64 install must notice.
      const all = await make(m.cmd, ['all', `BUNDLE=${bundle}`, 'KOFFI_PLATFORMS=linux-x64', 'LAYOUT=linux']);
      expect(all.code, all.stderr).toBe(0);
      const r = await make(m.cmd, ['install', 'MACHINE_ARCH=aarch64', 'WITH_HYPERV=yes', 'LAYOUT=linux', `BUNDLE=${bundle}`, `DESTDIR=${join(tmp.dir, 'dest-arm')}`]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/no koffi binary for linux-arm64/);
    });

    it('bad values get a clear error naming them', async () => {
      const ambiguous = await make(m.cmd, ['install', 'WITH_HYPERV=no', `DESTDIR=${join(tmp.dir, 'x')}`]);
      expect(ambiguous.code).not.toBe(0);
      expect(ambiguous.stderr).toMatch(/WITH_HYPERV=no is ambiguous/);
      const layout = await make(m.cmd, ['install', 'LAYOUT=solaris', `DESTDIR=${join(tmp.dir, 'x')}`]);
      expect(layout.code).not.toBe(0);
      expect(layout.stderr).toMatch(/LAYOUT=solaris: expected freebsd or linux/);
      const rel = await make(m.cmd, ['install', 'DESTDIR=relative/dir']);
      expect(rel.code).not.toBe(0);
      expect(rel.stderr).toMatch(/DESTDIR=relative\/dir: must be an absolute path/);
      for (const [k, v] of [['PREFIX', 'usr/local'], ['NODEBIN', 'node'], ['MANDIR', 'share/man']]) {
        const relative = await make(m.cmd, ['install', `${k}=${v}`, `DESTDIR=${join(tmp.dir, 'x')}`]);
        expect(relative.code, `${k}=${v}`).not.toBe(0);
        expect(relative.stderr).toContain(`hvguest: ${k}=${v}: must be an absolute path`);
      }
      // PREFIX goes into sed replacements, where & stands for the match.
      for (const [k, v] of [['PREFIX', '/opt/a&b'], ['PREFIX', '/opt/my prefix'], ['NODEBIN', '/opt/node|x'], ['MANDIR', '/opt/my man']]) {
        const bad = await make(m.cmd, ['install', `${k}=${v}`, `DESTDIR=${join(tmp.dir, 'x')}`]);
        expect(bad.code, `${k}=${v}`).not.toBe(0);
        expect(bad.stderr).toContain(`hvguest: ${k}=${v}: only letters, digits and / . _ + @ : , - are allowed`);
      }
      expect(existsSync(join(tmp.dir, 'x'))).toBe(false);
    });

    it('a real `make all`: one bundle per package.json program, sbin/bin from its role, koffi for the target', async () => {
      const bundle = join(tmp.dir, 'bundle-real');
      const r = await make(m.cmd, ['all', `BUNDLE=${bundle}`, 'LAYOUT=linux', 'MACHINE_ARCH=x86_64']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^hvguest: Hyper-V components enabled for amd64 \(layout linux\)$/m);
      const names = Object.keys(packageJson().bin).sort();
      const programs = readFileSync(join(bundle, 'programs'), 'utf8').trim().split('\n').sort();
      expect(programs).toEqual(names.map((n) => `${n} ${programDir(n)}`));
      for (const n of names) expect(existsSync(join(bundle, 'hvguest', `${n}.js`)), n).toBe(true);
      // Started by path from the VSS daemon, so bundled beside it.
      expect(existsSync(join(bundle, 'hvguest', 'guard-main.js'))).toBe(true);
      expect(readdirSync(join(bundle, 'hvguest', 'node_modules', '@koromix'))).toEqual(['koffi-linux-x64']);
      expect(JSON.parse(readFileSync(join(bundle, 'hvguest', 'package.json'), 'utf8'))).toMatchObject({ name: 'hvguest', version: packageJson().version, type: 'commonjs' });
      // Each program starts through load.js with the V8 code cache made for it (test/packaging/code-cache.test.ts).
      expect(existsSync(join(bundle, 'hvguest', 'load.js'))).toBe(true);
      for (const n of names) expect(existsSync(join(bundle, 'hvguest', `${n}.js.cache`)), `${n}.js.cache`).toBe(true);
      // MIT asks for the notice in every copy: each package esbuild put into a bundle (its
      // "// node_modules/PKG/..." source markers) has its license text in THIRD-PARTY-LICENSES.
      const bundledPkgs = new Set<string>();
      for (const f of readdirSync(join(bundle, 'hvguest')).filter((x) => x.endsWith('.js')))
        for (const mm of readFileSync(join(bundle, 'hvguest', f), 'utf8').matchAll(/^\/\/ (?:.*\/)?node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)) bundledPkgs.add(mm[1]!);
      expect([...bundledPkgs]).toEqual(expect.arrayContaining(['pino', 'commander']));
      const notices = readFileSync(join(bundle, 'hvguest', 'THIRD-PARTY-LICENSES'), 'utf8');
      for (const p of bundledPkgs) {
        const { version, license } = JSON.parse(readFileSync(join(ROOT, 'node_modules', p, 'package.json'), 'utf8'));
        expect(notices, p).toContain(`${p} ${version} (${license})\n\n`);
      }
      expect(notices.match(/Permission is hereby granted/g)?.length ?? 0).toBeGreaterThanOrEqual(bundledPkgs.size);
    });
  });
}

describe('make check: shell syntax and man page lint', () => {
  const HAVE_MANDOC = spawnSync('mandoc', ['-V'], { stdio: 'ignore' }).error === undefined || spawnSync('sh', ['-c', 'command -v mandoc'], { stdio: 'ignore' }).status === 0;
  let tmp: { dir: string; remove: () => void };
  beforeAll(() => {
    tmp = tempDir('hvguest-check-');
  });
  afterAll(() => tmp.remove());

  it('the tree passes', async () => {
    const r = await run('sh', [join(ROOT, 'build/mk/check.sh')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/check: \d+ shell scripts parsed/);
  });

  it('a broken script (found by its #! line, no .sh name) fails the check and is named', async () => {
    const dir = join(tmp.dir, 'sh');
    mkdirSync(join(dir, 'build/scripts'), { recursive: true });
    writeFileSync(join(dir, 'build/scripts/helper'), '#!/bin/sh\nif true; then\n  echo missing fi\n');
    writeFileSync(join(dir, 'fine.sh'), 'echo ok\n');
    const r = await run('sh', [join(ROOT, 'build/mk/check.sh'), dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sh -n \.\/build\/scripts\/helper failed/);
    expect(r.stdout).toMatch(/check: 2 shell scripts parsed/);
  });

  it.skipIf(!HAVE_MANDOC)(`a man page with lint warnings fails the check${HAVE_MANDOC ? '' : ' (skipped: mandoc is not installed)'}`, async () => {
    const dir = join(tmp.dir, 'man');
    mkdirSync(join(dir, 'build/man'), { recursive: true });
    writeFileSync(join(dir, 'build/man/bad.8'), '.Dd November 25, 2026\n.Dt BAD 8\n.Os\n.Sh DESCRIPTION\ntext\n.Sh NAME\n.Nm bad\n.Nd late name\n');
    const r = await run('sh', [join(ROOT, 'build/mk/check.sh'), dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/mandoc -Tlint build\/man\/bad\.8 has warnings/);
  });
});
