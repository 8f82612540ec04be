/**
 * What sits under a pool file's name is not trusted: a symbolic link is
 * never followed (nothing is read or written through it), a directory or
 * FIFO is refused without blocking, and either makes only that pool's
 * operations fail, so the daemon still starts and serves the others.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../test/lib/procs.js';
import { openPoolStore } from './pool-store.js';
import { poolFileName } from './pool-format.js';
import { journalFileName } from './pool-journal.js';

const k = (s: string) => Buffer.from(s);

describe('pool file names that are not regular files', () => {
  let tmp: { dir: string; remove: () => void };
  let dir: string;
  beforeEach(() => {
    tmp = tempDir();
    dir = join(tmp.dir, 'pool');
    mkdirSync(dir);
  });
  afterEach(() => tmp.remove());

  it('a symlinked pool file is refused (ELOOP), its target untouched; the other pools work', () => {
    const target = join(tmp.dir, 'target');
    writeFileSync(target, 'precious');
    symlinkSync(target, join(dir, poolFileName(1)));
    const s = openPoolStore({ dir, flavor: 'linux' });
    try {
      expect(() => s.set(1, k('a'), k('b'))).toThrow(expect.objectContaining({ code: 'ELOOP' }));
      expect(() => s.list(1)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
      s.set(0, k('a'), k('b'));
      expect(s.get(0, k('a'))?.value.toString()).toBe('b');
    } finally {
      s.close();
    }
    expect(readFileSync(target, 'utf8')).toBe('precious');
    expect(lstatSync(join(dir, poolFileName(1))).isSymbolicLink()).toBe(true);
  });

  it('read-only (hvctl) refuses the symlink too', () => {
    writeFileSync(join(tmp.dir, 'target'), Buffer.alloc(2560));
    symlinkSync(join(tmp.dir, 'target'), join(dir, poolFileName(3)));
    expect(() => openPoolStore({ dir, flavor: 'linux', readOnly: true }).list(3)).toThrow(/ELOOP|symbolic/);
  });

  it('a directory (EISDIR) or a FIFO (EFTYPE, without blocking) under a pool name fails only that pool', () => {
    mkdirSync(join(dir, poolFileName(2)));
    execFileSync('mkfifo', [join(dir, poolFileName(4))]);
    const s = openPoolStore({ dir, flavor: 'freebsd' });
    try {
      expect(() => s.list(2)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
      expect(() => s.set(4, k('a'), k('b'))).toThrow(expect.objectContaining({ code: 'EFTYPE', message: expect.stringMatching(/not a regular file/) }));
      s.set(3, k('a'), k('b'));
      expect(s.list(3).length).toBe(1);
    } finally {
      s.close();
    }
  });

  it('a symlinked journal is never written through: opening that pool fails, naming the file', () => {
    const target = join(tmp.dir, 'target');
    writeFileSync(target, 'precious');
    symlinkSync(target, join(dir, journalFileName(0)));
    expect(() => openPoolStore({ dir, flavor: 'linux' })).toThrow(/ELOOP/);
    expect(readFileSync(target, 'utf8')).toBe('precious');
  });
});

describe('pool directory permissions', () => {
  let tmp: { dir: string; remove: () => void };
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.remove());

  it.each([0o777, 0o1777, 0o757])('a world-writable pool directory (mode %o) is refused with EPERM naming the directory and the mode', (mode) => {
    const dir = join(tmp.dir, 'pool');
    mkdirSync(dir);
    chmodSync(dir, mode);
    expect(() => openPoolStore({ dir, flavor: 'linux' })).toThrow(expect.objectContaining({ code: 'EPERM', message: expect.stringContaining(`${dir} is world-writable (mode ${mode.toString(8).padStart(4, '0')})`) }));
    // hvctl's read-only view is not refused: it only reads.
    openPoolStore({ dir, flavor: 'linux', readOnly: true }).close();
  });

  it('group-writable is left alone (a site may run a writer group)', () => {
    const dir = join(tmp.dir, 'pool');
    mkdirSync(dir);
    chmodSync(dir, 0o775);
    openPoolStore({ dir, flavor: 'linux' }).close();
  });
});
