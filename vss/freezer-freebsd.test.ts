/** FreeBSD freezer with recorded FreeBSD mount tables and injected suspend/resume syscalls. */
import { describe, expect, it } from 'vitest';
import { SyscallError } from '../common/os/libc.js';
import { createFreebsdFreezer, parseFreebsdMountOutput } from './freezer-freebsd.js';

/** `mount` on a FreeBSD 14.1 guest installed with UFS, plus a data disk, a ZFS pool, tmpfs and NFS. */
const UFS_HOST = `/dev/da0p2 on / (ufs, local, soft-updates, journaled soft-updates)
devfs on /dev (devfs)
/dev/da0p1 on /boot/efi (msdosfs, local)
/dev/da1p1 on /var/db/mysql (ufs, local, soft-updates)
/dev/da2p1 on /devel (ufs, local)
tank on /tank (zfs, local, nfsv4acls)
tmpfs on /tmp (tmpfs, local)
nas:/export on /mnt/nas (nfs)
/dev/cd0 on /cdrom (cd9660, local, read-only)
/dev/da3p1 on /archive (ufs, local, read-only)
`;

/** A ZFS-root install (the default since FreeBSD 13): the C daemon's CHECK always failed here (pitfall F36). */
const ZFS_ROOT = `zroot/ROOT/default on / (zfs, local, noatime, nfsv4acls)
devfs on /dev (devfs)
/dev/gpt/efiboot0 on /boot/efi (msdosfs, local)
zroot/home on /home (zfs, local, noatime, nfsv4acls)
zroot/var/log on /var/log (zfs, local, noatime, noexec, nosuid, nfsv4acls)
`;

function setup(table: string, failOn?: string) {
  const calls: string[] = [];
  let fd = 20;
  const ran: string[] = [];
  const f = createFreebsdFreezer({
    mounts: () => parseFreebsdMountOutput(table),
    suspend: (m, fsid) => {
      calls.push(`suspend ${m} fsid=${fsid.readUInt32LE(0)}`);
      if (m === failOn) throw new SyscallError('EBUSY', 16, 'ioctl UFSSUSPEND', m);
      return fd++;
    },
    resume: (d, m) => void calls.push(`resume ${m} fd=${d}`),
    run: async (file, args) => {
      ran.push([file, ...args].join(' '));
      return { code: 0, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false, ms: 1 };
    },
  });
  return { f, calls, ran };
}

describe('FreeBSD freezer', () => {
  it('CHECK and FREEZE share one policy: read-write UFS frozen; /dev exactly (not /devel), read-only, ZFS, tmpfs, NFS, msdosfs explained', () => {
    const { f } = setup(UFS_HOST);
    const c = f.check();
    expect(c.ok).toBe(true);
    expect(c.freezable).toEqual(['/', '/var/db/mysql', '/devel']);
    const why = Object.fromEntries(c.notes.map((n) => [n.mountPoint, n.reason]));
    expect(why['/dev']).toMatch(/device/);
    expect(why['/tank']).toMatch(/ZFS cannot be suspended.*zpool sync/);
    expect(why['/tmp']).toMatch(/memory/);
    expect(why['/mnt/nas']).toMatch(/network/);
    expect(why['/boot/efi']).toMatch(/msdosfs/);
    expect(why['/archive']).toBe('read-only');
  });

  it('ZFS-root systems pass CHECK (nothing to suspend), and a freeze runs zpool sync first', async () => {
    const { f, ran, calls } = setup(ZFS_ROOT);
    expect(f.check()).toMatchObject({ ok: true, freezable: [] });
    await f.prepare();
    expect(ran).toEqual(['/sbin/zpool sync']);
    expect(f.freeze([]).ok).toBe(true);
    expect(calls).toEqual([]);
  });

  it('one descriptor per file system (pitfall F37); thaw resumes every one in reverse', () => {
    const { f, calls } = setup(UFS_HOST);
    const r = f.freeze(f.check().freezable);
    expect(r).toEqual({ ok: true, frozen: ['/', '/var/db/mysql', '/devel'] });
    expect(f.thaw().ok).toBe(true);
    expect(calls).toEqual(['suspend / fsid=1', 'suspend /var/db/mysql fsid=4', 'suspend /devel fsid=5', 'resume /devel fd=22', 'resume /var/db/mysql fd=21', 'resume / fd=20']);
  });

  it('a failing suspension resumes the ones already done; a second FREEZE never leaks a descriptor (F38)', () => {
    const { f, calls } = setup(UFS_HOST, '/devel');
    const r = f.freeze(f.check().freezable);
    expect(r.ok).toBe(false);
    expect(r.failure).toMatchObject({ mountPoint: '/devel', code: 'EBUSY' });
    expect(calls.slice(-2)).toEqual(['resume /var/db/mysql fd=21', 'resume / fd=20']);
    const ok = setup(UFS_HOST);
    ok.f.freeze(['/']);
    ok.f.freeze(['/']);
    expect(ok.calls).toEqual(['suspend / fsid=1', 'resume / fd=20', 'suspend / fsid=1']);
  });

  it('--include and --exclude apply to FreeBSD too', () => {
    const inc = createFreebsdFreezer({ mounts: () => parseFreebsdMountOutput(UFS_HOST), include: ['/var/db/mysql'] });
    expect(inc.check().freezable).toEqual(['/var/db/mysql']);
    const exc = createFreebsdFreezer({ mounts: () => parseFreebsdMountOutput(UFS_HOST), exclude: ['/'] });
    expect(exc.check().freezable).toEqual(['/var/db/mysql', '/devel']);
  });
});
