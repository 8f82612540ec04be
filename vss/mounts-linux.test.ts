import { describe, expect, it } from 'vitest';
import { orderByBacking, parseMountinfo, planFreeze, type MountEntry } from './mounts-linux.js';

/** Recorded from a Debian 12 guest, plus a loop image on /srv whose own image backs a nested one. */
const MOUNTINFO = `22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 28 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=4011468k
28 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro
30 28 8:1 / /boot/efi rw,relatime shared:3 - vfat /dev/sda1 rw,fmask=0077
31 28 8:17 / /srv rw,relatime shared:4 - xfs /dev/sdb1 rw
32 28 0:40 / /tmp rw,nosuid,nodev shared:5 - tmpfs tmpfs rw
33 31 7:0 / /srv/images/my\\040disk rw,relatime shared:6 - ext4 /dev/loop0 rw
34 28 7:1 / /mnt/inner rw,relatime shared:8 - ext4 /dev/loop1 rw
35 28 8:33 / /mnt/cdrom ro,relatime shared:9 - ext4 /dev/sdc1 ro
36 28 0:50 / /mnt/nas rw,relatime shared:10 - nfs4 srv:/export rw
37 28 8:2 /home /home rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro
38 28 0:51 / /mnt/fuse rw - fuse.sshfs host:/x rw
`;

const backing = (map: Record<string, string>) => (dev: string) => (map[dev] ? [map[dev]!] : []);

describe('Linux mount selection', () => {
  const mounts = parseMountinfo(MOUNTINFO);

  it('parses mountinfo, unescaping octal escapes', () => {
    expect(mounts).toHaveLength(13);
    expect(mounts[7]).toEqual({ dev: '7:0', mountPoint: '/srv/images/my disk', fsType: 'ext4', source: '/dev/loop0', readOnly: false });
    expect(mounts[9]!.readOnly).toBe(true);
  });

  it('skips pseudo, network, FUSE, read-only, vfat and second mounts of a device; loop-backed are frozen before their holder, "/" last', () => {
    const p = planFreeze(mounts, {}, backing({ '7:0': '/srv/disk.img', '7:1': '/srv/images/my disk/inner.img' }));
    expect(p.order.map((m) => m.mountPoint)).toEqual(['/mnt/inner', '/srv/images/my disk', '/srv', '/']);
    const reasons = Object.fromEntries(p.skipped.map((s) => [s.mountPoint, s.reason]));
    expect(reasons['/boot/efi']).toMatch(/vfat/);
    expect(reasons['/tmp']).toMatch(/not a block device/);
    expect(reasons['/mnt/cdrom']).toBe('read-only');
    expect(reasons['/mnt/nas']).toMatch(/not a block device/);
    expect(reasons['/mnt/fuse']).toMatch(/not a block device/);
    expect(reasons['/home']).toMatch(/same device/);
  });

  it('a loop image backed on "/" is frozen before "/" (dependency beats "/ last" only where needed)', () => {
    const p = planFreeze(mounts, {}, backing({ '7:0': '/var/lib/disk.img', '7:1': '/srv/inner.img' }));
    expect(p.order.map((m) => m.mountPoint)).toEqual(['/srv/images/my disk', '/mnt/inner', '/srv', '/']);
  });

  it('--include restricts to exactly the named mount points; --exclude removes', () => {
    const inc = planFreeze(mounts, { include: ['/srv', '/mnt/inner/'] }, backing({}));
    expect(inc.order.map((m) => m.mountPoint)).toEqual(['/srv', '/mnt/inner']);
    const exc = planFreeze(mounts, { exclude: ['/'] }, backing({}));
    expect(exc.order.map((m) => m.mountPoint)).not.toContain('/');
  });

  it('an impossible cycle does not hang', () => {
    const a: MountEntry = { dev: '7:0', mountPoint: '/a', fsType: 'ext4', source: '/dev/loop0', readOnly: false };
    const b: MountEntry = { dev: '7:1', mountPoint: '/b', fsType: 'ext4', source: '/dev/loop1', readOnly: false };
    expect(orderByBacking([a, b], [a, b], backing({ '7:0': '/b/x', '7:1': '/a/y' }))).toHaveLength(2);
  });
});
