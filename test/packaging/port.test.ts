/**
 * The FreeBSD port and its distfile: `make port-tarball` writes the
 * tarball and a distinfo that matches it; the port's own do-install recipe
 * (taken from the port Makefile by bmake, with the ports framework
 * replaced by the few variables the recipe uses) run on the extracted
 * distfile stages exactly pkg-plist, for amd64 and for i386.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, run, tempDir } from '../lib/procs.js';
import { HAVE_BMAKE, cleanEnv, listFiles, make, packageJson } from './make.js';

const PORT = join(ROOT, 'build/freebsd/sysutils/hvguest');

describe.skipIf(!HAVE_BMAKE)(`FreeBSD port${HAVE_BMAKE ? '' : ' (skipped: bmake is not installed, Debian package bmake)'}`, () => {
  let tmp: { dir: string; remove: () => void };
  let tarball: string;
  let distinfo: string;
  let noFetch: string | undefined;

  beforeAll(async () => {
    tmp = tempDir('hvguest-port-');
    distinfo = join(tmp.dir, 'distinfo');
    const r = await make('bmake', ['port-tarball', `BUNDLE=${join(tmp.dir, 'bundle')}`, `DISTINFO=${distinfo}`], {}, 240000);
    if (r.code !== 0) {
      if (!/cannot fetch @koromix\/koffi-freebsd/.test(r.stderr)) throw new Error(`make port-tarball failed: ${r.stderr}`);
      noFetch = r.stderr.trim();
    }
    tarball = join(tmp.dir, 'bundle', 'port', `hvguest-${packageJson().version}.tar.gz`);
  }, 300000);

  afterAll(() => tmp?.remove());

  it('distinfo names the tarball with its SHA256 and size', (ctx) => {
    if (noFetch) ctx.skip(`koffi's FreeBSD binaries could not be fetched: ${noFetch}`);
    const bytes = readFileSync(tarball);
    const name = `hvguest-${packageJson().version}.tar.gz`;
    const text = readFileSync(distinfo, 'utf8');
    expect(text).toMatch(/^TIMESTAMP = \d+$/m);
    expect(text).toContain(`SHA256 (${name}) = ${createHash('sha256').update(bytes).digest('hex')}\n`);
    expect(text).toContain(`SIZE (${name}) = ${bytes.length}\n`);
    // The port's version is package.json's.
    expect(readFileSync(join(PORT, 'Makefile'), 'utf8')).toMatch(new RegExp(`^DISTVERSION=\\s+${packageJson().version.replaceAll('.', '\\.')}$`, 'm'));
  });

  for (const [arch, cpu] of [
    ['amd64', 'x64'],
    ['i386', 'ia32'],
  ] as const) {
    it(`the port's do-install on the distfile stages exactly pkg-plist (${arch})`, async (ctx) => {
      if (noFetch) ctx.skip(`koffi's FreeBSD binaries could not be fetched: ${noFetch}`);
      const work = join(tmp.dir, `work-${arch}`);
      const stage = join(tmp.dir, `stage-${arch}`);
      mkdirSync(work);
      const x = await run('tar', ['-xzf', tarball, '-C', work]);
      expect(x.code, x.stderr).toBe(0);
      // Stand-ins for the ports framework: empty sys.mk and bsd.port.mk.
      const mk = join(tmp.dir, `mk-${arch}`);
      mkdirSync(mk);
      writeFileSync(join(mk, 'sys.mk'), '');
      writeFileSync(join(mk, 'bsd.port.mk'), '');
      const vars = [`ARCH=${arch}`, `WRKSRC=${join(work, `hvguest-${packageJson().version}`)}`, 'PREFIX=/usr/local', 'LOCALBASE=/usr/local', `STAGEDIR=${stage}`, 'SETENV=env', 'SH=/bin/sh'];
      const recipe = await run('bmake', ['-m', mk, '-C', PORT, '-n', 'do-install', ...vars], { env: cleanEnv() });
      expect(recipe.code, recipe.stderr).toBe(0);
      expect(recipe.stdout).toContain(`KOFFI_PLATFORM=freebsd-${cpu}`);
      const inst = await run('sh', ['-c', recipe.stdout], { env: cleanEnv() });
      expect(inst.code, inst.stderr).toBe(0);
      const plist = readFileSync(join(PORT, 'pkg-plist'), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('@'))
        .map((l) => l.replaceAll('%%KOFFI_ARCH%%', cpu))
        .sort();
      expect(listFiles(join(stage, 'usr/local'))).toEqual(plist);
      // The launchers name the node every www/nodeNN installs.
      expect(readFileSync(join(stage, 'usr/local/sbin/hv_kvp_daemon'), 'utf8').split('\n')[0]).toBe('#!/usr/local/bin/node');
    });
  }

  it('the port declares what the Porter\'s Handbook asks of it', () => {
    const mf = readFileSync(join(PORT, 'Makefile'), 'utf8');
    for (const re of [/^PORTNAME=\s+hvguest$/m, /^CATEGORIES=\s+sysutils$/m, /^MAINTAINER=\s+\S+@\S+$/m, /^COMMENT=\s+\S/m, /^LICENSE=\s+BSD2CLAUSE MIT$/m, /^LICENSE_COMB=\s+multi$/m, /^ONLY_FOR_ARCHS=\s+amd64 i386$/m, /^USES=\s+nodejs:run$/m, /^USE_RC_SUBR=\s+hv_kvpd hv_vssd hvguestd$/m, /^NO_BUILD=\s+yes$/m, /^\.include <bsd\.port\.mk>$/m]) expect(mf).toMatch(re);
    // COMMENT: no leading article, no trailing period, at most 70 characters.
    // Node.js through USES=nodejs, not a pinned www/nodeNN that leaves the tree at end of life.
    expect(mf).not.toMatch(/^(RUN|BUILD)_DEPENDS=.*www\/node\d/m);
    const comment = /^COMMENT=\s+(.+)$/m.exec(mf)![1]!;
    expect(comment.length).toBeLessThanOrEqual(70);
    expect(comment).not.toMatch(/^(A|An|The) |\.$/);
    for (const rc of ['hv_kvpd', 'hv_vssd', 'hvguestd']) expect(readFileSync(join(PORT, 'files', `${rc}.in`), 'utf8')).toContain('%%PREFIX%%');
    // pkg-message is UCL with an install message.
    expect(readFileSync(join(PORT, 'pkg-message'), 'utf8')).toMatch(/^\[\n\{ type: install\n {2}message: <<EOM\n[\s\S]+\nEOM\n\}\n\]\n$/);
  });
});

describe('the FreeBSD port needs nothing from a make on the host to be listed', () => {
  it('pkg-plist lists no rc.d script (USE_RC_SUBR adds those) and every program of package.json', () => {
    const plist = readFileSync(join(PORT, 'pkg-plist'), 'utf8').split('\n');
    expect(plist.filter((l) => l.startsWith('etc/rc.d/'))).toEqual([]);
    for (const name of Object.keys(packageJson().bin)) expect(plist.some((l) => l.endsWith(`bin/${name}`)), name).toBe(true);
  });
});
