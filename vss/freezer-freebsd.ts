/**
 * FreeBSD freezer: UFS suspension through /dev/ufssuspend, one descriptor
 * per file system (pitfall F37), resumed by UFSRESUME + close; if the
 * daemon dies the kernel closes the descriptors and resumes them, so no
 * guard is needed here.
 *
 * One policy for CHECK and FREEZE (pitfall F36): CHECK never fails for a
 * file system FREEZE would skip; it logs one line per mount it will not
 * freeze and why. ZFS has no freeze interface; it is copy-on-write and
 * always crash-consistent on disk, so the freeze runs `zpool sync` first to
 * put recent writes into the snapshot, then suspends the UFS file systems.
 * Unverified on a real FreeBSD guest: whether UFSSUSPEND works from a
 * multi-threaded Node process (spec/vss.md 3.2).
 */
import { SyscallError } from '../common/os/libc.js';
import { freebsdMountTable, ufsResume, ufsSuspend, type FreebsdStatfs } from '../common/os/fsfreeze.js';
import type { Runner } from '../common/os/run.js';
import { resolve } from 'node:path';
import type { CheckResult, FreezeFailure, FreezeResult, Freezer, ThawResult } from './freezer.js';

export interface FreebsdFreezerOptions {
  include?: readonly string[];
  exclude?: readonly string[];
  dryRun?: boolean;
  /** The mount table (default getfsstat(2)). */
  mounts?: () => FreebsdStatfs[];
  suspend?: (mountPoint: string, fsid: Buffer) => number;
  resume?: (fd: number, mountPoint: string) => void;
  /** Runs `zpool sync` before a freeze when ZFS is mounted read-write. */
  run?: Runner;
  zpool?: string;
}

/** Why a mount is not frozen, or undefined when it is. */
export function freebsdSkipReason(m: FreebsdStatfs, include: Set<string>, exclude: Set<string>): string | undefined {
  // pitfall F35: exactly /dev and below, not /devel.
  if (m.mountPoint === '/dev' || m.mountPoint.startsWith('/dev/') || m.fsType === 'devfs') return 'device file system';
  if (include.size > 0 && !include.has(m.mountPoint)) return 'not included';
  if (exclude.has(m.mountPoint)) return 'excluded';
  if (m.readOnly) return 'read-only';
  if (m.fsType === 'ufs') return undefined;
  if (m.fsType === 'zfs') return 'ZFS cannot be suspended; it is kept crash-consistent by `zpool sync` before the freeze';
  if (m.fsType === 'tmpfs' || m.fsType === 'mfs') return 'memory file system, not part of the disk snapshot';
  if (['nfs', 'smbfs', 'fusefs', 'p9fs'].includes(m.fsType)) return `${m.fsType}: network or user-space file system, not on the VM's disks`;
  if (['procfs', 'fdescfs', 'linprocfs', 'linsysfs', 'nullfs', 'unionfs'].includes(m.fsType)) return `${m.fsType}: pseudo file system`;
  return `${m.fsType} cannot be suspended (only UFS can)`;
}

export function createFreebsdFreezer(o: FreebsdFreezerOptions): Freezer & { prepare(): Promise<void> } {
  const mounts = o.mounts ?? freebsdMountTable;
  const suspend = o.dryRun ? () => -1 : (o.suspend ?? ((m: string, fsid: Buffer) => ufsSuspend(m, fsid)));
  const resume = o.dryRun ? () => {} : (o.resume ?? ufsResume);
  const include = new Set((o.include ?? []).map((p) => resolve(p)));
  const exclude = new Set((o.exclude ?? []).map((p) => resolve(p)));
  // Descriptors of suspended file systems, freeze order.
  let held: { mountPoint: string; fd: number }[] = [];

  const table = () => {
    const all = mounts();
    const chosen: FreebsdStatfs[] = [];
    const notes: { mountPoint: string; reason: string }[] = [];
    for (const m of all) {
      const r = freebsdSkipReason(m, include, exclude);
      if (r) notes.push({ mountPoint: m.mountPoint, reason: r });
      else chosen.push(m);
    }
    return { all, chosen, notes };
  };

  const resumeAll = (): FreezeFailure[] => {
    const failures: FreezeFailure[] = [];
    for (const h of [...held].reverse()) {
      try {
        resume(h.fd, h.mountPoint);
      } catch (e) {
        failures.push({ mountPoint: h.mountPoint, code: e instanceof SyscallError ? e.code : 'EIO', message: String(e) });
      }
    }
    held = [];
    return failures;
  };

  return {
    check(): CheckResult {
      const t = table();
      return { ok: true, freezable: t.chosen.map((m) => m.mountPoint), notes: t.notes };
    },
    async prepare() {
      const t = table();
      if (o.dryRun || !o.run || !t.all.some((m) => m.fsType === 'zfs' && !m.readOnly)) return;
      await o.run(o.zpool ?? '/sbin/zpool', ['sync'], { timeoutMs: 10_000 });
    },
    freeze(list): FreezeResult {
      // pitfall F38: a second FREEZE never drops a descriptor.
      if (held.length > 0) resumeAll();
      const byPoint = new Map(mounts().map((m) => [m.mountPoint, m]));
      for (const mp of list) {
        const m = byPoint.get(mp);
        try {
          if (!m) throw new SyscallError('ENOENT', -1, 'getfsstat', `${mp} is no longer mounted`);
          held.push({ mountPoint: mp, fd: suspend(mp, m.fsid) });
        } catch (e) {
          const thawFailures = resumeAll();
          const failure = e instanceof SyscallError ? { mountPoint: mp, code: e.code, message: e.message } : { mountPoint: mp, code: 'EIO', message: String(e) };
          return { ok: false, frozen: [], failure, thawFailures };
        }
      }
      return { ok: true, frozen: held.map((h) => h.mountPoint) };
    },
    thaw(): ThawResult {
      const failures = resumeAll();
      return { ok: failures.length === 0, failures };
    },
    frozen: () => held.map((h) => h.mountPoint),
  };
}

/**
 * Parse FreeBSD `mount` output ("/dev/da0p2 on / (ufs, local, soft-updates)"),
 * for recorded mount tables in tests; the fsid is synthesized from the line number.
 */
export function parseFreebsdMountOutput(text: string): FreebsdStatfs[] {
  const out: FreebsdStatfs[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) on (.+) \(([^,)]+)((?:, [^,)]+)*)\)\s*$/.exec(line.trim());
    if (!m) continue;
    const flags = (m[4] ?? '').split(',').map((s) => s.trim());
    const fsid = Buffer.alloc(8);
    fsid.writeUInt32LE(out.length + 1, 0);
    fsid.writeUInt32LE(0x35, 4);
    out.push({ source: m[1]!, mountPoint: m[2]!, fsType: m[3]!, readOnly: flags.includes('read-only'), fsid });
  }
  return out;
}
