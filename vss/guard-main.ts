/**
 * The node SIGKILL guard (Linux has no kernel auto-thaw), used when the
 * native guard (vss/guard/hvguest-freeze-guard.c, same protocol) is not
 * built or cannot start, or with HVGUEST_GUARD=node. A small process the
 * daemon starts before its first freeze. It says "ready", then reads on
 * stdin one JSON line per change: {"thaw": [mount points in freeze order]},
 * and acknowledges each with "ok" on stdout; anything else (not that shape,
 * not UTF-8, a NUL or an unpaired surrogate in a path, a line over
 * MAX_LINE bytes) gets "bad REASON" and leaves the list as it was. When
 * stdin ends (the daemon exited or was killed, even with SIGKILL, so the
 * kernel closed its end of the pipe; a partial last line is ignored) or on
 * SIGTERM/SIGINT/SIGHUP, it thaws the list in reverse order and exits.
 *
 * Everything it needs (koffi, libc, the ioctl numbers) is loaded at start,
 * before any freeze; it never writes to a file (stderr is not connected).
 */
import { fsThaw, preloadFreezePrimitive } from '../common/os/fsfreeze.js';

/** Longest accepted line in bytes, newline excluded (the native guard's limit too). */
const MAX_LINE = 131072;

let list: string[] = [];
let pending: Buffer[] = [];
let pendingLen = 0;
let tooLong = false;
const utf8 = new TextDecoder('utf-8', { fatal: true });

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

/** The mount list of one line, or why the line is refused. */
function parse(line: Buffer): string[] | string {
  let text: string;
  try {
    text = utf8.decode(line);
  } catch {
    return 'not UTF-8';
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m) || Object.keys(m).join() !== 'thaw') return 'not {"thaw": [...]}';
  const l = (m as { thaw: unknown }).thaw;
  if (!Array.isArray(l)) return '"thaw" is not an array';
  if (!l.every((x) => typeof x === 'string')) return '"thaw" holds something other than strings';
  if (l.some((x: string) => x.includes('\0'))) return 'NUL in a string';
  // With the u flag a surrogate pair is one code point; only an unpaired half is in category Cs.
  if (l.some((x: string) => /\p{Cs}/u.test(x))) return 'unpaired surrogate';
  return l as string[];
}

function answer(line: Buffer): void {
  if (tooLong) {
    process.stdout.write(`bad line too long (over ${MAX_LINE} bytes)\n`);
    return;
  }
  const r = parse(line);
  if (typeof r === 'string') {
    process.stdout.write(`bad ${r}\n`);
    return;
  }
  list = r;
  process.stdout.write('ok\n');
}

function take(part: Buffer): void {
  if (tooLong) return;
  if (pendingLen + part.length > MAX_LINE) {
    tooLong = true;
    pending = [];
    pendingLen = 0;
    return;
  }
  pending.push(part);
  pendingLen += part.length;
}

preloadFreezePrimitive();
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, finish);
process.stdin.on('data', (d: Buffer) => {
  let from = 0;
  let i: number;
  while ((i = d.indexOf(0x0a, from)) >= 0) {
    take(d.subarray(from, i));
    answer(Buffer.concat(pending));
    pending = [];
    pendingLen = 0;
    tooLong = false;
    from = i + 1;
  }
  if (from < d.length) take(d.subarray(from));
});
process.stdin.on('end', finish);
process.stdin.on('error', finish);
process.stdout.on('error', () => {
  // The daemon is gone; stdin's end follows.
});
process.stdout.write('ready\n');
