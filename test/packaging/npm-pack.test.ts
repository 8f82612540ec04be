/**
 * `npm pack` gives an installable package: packed from the checkout (dist/
 * as `npm test` built it; --ignore-scripts so the test does not recompile
 * dist/ under other running tests), installed globally into a temporary
 * prefix, and its bin entries work from there, koffi included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, run, tempDir } from '../lib/procs.js';
import { cleanEnv, packageJson } from './make.js';

describe('npm pack', () => {
  let tmp: { dir: string; remove: () => void };
  let tarball: string;
  let files: string[];

  beforeAll(async () => {
    tmp = tempDir('hvguest-npm-');
    const r = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp.dir], { env: cleanEnv(), ms: 120000 });
    if (r.code !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
    const info = JSON.parse(r.stdout)[0] as { filename: string; files: { path: string }[] };
    tarball = join(tmp.dir, info.filename);
    files = info.files.map((f) => f.path);
  }, 150000);

  afterAll(() => tmp?.remove());

  it('holds the launchers and the compiled programs, not the sources or the tests', () => {
    const { bin, name, version } = packageJson();
    expect(tarball.endsWith(`${name}-${version}.tgz`)).toBe(true);
    for (const [n, launcher] of Object.entries(bin)) expect(files, n).toContain(launcher);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'dist/kvp/main.js', 'dist/vss/guard-main.js', 'dist/cli/hvctl.js', 'dist/sim/main.js']));
    expect(files.filter((f) => f.endsWith('.ts') || f.startsWith('node_modules/') || f.startsWith('test/'))).toEqual([]);
  });

  it('installs with `npm install -g --prefix`, and every bin entry runs from there', async () => {
    const prefix = join(tmp.dir, 'prefix');
    mkdirSync(prefix);
    const inst = await run('npm', ['install', '-g', '--prefix', prefix, tarball, '--no-audit', '--no-fund', '--prefer-offline'], { env: cleanEnv(), ms: 240000 });
    expect(inst.code, inst.stderr).toBe(0);
    const env = cleanEnv();
    for (const name of Object.keys(packageJson().bin)) {
      const exe = join(prefix, 'bin', name);
      expect(existsSync(exe), name).toBe(true);
      const h = await run(exe, ['-h'], { env });
      expect(h.code, `${name} -h: ${h.stderr}`).toBe(0);
      expect(h.stdout, name).toMatch(new RegExp(`^Usage: ${name} `));
    }
    // koffi (pool file locks) from the installed dependencies.
    const pools = join(tmp.dir, 'pools');
    mkdirSync(pools);
    const hvctl = join(prefix, 'bin', 'hvctl');
    const set = await run(hvctl, ['kvp', 'set', 'From', 'npm', '--pool-dir', pools, '--flavor', 'linux'], { env });
    expect(set.code, set.stderr).toBe(0);
    const get = await run(hvctl, ['kvp', 'get', 'From', '--pool-dir', pools, '--flavor', 'linux'], { env });
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout.trim()).toBe('From\tnpm');
    // The runtime dependencies came with the package, outside the checkout; no devDependency did.
    const deps = join(prefix, 'lib', 'node_modules', 'hvguest', 'node_modules');
    for (const d of ['koffi', 'pino', 'commander']) expect(existsSync(join(deps, d)), d).toBe(true);
    for (const d of ['vitest', 'typescript', 'esbuild', 'fast-check']) expect(existsSync(join(deps, d)), d).toBe(false);
    expect(prefix.startsWith(ROOT)).toBe(false);
  }, 300000);
});
