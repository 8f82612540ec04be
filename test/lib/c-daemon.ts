/**
 * Test and benchmark support: Debian's C hv_kvp_daemon (hyperv-daemons)
 * run against a simulated device node. The C daemon opens fixed paths
 * (/dev/vmbus/hv_kvp, /var/lib/hyperv), so it runs in a private mount
 * namespace (`unshare -m`) where a tmpfs covers /dev and /var/lib, the
 * simulator's node (a FUSE file, `hvsim serve --fuse`) is bind-mounted on
 * /dev/vmbus/hv_kvp, /dev/null is made anew, and a directory of the
 * caller's appears as /var/lib/hyperv. Nothing is created in this
 * machine's own /dev or /var; the namespace dies with the daemon.
 *
 * Never run the C VSS daemon this way: on FREEZE it freezes every mounted
 * file system it can see, the machine's root included.
 *
 * Compiled to dist/test/lib/ (tsconfig) so the benchmarks can use it too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export const C_KVP_DAEMON = '/usr/sbin/hv_kvp_daemon';

/** Why the C KVP daemon cannot be run here, or undefined when it can. */
export function cKvpDaemonUnavailable(program = C_KVP_DAEMON): string | undefined {
  if (process.platform !== 'linux') return 'the C daemon runs on Linux only';
  if (process.getuid?.() !== 0) return 'a private mount namespace needs root';
  if (!existsSync(program)) return `${program} is missing (apt-get install hyperv-daemons)`;
  for (const p of ['unshare', 'mount', 'mknod']) if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) return `${p} is missing (util-linux, mount)`;
  return undefined;
}

export interface CDaemon {
  /** Process id of the C daemon (unshare and the shell exec into it). */
  pid: number;
  child: ChildProcess;
  stderr(): string;
  /** Resolves with the exit status or signal name. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `ms`; resolves once it is gone. */
  stop(ms?: number): Promise<void>;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Start `program -n` in its own mount namespace with `node` (a file that
 * behaves like the KVP character device) as /dev/vmbus/hv_kvp and
 * `poolDir` as /var/lib/hyperv.
 */
export function startCKvpDaemon(o: { node: string; poolDir: string; program?: string; args?: string[] }): CDaemon {
  const program = o.program ?? C_KVP_DAEMON;
  const script = [
    'set -e',
    'mount -t tmpfs -o mode=0755,size=1m hvguest-dev /dev',
    // The C library and the daemon may open /dev/null; a tmpfs allows device nodes.
    'mknod -m 0666 /dev/null c 1 3',
    'mkdir -p /dev/vmbus && touch /dev/vmbus/hv_kvp',
    `mount --bind ${q(o.node)} /dev/vmbus/hv_kvp`,
    'mount -t tmpfs -o mode=0755,size=1m hvguest-varlib /var/lib',
    'mkdir -p /var/lib/hyperv',
    `mount --bind ${q(o.poolDir)} /var/lib/hyperv`,
    `exec ${q(program)} -n ${(o.args ?? []).map(q).join(' ')}`,
  ].join('\n');
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((r) => child.on('exit', (code, sig) => r(code ?? sig ?? 'unknown')));
  return {
    pid: child.pid!,
    child,
    stderr: () => err,
    exited,
    async stop(ms = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      await exited;
      clearTimeout(t);
    },
  };
}
