/**
 * Where the C hv_vss_daemon may run: it freezes every writable block-device
 * mount in its mount table, with no allow list, so it must never see this
 * machine's file systems. Two namespaces:
 *
 *   keeper (unshare -m): a tmpfs ROOT holding copies (not bind mounts) of
 *     the few programs needed, the simulator's VSS node bind-mounted at
 *     ROOT/dev/vmbus/hv_vss, ext4 images of this test loop-mounted at
 *     ROOT/mnt/NAME, proc and sysfs. It waits on stdin; when stdin closes
 *     (the test ends or its runner dies) it thaws and unmounts the images.
 *   daemon (a child mount namespace of the keeper's): pivot_root into ROOT,
 *     the old root unmounted, then the daemon. Its /proc/self/mounts holds
 *     ROOT's tmpfs, proc, sysfs, the FUSE node and the test images, nothing
 *     else; the test reads it before sending any FREEZE and refuses to go on
 *     otherwise.
 *
 * Our daemon runs in the keeper's namespace instead (it needs node and the
 * tree), restricted by --include and HVGUEST_FREEZE_ALLOW to the images.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNamespaceKeeper } from '../../../vss/testing/loop-namespace.js';
import { start, type Proc } from '../../lib/procs.js';

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Programs copied into ROOT, each with the shared libraries ldd lists. */
const PROGRAMS = ['/bin/sh', '/bin/umount', '/usr/sbin/hv_vss_daemon'];

/** One test image: an ext4 file system of its own, its image file in the work directory or on image `on`. */
export interface VssImage {
  name: string;
  on?: string;
}

/** Why a VSS root cannot be built here, or undefined. */
export function vssRootUnavailable(): string | undefined {
  for (const p of ['unshare', 'nsenter', 'pivot_root', 'mkfs.ext4', 'fsfreeze', 'ldd', 'truncate', 'findmnt']) {
    if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) return `${p} missing`;
  }
  return undefined;
}

export interface VssRoot {
  root: string;
  /** Image mount points as the keeper (and our daemon) sees them: ROOT/mnt/NAME. */
  mounts: Record<string, string>;
  /** Image mount points inside the C daemon's root: /mnt/NAME. */
  inner: Record<string, string>;
  /** Run a command in the keeper's namespace; resolves with its exit status and stderr. */
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }>;
  /** Is the image at `name` frozen right now? (a second freeze fails EBUSY; a successful probe is undone at once) */
  frozen(name: string): Promise<boolean>;
  /** Start `argv` (inside ROOT's paths) in a pivot_root'ed child namespace. */
  startPivoted(argv: string[]): Proc;
  /** Start `argv` in the keeper's namespace. */
  startInKeeper(argv: string[], env?: NodeJS.ProcessEnv): Proc;
  /** Thaw and unmount everything, end the keeper. */
  close(): Promise<void>;
}

/**
 * Build the keeper under `work` with the simulator's VSS node `node` and
 * one ext4 image per name in `images`; with `loopNodes` the loop devices'
 * nodes are copied into ROOT/dev, so the C daemon can stat them and
 * recognise them as loop devices, as it does on a real system.
 */
export async function createVssRoot(work: string, node: string, specs: readonly VssImage[], loopNodes: boolean): Promise<VssRoot> {
  const root = join(work, 'root');
  const images = specs.map((i) => i.name);
  const libs = new Set<string>();
  for (const p of PROGRAMS) {
    const out = spawnSync('ldd', [p], { encoding: 'utf8' }).stdout;
    for (const m of out.matchAll(/(\/[^\s)]+\.so[^\s)]*)/g)) libs.add(m[1]!);
  }
  const mounts: Record<string, string> = Object.fromEntries(images.map((n) => [n, join(root, 'mnt', n)]));
  const file = (i: VssImage) => (i.on ? join(mounts[i.on]!, `${i.name}.img`) : join(work, `${i.name}.img`));
  const setup = [
    'set -eu',
    `R=${q(root)}`,
    'mkdir -p "$R"',
    // A named tmpfs: its source does not start with /dev/, so the C daemon never considers it.
    'mount -t tmpfs -o size=64m,mode=755 hvdiff-vss-root "$R"',
    'mkdir -p "$R/proc" "$R/sys" "$R/dev/vmbus" "$R/old" "$R/tmp"',
    ...[...PROGRAMS, ...libs].map((f) => `mkdir -p "$R${f.replace(/\/[^/]+$/, '')}" && cp -L ${q(f)} "$R${f}"`),
    ': > "$R/dev/vmbus/hv_vss"',
    `mount --bind ${q(node)} "$R/dev/vmbus/hv_vss"`,
    ...specs.flatMap((i) => [
      `truncate -s ${i.on ? 8 : 24}M ${q(file(i))}`,
      `mkfs.ext4 -q -F ${q(file(i))}`,
      `mkdir -p ${q(mounts[i.name]!)}`,
      `mount -o loop ${q(file(i))} ${q(mounts[i.name]!)}`,
      ...(loopNodes ? [`cp -a "$(findmnt -n -o SOURCE ${q(mounts[i.name]!)})" "$R/dev/"`] : []),
    ]),
    'mount -t proc proc "$R/proc"',
    'mount -t sysfs sysfs "$R/sys"',
    'echo ready',
    'read x || true',
    'set +e',
    // Thaw outer file systems first (a nested image's writes need its host), unmount inner ones first.
    ...images.map((n) => `fsfreeze -u ${q(mounts[n]!)} 2>/dev/null`),
    ...[...images].reverse().map((n) => `umount ${q(mounts[n]!)} || umount -l ${q(mounts[n]!)}`),
    'umount -R "$R" || umount -l "$R"',
    'echo cleaned',
  ].join('\n');
  const keeper = await startNamespaceKeeper(setup, 'VSS root', 60_000);
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const enter = keeper.enter();
      const c = spawn(enter[0]!, [...enter.slice(1), ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
      let e = '';
      c.stderr!.on('data', (d: Buffer) => (e += d.toString()));
      const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
      // 'close', not 'exit': stderr must be read to the end first.
      c.on('close', (code) => (clearTimeout(t), resolve({ code, stderr: e })));
    });
  // After pivot_root the shell that did it still runs from the old root; every
  // later program comes from ROOT, and the old root is unmounted before the daemon starts.
  const pivot = `set -eu\ncd "$1"\nshift\npivot_root . old\nexec /bin/sh -c 'umount -l /old && exec "$@"' sh "$@"`;
  return {
    root,
    mounts,
    inner: Object.fromEntries(images.map((n) => [n, `/mnt/${n}`])),
    run,
    async frozen(name) {
      const r = await run(['fsfreeze', '-f', mounts[name]!]);
      if (r.code === 0) {
        await run(['fsfreeze', '-u', mounts[name]!]);
        return false;
      }
      if (/busy/i.test(r.stderr)) return true;
      throw new Error(`fsfreeze -f ${mounts[name]}: exit ${r.code}: ${r.stderr}`);
    },
    startPivoted: (argv) => {
      const enter = keeper.enter();
      return start(enter[0]!, [...enter.slice(1), 'unshare', '-m', '--propagation', 'private', 'sh', '-c', pivot, 'pivot', root, ...argv]);
    },
    startInKeeper: (argv, env = {}) => {
      const enter = keeper.enter();
      return start(enter[0]!, [...enter.slice(1), ...argv], env);
    },
    close: () => keeper.close(20_000),
  };
}

/** Mount points (field 5 of mountinfo) a process sees, relative to its root. */
export function mountPointsOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!);
}
