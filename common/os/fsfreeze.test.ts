/**
 * The freeze primitive through an injected C library: the interlock refuses
 * before any syscall, EBUSY/EINVAL map to already-frozen/not-frozen, the
 * descriptor is always closed, and UFS suspension uses one descriptor per
 * file system. No real FIFREEZE happens here.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constants } from 'node:os';
import { ioctlNumbers } from '../device/ioctl.js';
import { SyscallError, setLibc, type RawLibc } from './libc.js';
import { checkFreezeAllowed, decodeStatfs, freezeAllowList, fsFreeze, fsThaw, setMountRootStats, ufsResume, ufsSuspend } from './fsfreeze.js';

type Call = [string, ...unknown[]];

/** A scripted libc: records calls; ioctl results come from `ioctlErrno` (0 = success). */
function fake(opts: { ioctlErrno?: number; openErrno?: number } = {}) {
  const calls: Call[] = [];
  let errno = 0;
  let nextFd = 10;
  const lib: Partial<RawLibc> = {
    open: (p, f) => {
      calls.push(['open', p, f]);
      if (opts.openErrno) return (errno = opts.openErrno), -1;
      return nextFd++;
    },
    close: (fd) => (calls.push(['close', fd]), 0),
    ioctl: (fd, req, arg) => {
      calls.push(['ioctl', fd, req, Buffer.from(arg)]);
      if (opts.ioctlErrno) return (errno = opts.ioctlErrno), -1;
      return 0;
    },
    errno: () => errno,
  };
  setLibc(lib as RawLibc);
  return calls;
}

/** Every scripted descriptor is the root of its own file system (device 2; parents on device 1) unless a test says otherwise. */
/** What statfs(2) reports as the fsid of any path (FreeBSD), per test. */
let liveFsid = Buffer.alloc(8);
const rootStats = { isSymlink: () => false, fdDev: () => 2, dev: () => 1, fsid: () => liveFsid };
beforeEach(() => {
  liveFsid = Buffer.alloc(8);
  setMountRootStats(rootStats);
});
afterEach(() => {
  setLibc(undefined);
  setMountRootStats(undefined);
});

const ALLOW = { HVGUEST_FREEZE_ALLOW: '/t/a:/t/b/' };
const { FIFREEZE, FITHAW } = ioctlNumbers('linux');

describe('HVGUEST_FREEZE_ALLOW interlock', () => {
  it('unset allows everything; set allows exactly the listed mount points (normalised)', () => {
    expect(freezeAllowList({})).toBeUndefined();
    expect([...freezeAllowList(ALLOW)!]).toEqual(['/t/a', '/t/b']);
    expect(() => checkFreezeAllowed('/t/a', ALLOW)).not.toThrow();
    expect(() => checkFreezeAllowed('/t/b', ALLOW)).not.toThrow();
    expect(() => checkFreezeAllowed('/', ALLOW)).toThrow(/EHVALLOW|HVGUEST_FREEZE_ALLOW/);
    expect(() => checkFreezeAllowed('/t/a/sub', ALLOW)).toThrow(SyscallError);
    expect(() => checkFreezeAllowed('/t', ALLOW)).toThrow(SyscallError);
    // An empty list allows nothing.
    expect(() => checkFreezeAllowed('/t/a', { HVGUEST_FREEZE_ALLOW: '' })).toThrow(SyscallError);
  });

  it('a refused freeze makes no system call at all', () => {
    const calls = fake();
    expect(() => fsFreeze('/', ALLOW)).toThrow(expect.objectContaining({ code: 'EHVALLOW' }));
    expect(() => ufsSuspend('/', Buffer.alloc(8), ALLOW)).toThrow(expect.objectContaining({ code: 'EHVALLOW' }));
    expect(calls).toEqual([]);
  });
});

describe('fsFreeze / fsThaw', () => {
  it('opens the mount point read-only, FIFREEZE with argument 0, closes', () => {
    const calls = fake();
    expect(fsFreeze('/t/a', ALLOW)).toBe('frozen');
    expect(calls.map((c) => c[0])).toEqual(['open', 'ioctl', 'close']);
    expect(calls[0]![1]).toBe('/t/a');
    expect(calls[1]![2]).toBe(FIFREEZE);
    expect(calls[1]![3]).toEqual(Buffer.alloc(4));
  });

  it('EBUSY on freeze is "already frozen", EINVAL on thaw is "not frozen" (spec/vss.md 2.2)', () => {
    fake({ ioctlErrno: constants.errno.EBUSY });
    expect(fsFreeze('/t/a', ALLOW)).toBe('already');
    const calls = fake({ ioctlErrno: constants.errno.EINVAL });
    expect(fsThaw('/t/a')).toBe('not-frozen');
    expect(calls[1]![2]).toBe(FITHAW);
    expect(calls.at(-1)![0]).toBe('close');
  });

  it('refuses, before FIFREEZE, a directory that is not the root of a mount (unmounted meanwhile) or a symlink', () => {
    let calls = fake();
    setMountRootStats({ ...rootStats, fdDev: () => 1, dev: () => 1 });
    expect(() => fsFreeze('/t/a', ALLOW)).toThrow(expect.objectContaining({ code: 'EHVNOTMOUNT' }));
    expect(calls.map((c) => c[0])).toEqual(['open', 'close']);
    calls = fake();
    setMountRootStats({ ...rootStats, isSymlink: () => true });
    expect(() => fsFreeze('/t/a', ALLOW)).toThrow(expect.objectContaining({ code: 'EHVNOTMOUNT' }));
    expect(calls.some((c) => c[0] === 'ioctl')).toBe(false);
  });

  it('other errors throw with the errno name, and the descriptor is still closed', () => {
    const calls = fake({ ioctlErrno: constants.errno.EPERM });
    expect(() => fsFreeze('/t/a', ALLOW)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(calls.at(-1)![0]).toBe('close');
    fake({ openErrno: constants.errno.ENOENT });
    expect(() => fsThaw('/gone')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

describe('FreeBSD UFS suspension (injected syscalls)', () => {
  it('one /dev/ufssuspend descriptor per file system, UFSSUSPEND with the fsid; resume = UFSRESUME + close', () => {
    const calls = fake();
    const fsid = Buffer.from([1, 0, 0, 0, 0x35, 0, 0, 0]);
    liveFsid = fsid;
    const fd1 = ufsSuspend('/t/a', fsid, ALLOW);
    const fd2 = ufsSuspend('/t/b', fsid, ALLOW);
    expect(fd1).not.toBe(fd2);
    const { UFSSUSPEND, UFSRESUME } = ioctlNumbers('freebsd');
    expect(calls.filter((c) => c[0] === 'open').map((c) => c[1])).toEqual(['/dev/ufssuspend', '/dev/ufssuspend']);
    expect(calls[1]).toEqual(['ioctl', fd1, UFSSUSPEND, fsid]);
    ufsResume(fd1, '/t/a');
    expect(calls.slice(-2).map((c) => c.slice(0, 3))).toEqual([['ioctl', fd1, UFSRESUME], ['close', fd1]]);
  });

  it('refuses, before any syscall, when the path no longer holds the fsid the mount table listed', () => {
    const calls = fake();
    liveFsid = Buffer.from([2, 0, 0, 0, 0x35, 0, 0, 0]);
    expect(() => ufsSuspend('/t/a', Buffer.from([1, 0, 0, 0, 0x35, 0, 0, 0]), ALLOW)).toThrow(expect.objectContaining({ code: 'EHVNOTMOUNT' }));
    setMountRootStats({ ...rootStats, fsid: () => { throw new Error('statfs failed'); } });
    expect(() => ufsSuspend('/t/a', Buffer.alloc(8), ALLOW)).toThrow(expect.objectContaining({ code: 'EHVNOTMOUNT' }));
    setMountRootStats({ ...rootStats, isSymlink: () => true });
    expect(() => ufsSuspend('/t/a', Buffer.alloc(8), ALLOW)).toThrow(expect.objectContaining({ code: 'EHVNOTMOUNT' }));
    expect(calls).toEqual([]);
  });

  it('a failed UFSSUSPEND closes its descriptor (pitfall F39)', () => {
    const calls = fake({ ioctlErrno: constants.errno.EBUSY });
    expect(() => ufsSuspend('/t/a', Buffer.alloc(8), ALLOW)).toThrow(SyscallError);
    expect(calls.map((c) => c[0])).toEqual(['open', 'ioctl', 'close']);
  });

  it('decodes struct statfs records as getfsstat(2) returns them', () => {
    const rec = Buffer.alloc(2344);
    rec.writeBigUInt64LE(0x1001n, 8); // MNT_RDONLY | MNT_LOCAL
    rec.writeUInt32LE(0xdeadbeef, 192);
    rec.write('ufs', 280);
    rec.write('/dev/da0p2', 296);
    rec.write('/', 1320);
    const two = Buffer.concat([rec, Buffer.alloc(2344)]);
    two.write('zfs', 2344 + 280);
    two.write('tank', 2344 + 296);
    two.write('/tank', 2344 + 1320);
    const [a, b] = decodeStatfs(two, 2);
    expect(a).toMatchObject({ mountPoint: '/', source: '/dev/da0p2', fsType: 'ufs', readOnly: true });
    expect(a!.fsid.readUInt32LE(0)).toBe(0xdeadbeef);
    expect(b).toMatchObject({ mountPoint: '/tank', fsType: 'zfs', readOnly: false });
  });
});
