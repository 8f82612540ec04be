/**
 * The lowest-level file-system freeze primitive (Linux FIFREEZE/FITHAW on a
 * mount point) and the safety interlock every freeze goes through.
 *
 * Interlock: when HVGUEST_FREEZE_ALLOW is set (colon-separated mount
 * points), freezing any other mount point is refused here, whatever the
 * layers above decided. Tests set it so that a bug can never freeze the
 * machine running them. Thawing is never refused: it cannot hang anything.
 */
import { createRequire } from 'node:module';
import { fstatSync, lstatSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ioctlNumbers } from '../device/ioctl.js';
import { SyscallError, closeFd, errnoNumber, ioctlFd, openFd, osFlags } from './libc.js';

export const FREEZE_ALLOW_ENV = 'HVGUEST_FREEZE_ALLOW';

/** The allowed mount points, or undefined when the variable is unset (everything allowed). */
export function freezeAllowList(env: NodeJS.ProcessEnv = process.env): Set<string> | undefined {
  const v = env[FREEZE_ALLOW_ENV];
  if (v === undefined) return undefined;
  return new Set(
    v
      .split(':')
      .filter((p) => p !== '')
      .map((p) => resolve(p)),
  );
}

/** Throws SyscallError code 'EHVALLOW' when the interlock forbids freezing `mountPoint`. */
export function checkFreezeAllowed(mountPoint: string, env: NodeJS.ProcessEnv = process.env): void {
  const allow = freezeAllowList(env);
  if (allow && !allow.has(resolve(mountPoint))) {
    throw new SyscallError('EHVALLOW', -1, 'freeze', `${mountPoint} (not in ${FREEZE_ALLOW_ENV})`);
  }
}

// Allocated once, before any freeze: the thaw path must not need anything new.
const ARG = Buffer.alloc(4);

/**
 * Refuse to freeze through anything but the root of a mounted file system:
 * a symlink, or a directory on the same device as its parent (the mount went
 * away between planning and freezing, or is hidden by another mount), would
 * make FIFREEZE freeze whatever file system holds that directory, which may
 * be the machine's own root. Checked on the opened descriptor.
 */
export interface MountRootStats {
  isSymlink(path: string): boolean;
  /** st_dev of an open descriptor. */
  fdDev(fd: number): number;
  /** st_dev of a path. */
  dev(path: string): number;
  /** FreeBSD: f_fsid of statfs(2) on a path (the file system that path is on now). */
  fsid(path: string): Buffer;
}

const realStats: MountRootStats = {
  isSymlink: (p) => lstatSync(p).isSymbolicLink(),
  fdDev: (fd) => fstatSync(fd).dev,
  dev: (p) => statSync(p).dev,
  fsid: (p) => freebsdStatfsOf(p).fsid,
};
let stats = realStats;

/** Replace the stat calls of the mount-root check (tests with scripted descriptors); undefined restores them. */
export function setMountRootStats(fake: MountRootStats | undefined): void {
  stats = fake ?? realStats;
}

function checkMountRoot(mountPoint: string, fd: number): void {
  const path = resolve(mountPoint);
  if (stats.isSymlink(path)) throw new SyscallError('EHVNOTMOUNT', -1, 'freeze', `${mountPoint} (a symbolic link)`);
  if (path !== '/' && stats.fdDev(fd) === stats.dev(dirname(path))) {
    throw new SyscallError('EHVNOTMOUNT', -1, 'freeze', `${mountPoint} (not the root of a mounted file system)`);
  }
}

function ioctlOnMount(mountPoint: string, req: number, mustBeMountRoot = false): void {
  const f = osFlags();
  const fd = openFd(mountPoint, f.O_RDONLY | f.O_CLOEXEC);
  try {
    if (mustBeMountRoot) checkMountRoot(mountPoint, fd);
    ARG.fill(0);
    ioctlFd(fd, req, ARG, mountPoint);
  } finally {
    closeFd(fd);
  }
}

/**
 * FIFREEZE one mount point. 'already' when the kernel says EBUSY (already
 * frozen: the same device mounted twice, btrfs subvolumes, spec/vss.md 2.2).
 * Throws SyscallError (EHVALLOW from the interlock, or the syscall's errno).
 */
export function fsFreeze(mountPoint: string, env: NodeJS.ProcessEnv = process.env): 'frozen' | 'already' {
  checkFreezeAllowed(mountPoint, env);
  try {
    ioctlOnMount(mountPoint, ioctlNumbers('linux').FIFREEZE, true);
    return 'frozen';
  } catch (e) {
    if (e instanceof SyscallError && e.errno === errnoNumber('EBUSY')) return 'already';
    throw e;
  }
}

/** FITHAW one mount point; 'not-frozen' when the kernel says EINVAL. Throws SyscallError. */
export function fsThaw(mountPoint: string): 'thawed' | 'not-frozen' {
  try {
    ioctlOnMount(mountPoint, ioctlNumbers('linux').FITHAW);
    return 'thawed';
  } catch (e) {
    if (e instanceof SyscallError && e.errno === errnoNumber('EINVAL')) return 'not-frozen';
    throw e;
  }
}

/** Resolve everything the freeze and thaw paths use now (koffi, libc), so nothing loads lazily while frozen. */
export function preloadFreezePrimitive(): void {
  ioctlNumbers('linux');
  osFlags();
  // Binding libc loads koffi and the shared library; a failing open proves the path works.
  try {
    openFd('/nonexistent-hvguest-preload', osFlags().O_RDONLY | osFlags().O_CLOEXEC);
  } catch {
    // expected
  }
}

// ---- FreeBSD: UFS suspension through /dev/ufssuspend (spec/vss.md 3.2) ----

export const UFSSUSPEND_PATH = '/dev/ufssuspend';

/** One entry of getfsstat(2). */
export interface FreebsdStatfs {
  mountPoint: string;
  source: string;
  fsType: string;
  readOnly: boolean;
  /** fsid_t, 8 bytes, as UFSSUSPEND wants it. */
  fsid: Buffer;
}

// struct statfs since FreeBSD 12 (ino64): f_flags at 8, f_fsid at 192, f_fstypename at 280 (16),
// f_mntfromname at 296 (1024), f_mntonname at 1320 (1024); 2344 bytes.
const STATFS_SIZE = 2344;
const MNT_RDONLY = 0x1n;
const MNT_NOWAIT = 2;

const cstr = (b: Buffer, off: number, len: number) => {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? len : z).toString('utf8');
};

/** Decode getfsstat(2) output. */
export function decodeStatfs(buf: Buffer, count: number): FreebsdStatfs[] {
  const out: FreebsdStatfs[] = [];
  for (let i = 0; i < count && (i + 1) * STATFS_SIZE <= buf.length; i++) {
    const b = buf.subarray(i * STATFS_SIZE, (i + 1) * STATFS_SIZE);
    out.push({
      readOnly: (b.readBigUInt64LE(8) & MNT_RDONLY) !== 0n,
      fsid: Buffer.from(b.subarray(192, 200)),
      fsType: cstr(b, 280, 16),
      source: cstr(b, 296, 1024),
      mountPoint: cstr(b, 1320, 1024),
    });
  }
  return out;
}

/** statfs(2) of one path, FreeBSD only. */
export function freebsdStatfsOf(path: string): FreebsdStatfs {
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const statfs = koffi.load('libc.so.7').func('int statfs(const char *path, void *buf)');
  const buf = Buffer.alloc(STATFS_SIZE);
  if ((statfs(path, buf) as number) < 0) throw new SyscallError('EIO', -1, 'statfs', path);
  return decodeStatfs(buf, 1)[0]!;
}

/** getmntinfo(MNT_NOWAIT) through getfsstat(2), FreeBSD only. */
export function freebsdMountTable(): FreebsdStatfs[] {
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.7');
  const getfsstat = lib.func('int getfsstat(void *buf, long bufsize, int mode)');
  const n = getfsstat(null, 0, MNT_NOWAIT) as number;
  if (n < 0) throw new SyscallError('EIO', -1, 'getfsstat', 'mount table');
  const buf = Buffer.alloc((n + 8) * STATFS_SIZE);
  const got = getfsstat(buf, buf.length, MNT_NOWAIT) as number;
  if (got < 0) throw new SyscallError('EIO', -1, 'getfsstat', 'mount table');
  return decodeStatfs(buf, got);
}

/**
 * Suspend one UFS file system on its own /dev/ufssuspend descriptor (one
 * suspension per descriptor, pitfall F37); returns the descriptor, whose
 * close (or ufsResume) resumes it. Same interlock as fsFreeze.
 */
export function ufsSuspend(mountPoint: string, fsid: Buffer, env: NodeJS.ProcessEnv = process.env): number {
  checkFreezeAllowed(mountPoint, env);
  // UFSSUSPEND acts on the fsid, the interlock on the name: make sure the
  // name still leads to that file system (it may have been unmounted, or
  // another one mounted over it, since the mount table was read).
  let live: Buffer | undefined;
  try {
    live = stats.isSymlink(resolve(mountPoint)) ? undefined : stats.fsid(mountPoint);
  } catch {
    live = undefined;
  }
  if (!live?.equals(fsid)) {
    throw new SyscallError('EHVNOTMOUNT', -1, 'freeze', `${mountPoint} (no longer the file system the mount table listed)`);
  }
  const f = osFlags();
  const fd = openFd(UFSSUSPEND_PATH, f.O_RDWR | f.O_CLOEXEC);
  try {
    ioctlFd(fd, ioctlNumbers('freebsd').UFSSUSPEND, Buffer.from(fsid), mountPoint);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  return fd;
}

/** Resume what `fd` suspended and close it; closing alone also resumes, so errors are ignored. */
export function ufsResume(fd: number, mountPoint: string): void {
  try {
    ioctlFd(fd, ioctlNumbers('freebsd').UFSRESUME, Buffer.alloc(0), mountPoint);
  } catch {
    // close below resumes anyway
  } finally {
    closeFd(fd);
  }
}
