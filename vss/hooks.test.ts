import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runner } from '../common/os/run.js';
import { createHooks, listHooks } from './hooks.js';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function hooksDir(names: Record<string, number>) {
  dir = mkdtempSync(join(tmpdir(), 'vss-hooks-'));
  for (const [n, mode] of Object.entries(names)) {
    writeFileSync(join(dir, n), '#!/bin/sh\n');
    chmodSync(join(dir, n), mode);
  }
  return dir;
}

describe('VSS hooks', () => {
  it('lists executable files by name, skipping hidden, backup and non-executable ones; a missing directory has none', () => {
    const d = hooksDir({ '20-b': 0o755, '10-a': 0o700, '.hidden': 0o755, 'x~': 0o755, 'y.rpmsave': 0o755, 'notes.txt': 0o644 });
    expect(listHooks(d).map((p) => p.slice(d.length + 1))).toEqual(['10-a', '20-b']);
    expect(listHooks(join(d, 'nope'))).toEqual([]);
  });

  it('freeze in order; a failure (status, timeout, cannot start) thaws the ones already run, in reverse; argv only', async () => {
    const d = hooksDir({ '10-a': 0o755, '20-b': 0o755, '30-c': 0o755 });
    const calls: string[] = [];
    const run = (fail: string, how: 'code' | 'timeout' | 'error'): Runner =>
      async (file, args, opts) => {
        calls.push(`${file.slice(d.length + 1)} ${args.join(' ')} ${opts?.timeoutMs}`);
        const bad = file.endsWith(fail) && args[0] === 'freeze';
        return { code: bad && how === 'code' ? 2 : 0, signal: null, stdout: '', stderr: bad ? 'db locked' : '', timedOut: bad && how === 'timeout', truncated: false, ...(bad && how === 'error' ? { error: 'EACCES' } : {}), ms: 1 };
      };
    for (const how of ['code', 'timeout', 'error'] as const) {
      calls.length = 0;
      const f = await createHooks({ dir: d, run: run('20-b', how), timeoutMs: 1234 }).freeze();
      expect(f?.hook).toMatch(/20-b$/);
      expect(calls).toEqual(['10-a freeze 1234', '20-b freeze 1234', '10-a thaw 1234']);
    }
    calls.length = 0;
    expect(await createHooks({ dir: d, run: run('none', 'code'), timeoutMs: 1 }).thaw()).toEqual([]);
    expect(calls.map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual(['30-c thaw', '20-b thaw', '10-a thaw']);
  });
});
