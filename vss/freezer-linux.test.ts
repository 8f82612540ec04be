import { describe, expect, it } from 'vitest';
import { SyscallError } from '../common/os/libc.js';
import { createLinuxFreezer } from './freezer-linux.js';
import { parseMountinfo } from './mounts-linux.js';

const TABLE = parseMountinfo(`1 0 8:2 / / rw - ext4 /dev/sda2 rw
2 1 8:17 / /srv rw - xfs /dev/sdb1 rw
3 2 7:0 / /srv/img rw - ext4 /dev/loop0 rw
4 1 8:33 / /data rw - btrfs /dev/sdc1 rw
`);

function setup(fail?: string) {
  const log: string[] = [];
  const f = createLinuxFreezer({
    mounts: () => TABLE,
    backing: (dev) => (dev === '7:0' ? ['/srv/img.file'] : []),
    freezeOne: (m) => {
      log.push(`freeze ${m}`);
      if (m === fail) throw new SyscallError('EOPNOTSUPP', 95, 'ioctl', m);
      return 'frozen';
    },
    thawOne: (m) => (log.push(`thaw ${m}`), 'thawed'),
  });
  return { f, log };
}

describe('Linux freezer', () => {
  it('freezes in plan order and thaws in exact reverse', () => {
    const { f, log } = setup();
    const list = f.check().freezable;
    expect(list).toEqual(['/srv/img', '/srv', '/data', '/']);
    expect(f.freeze(list)).toEqual({ ok: true, frozen: list });
    expect(f.thaw().ok).toBe(true);
    expect(log).toEqual([...list.map((m) => `freeze ${m}`), ...[...list].reverse().map((m) => `thaw ${m}`)]);
    expect(f.frozen()).toEqual([]);
  });

  it('a failure thaws everything already frozen, in reverse, and names the failing mount', () => {
    const { f, log } = setup('/data');
    const r = f.freeze(f.check().freezable);
    expect(r.ok).toBe(false);
    expect(r.failure).toMatchObject({ mountPoint: '/data', code: 'EOPNOTSUPP' });
    expect(log).toEqual(['freeze /srv/img', 'freeze /srv', 'freeze /data', 'thaw /srv', 'thaw /srv/img']);
    expect(f.frozen()).toEqual([]);
  });

  it('a thaw with nothing recorded thaws the whole plan (C behaviour after a restart)', () => {
    const { f, log } = setup();
    expect(f.thaw().ok).toBe(true);
    expect(log).toEqual(['thaw /', 'thaw /data', 'thaw /srv', 'thaw /srv/img']);
  });

  it('dry run touches nothing', () => {
    const f = createLinuxFreezer({ mounts: () => TABLE, backing: () => [], dryRun: true, freezeOne: () => { throw new Error('must not be called'); } });
    expect(f.freeze(f.check().freezable).ok).toBe(true);
    expect(f.thaw().ok).toBe(true);
  });
});
