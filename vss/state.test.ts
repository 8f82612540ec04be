import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readState, removeState, writeState } from './state.js';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('VSS state file', () => {
  it('round trips, is replaced atomically, and garbage or absence reads as "nothing frozen"', () => {
    dir = mkdtempSync(join(tmpdir(), 'vss-state-'));
    const p = join(dir, 'state');
    expect(readState(p)).toBeUndefined();
    writeState(p, { pid: 42, since: '2026-01-01T00:00:00.000Z', flavor: 'linux', mounts: ['/b', '/a'] });
    expect(readState(p)).toEqual({ pid: 42, since: '2026-01-01T00:00:00.000Z', flavor: 'linux', mounts: ['/b', '/a'] });
    writeFileSync(p, '{"mounts": "oops"}');
    expect(readState(p)).toBeUndefined();
    writeFileSync(p, 'not json');
    expect(readState(p)).toBeUndefined();
    removeState(p);
    removeState(p);
    expect(existsSync(p)).toBe(false);
  });
});
