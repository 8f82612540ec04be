/**
 * Which Linux mounts a freeze covers, and in which order: parse
 * /proc/self/mountinfo, apply the skip rules (spec/vss.md 2.2, pitfalls
 * V7, V8, L8), then order by loop-backing dependencies.
 *
 * Unlike the C daemon, loop-backed file systems are frozen, not skipped: a
 * file system whose backing file lives on another mounted file system is
 * frozen before it and thawed after it (freezing the holder first would
 * deadlock the loop device's flush). With no dependencies "/" goes last on
 * freeze; thaw is the exact reverse ("/" first, so logging can resume early).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';

export interface MountEntry {
  mountPoint: string;
  source: string;
  fsType: string;
  /** "MAJ:MIN" of the device. */
  dev: string;
  readOnly: boolean;
}

/** Where the backing file of a (loop) block device lives, or undefined; follows dm slaves too. */
export type BackingLookup = (dev: string) => string[];

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parse /proc/self/mountinfo text; malformed lines are ignored. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || sep + 3 > f.length) continue;
    const opts = (f[5] ?? '').split(',');
    const superOpts = (f[sep + 3] ?? '').split(',');
    out.push({
      dev: f[2]!,
      mountPoint: unescape(f[4]!),
      fsType: f[sep + 1]!,
      source: unescape(f[sep + 2]!),
      readOnly: opts.includes('ro') || superOpts.includes('ro'),
    });
  }
  return out;
}

/** File system types that cannot or must not be frozen (pitfall V8); anything not backed by /dev/ is skipped anyway. */
export const SKIP_TYPES: ReadonlySet<string> = new Set(['vfat', 'msdos', 'exfat', 'ntfs', 'ntfs3', 'iso9660', 'udf', 'squashfs', 'erofs', 'nfs', 'nfs4', 'cifs', 'smb3', 'ceph', 'glusterfs', '9p', 'virtiofs', 'tmpfs', 'ramfs', 'overlay', 'devtmpfs', 'zfs']);

export interface SelectOptions {
  /** When non-empty, only these mount points are considered. */
  include?: readonly string[];
  exclude?: readonly string[];
}

export interface Skipped {
  mountPoint: string;
  reason: string;
}

export interface FreezePlan {
  /** Freeze order; thaw is the reverse. */
  order: MountEntry[];
  skipped: Skipped[];
}

const isUnder = (path: string, mount: string) => mount === '/' || path === mount || path.startsWith(`${mount}/`);

/** The mount (of `mounts`) that holds `path`: the last-mounted longest prefix. */
export function mountOf(path: string, mounts: readonly MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) if (isUnder(path, m.mountPoint) && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  return best;
}

/** Apply the skip rules and order the rest for freezing. */
export function planFreeze(mounts: readonly MountEntry[], opts: SelectOptions, backing: BackingLookup): FreezePlan {
  const include = new Set((opts.include ?? []).map((p) => resolve(p)));
  const exclude = new Set((opts.exclude ?? []).map((p) => resolve(p)));
  const skipped: Skipped[] = [];
  const chosen: MountEntry[] = [];
  const seenDev = new Set<string>();
  // A mount point covered by a later mount is not reachable; only the top one counts.
  const top = new Map<string, MountEntry>();
  for (const m of mounts) top.set(m.mountPoint, m);
  for (const m of mounts) {
    const skip = (reason: string) => skipped.push({ mountPoint: m.mountPoint, reason });
    if (top.get(m.mountPoint) !== m) skip('covered by a later mount');
    else if (include.size > 0 && !include.has(m.mountPoint)) skip('not included');
    else if (exclude.has(m.mountPoint)) skip('excluded');
    else if (!m.source.startsWith('/dev/')) skip(`not a block device (${m.fsType})`);
    else if (m.readOnly) skip('read-only');
    else if (SKIP_TYPES.has(m.fsType) || m.fsType.startsWith('fuse')) skip(`type ${m.fsType} cannot be frozen`);
    else if (seenDev.has(m.dev)) skip(`same device as another mount (${m.dev})`);
    else {
      seenDev.add(m.dev);
      chosen.push(m);
    }
  }
  return { order: orderByBacking(chosen, mounts, backing), skipped };
}

/**
 * Freeze order: A before B when A's backing file lives on B; otherwise
 * mount-table order with "/" last. Kahn's algorithm, always taking the
 * earliest ready mount so the order is deterministic.
 */
export function orderByBacking(chosen: readonly MountEntry[], all: readonly MountEntry[], backing: BackingLookup): MountEntry[] {
  const base = [...chosen.filter((m) => m.mountPoint !== '/'), ...chosen.filter((m) => m.mountPoint === '/')];
  // after.get(B) = mounts that must be frozen before B.
  const before = new Map<MountEntry, Set<MountEntry>>(base.map((m) => [m, new Set()]));
  for (const a of base) {
    for (const file of backing(a.dev)) {
      const holder = mountOf(file, all);
      const b = holder && base.find((m) => m.dev === holder.dev);
      if (b && b !== a) before.get(b)!.add(a);
    }
  }
  const out: MountEntry[] = [];
  const left = [...base];
  while (left.length > 0) {
    let i = left.findIndex((m) => [...before.get(m)!].every((p) => out.includes(p)));
    if (i < 0) i = 0; // a cycle cannot happen with real loop devices; keep going rather than hang
    out.push(left.splice(i, 1)[0]!);
  }
  return out;
}

/** Backing files of a block device from sysfs: loop/backing_file, recursing through slaves/ (device mapper on loop). */
export function sysfsBacking(sysRoot = '/sys'): BackingLookup {
  const read = (dir: string, depth: number): string[] => {
    if (depth > 8) return [];
    try {
      return [readFileSync(`${dir}/loop/backing_file`, 'utf8').trim()].filter((s) => s !== '');
    } catch {
      // not a loop device
    }
    let slaves: string[] = [];
    try {
      slaves = readdirSync(`${dir}/slaves`);
    } catch {
      return [];
    }
    return slaves.flatMap((s) => read(`${sysRoot}/class/block/${s}`, depth + 1));
  };
  return (dev) => read(`${sysRoot}/dev/block/${dev}`, 0);
}

/** The mounts of this process's mount namespace. */
export function readMounts(path = '/proc/self/mountinfo'): MountEntry[] {
  return parseMountinfo(readFileSync(path, 'utf8'));
}
