/**
 * Test support (used only by the VSS end-to-end tests): a private mount
 * namespace holding loop-mounted ext4 images made for the test, so a real
 * freeze can never reach this machine's own file systems.
 *
 * `unshare -m --propagation private sh` creates the images and mounts, says
 * "ready", then waits on stdin; when stdin closes (the test ends, or the
 * test runner dies) it thaws every test mount (`fsfreeze -u`) and unmounts
 * them (loop devices detach by themselves: mount -o loop sets autoclear).
 * Programs join the namespace with `nsenter -t PID -m`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface LoopImage {
  /** Mount point name, relative to the test directory. */
  name: string;
  sizeMb: number;
  /** Where the image file lives: 'dir' (the test directory) or the name of an earlier image (its backing file then lives on that file system). */
  on?: string;
}

export interface LoopNamespace {
  pid: number;
  /** Absolute mount points, in mount order. */
  mounts: Record<string, string>;
  /** argv prefix that runs a command inside the namespace. */
  enter(): string[];
  /** Run a command inside; resolves with its exit status (null when still running after `ms`, then it is left alone). */
  runIn(args: string[], ms: number, env?: NodeJS.ProcessEnv): Promise<number | null>;
  /** Thaw and unmount everything, end the namespace. */
  close(): Promise<void>;
}

/** Why a real freeze test cannot run here, or undefined when it can. */
export function realFreezeUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  for (const p of ['unshare', 'nsenter', 'losetup', 'mkfs.ext4', 'fsfreeze', 'mount', 'umount', 'truncate']) {
    if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) return `${p} missing`;
  }
  return undefined;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A shell holding a private mount namespace open until its stdin closes. */
export interface NamespaceKeeper {
  child: ChildProcess;
  pid: number;
  /** Resolves when the keeper has exited. */
  exited: Promise<void>;
  /**
   * nsenter's argv prefix into the keeper's namespace. Once the keeper has
   * exited its process id may belong to anything, this machine's namespace
   * included: refuse instead.
   */
  enter(): string[];
  /** Close its stdin (it runs its cleanup) and wait; SIGKILL after `ms`. */
  close(ms: number): Promise<void>;
}

/**
 * Start `unshare -m --propagation private sh -c SCRIPT` and wait until it
 * prints "ready". SCRIPT sets up, echoes ready, waits on stdin (`read x`),
 * then cleans up. On a setup timeout its stdin closes too, so once its setup
 * is through it cleans up instead of waiting. `what` names it in errors.
 */
export async function startNamespaceKeeper(script: string, what: string, timeoutMs: number): Promise<NamespaceKeeper> {
  const child: ChildProcess = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => (child.stdin!.end(), reject(new Error(`${what} setup timed out: ${err}`))), timeoutMs);
    child.stdout!.on('data', () => out.includes('ready\n') && (clearTimeout(t), resolve()));
    child.on('exit', (code) => (clearTimeout(t), reject(new Error(`${what} setup failed (${code}): ${err}`))));
  });
  const pid = child.pid!;
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    pid,
    exited,
    enter() {
      if (!alive()) throw new Error(`the ${what} keeper (process ${pid}) has exited; refusing to enter a namespace by a process id that may be reused`);
      return ['nsenter', '-t', String(pid), '-m', '--'];
    },
    async close(ms) {
      if (!alive()) return;
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      await exited;
      clearTimeout(t);
    },
  };
}

export async function createLoopNamespace(dir: string, images: LoopImage[]): Promise<LoopNamespace> {
  const mounts: Record<string, string> = {};
  const setup: string[] = ['set -e', `cd ${q(dir)}`];
  for (const im of images) {
    const mp = join(dir, im.name);
    const file = im.on ? join(mounts[im.on]!, `${im.name}.img`) : join(dir, `${im.name}.img`);
    mounts[im.name] = mp;
    setup.push(`truncate -s ${im.sizeMb}M ${q(file)}`, `mkfs.ext4 -q -F ${q(file)}`, `mkdir -p ${q(mp)}`, `mount -o loop ${q(file)} ${q(mp)}`);
  }
  const rev = Object.values(mounts).reverse();
  // Thaw in creation order: a file system that holds another image (`on`) was made before it, and
  // must be thawed first, since thawing the inner one writes its superblock through its loop device
  // into the outer one's image (thawing inner-first with both frozen hangs in the kernel for good).
  // Unmount in reverse (inner first).
  const cleanup = [
    'set +e',
    ...Object.values(mounts).map((m) => `fsfreeze -u ${q(m)} 2>/dev/null`),
    ...rev.map((m) => `umount ${q(m)} || umount -l ${q(m)}`),
    'echo cleaned',
  ];
  const script = [...setup, 'echo ready', 'read x || true', ...cleanup].join('\n');
  const keeper = await startNamespaceKeeper(script, 'namespace', 20000);
  const enter = () => keeper.enter();
  return {
    pid: keeper.pid,
    mounts,
    enter,
    runIn(args, ms, env) {
      return new Promise((resolve) => {
        const [cmd, ...rest] = [...enter(), ...args];
        const c = spawn(cmd!, rest, { stdio: 'ignore', env: { ...process.env, ...env } });
        const t = setTimeout(() => resolve(null), ms);
        c.on('exit', (code) => {
          clearTimeout(t);
          resolve(code);
        });
      });
    },
    close: () => keeper.close(15000),
  };
}
