/**
 * The SIGKILL guard (Linux has no kernel auto-thaw). A tiny process the
 * daemon starts before its first freeze. It reads, on stdin, one JSON line
 * per change: {"thaw": [mount points in freeze order]}, and acknowledges
 * each with "ok" on stdout. When stdin ends (the daemon exited or was
 * killed, even with SIGKILL, so the kernel closed its end of the pipe) or
 * on SIGTERM/SIGINT/SIGHUP, it thaws the list in reverse order and exits.
 *
 * Everything it needs (koffi, libc, the ioctl numbers) is loaded at start,
 * before any freeze; it never writes to a file (stderr is not connected).
 */
import { fsThaw, preloadFreezePrimitive } from '../common/os/fsfreeze.js';

let list: string[] = [];
let buf = '';

function thawAll(): void {
  for (const m of [...list].reverse()) {
    try {
      fsThaw(m);
    } catch {
      // Nothing more a guard can do for this one; carry on with the others.
    }
  }
  list = [];
}

function finish(): never {
  thawAll();
  process.exit(0);
}

preloadFreezePrimitive();
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, finish);
process.stdin.on('data', (d: Buffer) => {
  buf += d.toString('utf8');
  let i: number;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    try {
      const m = JSON.parse(line) as { thaw?: unknown };
      if (Array.isArray(m.thaw) && m.thaw.every((x) => typeof x === 'string')) list = m.thaw as string[];
      process.stdout.write('ok\n');
    } catch {
      process.stdout.write('bad\n');
    }
  }
});
process.stdin.on('end', finish);
process.stdin.on('error', finish);
process.stdout.on('error', () => {
  // The daemon is gone; stdin's end follows.
});
process.stdout.write('ready\n');
