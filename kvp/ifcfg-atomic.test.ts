import { closeSync, fsyncSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeConfigFiles, type AtomicFs } from './ifcfg-atomic.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hvguest-atomic-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const realFs = (): AtomicFs => ({ openSync, writeSync: (fd, d) => writeSync(fd, d), fsyncSync, closeSync, renameSync, unlinkSync });

describe('writeConfigFiles', () => {
  it('writes every file with mode 0600 and leaves no temporary behind', () => {
    const paths = writeConfigFiles(dir, [
      { name: 'ifcfg-eth0', text: 'A=1\n' },
      { name: 'eth0.nmconnection', text: '[connection]\n' },
    ]);
    expect(paths).toEqual([join(dir, 'ifcfg-eth0'), join(dir, 'eth0.nmconnection')]);
    expect(readdirSync(dir).sort()).toEqual(['eth0.nmconnection', 'ifcfg-eth0']);
    expect(readFileSync(paths[0]!, 'utf8')).toBe('A=1\n');
    for (const p of paths) expect(statSync(p).mode & 0o777).toBe(0o600);
  });

  it('replaces an existing file (and its looser mode) instead of writing into it', () => {
    const p = join(dir, 'hv_set_ip_data');
    writeFileSync(p, 'old, longer content\n', { mode: 0o644 });
    const before = statSync(p).ino;
    writeConfigFiles(dir, [{ name: 'hv_set_ip_data', text: 'new\n' }]);
    expect(readFileSync(p, 'utf8')).toBe('new\n');
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(statSync(p).ino).not.toBe(before);
  });

  it('replaces a symlink at the final name rather than writing through it', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'keep\n');
    symlinkSync(victim, join(dir, 'ifcfg-eth0'));
    writeConfigFiles(dir, [{ name: 'ifcfg-eth0', text: 'x\n' }]);
    expect(readFileSync(victim, 'utf8')).toBe('keep\n');
    expect(lstatSync(join(dir, 'ifcfg-eth0')).isSymbolicLink()).toBe(false);
  });

  it('on a failed rename removes its temporaries and throws', () => {
    const fs = realFs();
    fs.renameSync = () => {
      throw Object.assign(new Error('rename: EXDEV'), { code: 'EXDEV' });
    };
    expect(() => writeConfigFiles(dir, [{ name: 'a', text: '1' }, { name: 'b', text: '2' }], fs)).toThrow(/EXDEV/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('on a failed fsync writes nothing at the final names', () => {
    const fs = realFs();
    fs.fsyncSync = () => {
      throw Object.assign(new Error('fsync: EIO'), { code: 'EIO' });
    };
    expect(() => writeConfigFiles(dir, [{ name: 'a', text: '1' }], fs)).toThrow(/EIO/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('fails cleanly when the directory is missing', () => {
    expect(() => writeConfigFiles(join(dir, 'nope'), [{ name: 'a', text: '1' }])).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
