/**
 * Daemon side of the SIGKILL guard (see guard-main.ts): start it, tell it
 * what is about to be frozen, tell it when everything is thawed. Every
 * update waits for the guard's acknowledgement, so the guard knows a mount
 * before the first FIFREEZE on it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface GuardLike {
  /** Make sure a guard runs (start one if needed) and holds `list`; resolves once it acknowledged. */
  arm(list: readonly string[]): Promise<void>;
  /** Tell the guard nothing is frozen (best effort, does not wait). */
  disarm(): void;
  /** Stop the guard (it thaws its list, which is empty after disarm); a later arm() starts a new one. */
  close(): void;
  pid(): number | undefined;
}

/** Path of the compiled guard program next to this module. */
export const guardScript = (): string => fileURLToPath(new URL('./guard-main.js', import.meta.url));

export function createGuard(opts: { script?: string; timeoutMs?: number } = {}): GuardLike {
  let child: ChildProcess | undefined;
  let out = '';
  let waiters: { want: string; resolve: () => void; reject?: (e: Error) => void }[] = [];

  const onData = (d: Buffer) => {
    out += d.toString();
    let i: number;
    while ((i = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      const w = waiters.shift();
      if (!w) continue;
      if (line === w.want) w.resolve();
      else w.reject?.(new Error(`the freeze guard answered ${line}`));
    }
  };

  const waitLine = (want: string, what: string) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the freeze guard did not ${what} within ${opts.timeoutMs ?? 5000} ms`)), opts.timeoutMs ?? 5000);
      waiters.push({
        want,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });

  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  async function ensure(): Promise<ChildProcess> {
    if (alive()) return child!;
    out = '';
    waiters = [];
    const c = spawn(process.execPath, [opts.script ?? guardScript()], { stdio: ['pipe', 'pipe', 'ignore'], cwd: '/' });
    child = c;
    c.stdout!.on('data', onData);
    c.stdin!.on('error', () => {});
    c.on('exit', () => {
      // A guard that close() let go may exit after its successor started: its end is not the successor's.
      if (child !== c) return;
      child = undefined;
      for (const w of waiters.splice(0)) w.reject?.(new Error('the freeze guard exited'));
    });
    await waitLine('ready', 'start');
    return c;
  }

  const send = (c: ChildProcess, list: readonly string[]) => c.stdin!.write(`${JSON.stringify({ thaw: list })}\n`);

  return {
    async arm(list) {
      const c = await ensure();
      const ack = waitLine('ok', 'acknowledge the mount list');
      send(c, list);
      await ack;
    },
    disarm() {
      if (alive()) {
        waiters.push({ want: 'ok', resolve: () => {} });
        send(child!, []);
      }
    },
    close() {
      if (!alive()) return;
      // Let it go (it thaws its list, empty after disarm, and exits); the next arm() starts a new one.
      const c = child!;
      c.stdout!.off('data', onData);
      c.stdin!.end();
      child = undefined;
      waiters = [];
      out = '';
    },
    pid: () => (alive() ? child!.pid : undefined),
  };
}
