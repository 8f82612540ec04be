/**
 * The bundled programs start through load.js with V8's code cache
 * (NAME.js.cache, made by build/mk/bundle.js). The cache is only a
 * shortcut: a cache for other source bytes, one V8 refuses, a missing one
 * or HVGUEST_CODE_CACHE=off all still start the program, compiled from
 * source. Built into a temporary directory, never the checkout's bundle/.
 */
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, run, tempDir } from '../lib/procs.js';
import { packageJson } from './make.js';

describe('V8 code cache of the bundled programs', () => {
  const tmp = tempDir('hvguest-code-cache-');
  let lib = '';

  beforeAll(async () => {
    const r = await run(process.execPath, [join(ROOT, 'build/mk/bundle.js')], { env: { BUNDLE: join(tmp.dir, 'bundle') }, ms: 120000 });
    expect(r.code, r.stderr).toBe(0);
    lib = join(tmp.dir, 'bundle', 'hvguest');
  }, 130000);
  afterAll(() => tmp.remove());

  const state = async (name: string, env: NodeJS.ProcessEnv = {}) => {
    const r = await run(process.execPath, [join(lib, 'load.js'), '--cache-state', name], { env });
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  const help = (name: string, env: NodeJS.ProcessEnv = {}) => run(process.execPath, [join(lib, 'load.js'), name, '--help'], { env });

  it('every program has a cache that this Node.js uses, and starts with it', async () => {
    for (const name of Object.keys(packageJson().bin)) {
      expect(existsSync(join(lib, `${name}.js.cache`)), name).toBe(true);
      expect(await state(name)).toBe(`${name} used`);
    }
    const r = await help('hv_kvp_daemon');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: hv_kvp_daemon /);
  });

  it('a cache made for other source bytes is not used (stale), and the program still starts', async () => {
    const file = join(lib, 'hvctl.js');
    const saved = readFileSync(file);
    try {
      // Same length, one byte of a comment different: V8's own check (the length) would not notice.
      const changed = Buffer.from(saved);
      const i = changed.indexOf('// node_modules/');
      expect(i).toBeGreaterThan(0);
      changed[i + 3] = 'N'.charCodeAt(0);
      writeFileSync(file, changed);
      expect(await state('hvctl')).toBe('hvctl stale');
      const r = await help('hvctl');
      expect(r.code, r.stderr).toBe(0);
    } finally {
      writeFileSync(file, saved);
    }
    expect(await state('hvctl')).toBe('hvctl used');
  });

  it('a cache V8 refuses (corrupt data under the right hash) is rejected, and the program still starts', async () => {
    const cache = join(lib, 'hvsim.js.cache');
    const saved = readFileSync(cache);
    try {
      const bad = Buffer.from(saved);
      bad.fill(0x5a, 32 + 16); // keep our SHA-256 and V8's header start, garble the rest
      writeFileSync(cache, bad);
      expect(await state('hvsim')).toBe('hvsim rejected');
      const r = await help('hvsim');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/hvsim/);
    } finally {
      writeFileSync(cache, saved);
    }
  });

  it('a missing cache, or HVGUEST_CODE_CACHE=off, compiles from source', async () => {
    expect(await state('hv_vss_daemon', { HVGUEST_CODE_CACHE: 'off' })).toBe('hv_vss_daemon off');
    const cache = join(lib, 'hv_vss_daemon.js.cache');
    copyFileSync(cache, `${cache}.keep`);
    rmSync(cache);
    try {
      expect(await state('hv_vss_daemon')).toBe('hv_vss_daemon missing');
      const r = await help('hv_vss_daemon');
      expect(r.code, r.stderr).toBe(0);
    } finally {
      copyFileSync(`${cache}.keep`, cache);
      rmSync(`${cache}.keep`);
    }
  });

  it('names that are not programs are refused with exit 70, a missing name with usage (64)', async () => {
    const r = await run(process.execPath, [join(lib, 'load.js'), '../etc/passwd']);
    expect(r.code).toBe(70);
    expect(r.stderr).toMatch(/not a program name/);
    const none = await run(process.execPath, [join(lib, 'load.js')]);
    expect(none.code).toBe(64);
    expect(none.stderr).toMatch(/^usage: node load\.js/);
  });
});
