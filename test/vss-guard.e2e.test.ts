/**
 * The two freeze guard programs, one contract: the native guard
 * (vss/guard/hvguest-freeze-guard.c, dist/native/) and the node guard
 * (vss/guard-main.ts) get the same tests. Protocol: "ready", "ok" or
 * "bad REASON" per line, the line length limit, the end of stdin and the
 * stop signals. Thawing (root): real FIFREEZE'd ext4 loop images in a private
 * mount namespace (vss/testing/loop-namespace.ts), frozen and checked with
 * util-linux fsfreeze and dd there, the guard started inside it.
 * Then the daemon side (vss/guard.ts): a native guard that cannot start
 * falls back to the node guard, never to none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NATIVE_GUARD, dist, startArgv, tempDir } from './lib/procs.js';
import { createLoopNamespace, realFreezeUnavailable, type LoopNamespace } from '../vss/testing/loop-namespace.js';
import { createGuard, nativeGuard, nodeGuard, type GuardKind, type GuardProgram } from '../vss/guard.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MAX_LINE = 131072;
const NODE_SCRIPT = dist('vss/guard-main.js');

const GUARDS: { kind: GuardKind; program: GuardProgram; skip?: string }[] = [
  { kind: 'native', program: nativeGuard(NATIVE_GUARD), ...(existsSync(NATIVE_GUARD) ? {} : { skip: `${NATIVE_GUARD} not built (no C compiler, or not Linux)` }) },
  { kind: 'node', program: nodeGuard(NODE_SCRIPT) },
];

/** A guard process with its answers as lines. */
interface Guard {
  child: ChildProcess;
  pid: number;
  /** The next answer line (rejects after `ms`). */
  next(ms?: number): Promise<string>;
  send(data: string | Buffer): void;
  /** Send one line and return the answer. */
  ask(line: string | Buffer): Promise<string>;
  end(): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startGuard(p: GuardProgram, prefix: string[] = []): Guard {
  const [file, argv] = startArgv(prefix[0] ?? p.command, [...prefix.slice(1), ...(prefix.length ? [p.command] : []), ...p.args]);
  const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'ignore'], cwd: '/' });
  child.stdin!.on('error', () => {});
  let buf = '';
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const next = async (ms = 5000) => {
    const until = Date.now() + ms;
    while (lines.length === 0) {
      if (Date.now() > until) throw new Error('no answer from the guard');
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the guard exited (${child.exitCode ?? child.signalCode})`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
    return lines.shift()!;
  };
  const send = (d: string | Buffer) => void child.stdin!.write(d);
  return {
    child,
    pid: child.pid!,
    next,
    send,
    ask: (line) => (send(Buffer.concat([Buffer.from(line), Buffer.from('\n')])), next()),
    end: () => child.stdin!.end(),
    exited,
  };
}

const running: Guard[] = [];
const guardOf = (p: GuardProgram, prefix: string[] = []) => {
  const g = startGuard(p, prefix);
  running.push(g);
  return g;
};
afterAll(() => {
  for (const g of running) if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill('SIGKILL');
});

/** Lines every guard refuses, each with a reason the test names. */
const BAD: [string, string | Buffer][] = [
  ['not JSON', 'thaw /a'],
  ['an empty line', ''],
  ['JSON null', 'null'],
  ['an array', '["/a"]'],
  ['an object without "thaw"', '{}'],
  ['another key', '{"freeze":["/a"]}'],
  ['a second key', '{"thaw":["/a"],"x":1}'],
  ['"thaw" a string', '{"thaw":"/a"}'],
  ['a number in the list', '{"thaw":["/a",1]}'],
  ['null in the list', '{"thaw":[null]}'],
  ['a nested array', '{"thaw":[["/a"]]}'],
  ['a trailing comma', '{"thaw":["/a",]}'],
  ['an unterminated string', '{"thaw":["/a]}'],
  ['an unknown escape', '{"thaw":["/\\q"]}'],
  ['a short \\u escape', '{"thaw":["/\\u12"]}'],
  ['a \\u escape with a non-hex digit', '{"thaw":["/\\u00g1"]}'],
  ['a NUL escape', '{"thaw":["/a\\u0000b"]}'],
  ['a lone high surrogate', '{"thaw":["/\\ud83d"]}'],
  ['a lone low surrogate', '{"thaw":["/\\ude00"]}'],
  ['surrogates in the wrong order', '{"thaw":["/\\ude00\\ud83d"]}'],
  ['a raw control character', '{"thaw":["/a\tb"]}'],
  ['text after the object', '{"thaw":[]} x'],
  ['two objects', '{"thaw":[]}{"thaw":[]}'],
  ['invalid UTF-8', Buffer.concat([Buffer.from('{"thaw":["/'), Buffer.from([0xff]), Buffer.from('"]}')])],
  ['overlong UTF-8', Buffer.concat([Buffer.from('{"thaw":["/'), Buffer.from([0xc0, 0xaf]), Buffer.from('"]}')])],
  ['a UTF-8 encoded surrogate', Buffer.concat([Buffer.from('{"thaw":["/'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"]}')])],
];

for (const g of GUARDS) {
  describe.skipIf(g.skip !== undefined)(`freeze guard protocol: ${g.kind}${g.skip ? ` (skipped: ${g.skip})` : ''}`, () => {
    it('says ready, then ok to each list (empty, escaped, spaced), in order, however the lines are cut', async () => {
      const p = guardOf(g.program);
      expect(await p.next()).toBe('ready');
      expect(await p.ask('{"thaw":["/a","/b"]}')).toBe('ok');
      expect(await p.ask('{"thaw":[]}')).toBe('ok');
      expect(await p.ask(' \t{ "th\\u0061w" :\t[ "/\\u00e9\\ud83d\\ude00\\"\\\\\\/\\b\\f\\n\\r\\t" , "/\u00fc" ] } \r')).toBe('ok');
      // Three lines in one write, then one line a byte at a time (a multibyte character cut in two).
      p.send('{"thaw":["/x"]}\n{"thaw":[]}\n{"thaw":["/y","/z"]}\n');
      expect([await p.next(), await p.next(), await p.next()]).toEqual(['ok', 'ok', 'ok']);
      const slow = Buffer.from('{"thaw":["/\u00e9"]}\n');
      for (const b of slow) {
        p.send(Buffer.from([b]));
        await sleep(2);
      }
      expect(await p.next()).toBe('ok');
      p.end();
      expect(await p.exited).toEqual({ code: 0, signal: null });
    });

    it('refuses every line that is not {"thaw": [strings]} with "bad REASON", and still answers the next line', async () => {
      const p = guardOf(g.program);
      expect(await p.next()).toBe('ready');
      for (const [what, line] of BAD) {
        expect(await p.ask(line), what).toMatch(/^bad \S/);
        expect(await p.ask('{"thaw":[]}'), `after ${what}`).toBe('ok');
      }
      p.end();
      expect((await p.exited).code).toBe(0);
    });

    it(`takes a line of ${MAX_LINE} bytes, refuses a longer one once its newline arrives, then carries on`, async () => {
      const p = guardOf(g.program);
      expect(await p.next()).toBe('ready');
      const body = '{"thaw":["/a"]}';
      expect(await p.ask(body + ' '.repeat(MAX_LINE - body.length))).toBe('ok');
      // One byte over, sent in pieces: one answer, when the line ends.
      const long = body + ' '.repeat(MAX_LINE - body.length + 1);
      p.send(long.slice(0, 70000));
      p.send(long.slice(70000));
      await sleep(200);
      p.send('\n');
      expect(await p.next()).toBe(`bad line too long (over ${MAX_LINE} bytes)`);
      // Far over (a megabyte of path), then a normal line.
      expect(await p.ask(`{"thaw":["/${'x'.repeat(1 << 20)}"]}`)).toBe(`bad line too long (over ${MAX_LINE} bytes)`);
      expect(await p.ask('{"thaw":["/b"]}')).toBe('ok');
      p.end();
      expect((await p.exited).code).toBe(0);
    });

    it('exits 0 at the end of stdin, also in the middle of a line, and on SIGTERM, SIGINT and SIGHUP', async () => {
      const eof = guardOf(g.program);
      expect(await eof.next()).toBe('ready');
      eof.send('{"thaw":["/nonexistent/a"]');
      eof.end();
      expect(await eof.exited).toEqual({ code: 0, signal: null });
      for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
        const p = guardOf(g.program);
        expect(await p.next()).toBe('ready');
        expect(await p.ask('{"thaw":["/nonexistent/a"]}')).toBe('ok');
        p.child.kill(sig);
        expect(await p.exited, sig).toEqual({ code: 0, signal: null });
      }
    });

    if (g.kind === 'native') {
      it('is small: under 4 MiB of anonymous memory, every page its own (no allocation after start)', async () => {
        const p = guardOf(g.program);
        expect(await p.next()).toBe('ready');
        expect(await p.ask(`{"thaw":["/${'y'.repeat(100000)}"]}`)).toBe('ok');
        const status = readFileSync(`/proc/${p.pid}/status`, 'utf8');
        const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
        console.log(`native guard: VmRSS ${kb('VmRSS')} kB, RssAnon ${kb('RssAnon')} kB, RssFile ${kb('RssFile')} kB, VmLck ${kb('VmLck')} kB`);
        expect(kb('RssAnon')).toBeLessThan(4096);
        expect(kb('VmRSS')).toBeLessThan(16384);
        p.end();
        expect((await p.exited).code).toBe(0);
      });
    }
  });
}

describe.skipIf(GUARDS.some((g) => g.skip !== undefined))('freeze guard protocol: the native and the node guard answer alike', () => {
  it('random lists (any UTF-16, lone surrogates and NUL included), random JSON and random text: the same ok or bad from both', async () => {
    const [native, node] = GUARDS.map((g) => guardOf(g.program));
    expect([await native!.next(), await node!.next()]).toEqual(['ready', 'ready']);
    // Characters that matter to a path parser, often: NUL, halves of a surrogate pair, a whole pair, escapes.
    const unit = fc.oneof(fc.constantFrom('\0', '\ud83d', '\ude00', '\ud83d\ude00', '\u00e9', '"', '\\', '/', '\t', '\u007f', 'a'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
    const line = fc.oneof(
      fc.array(fc.string({ unit, maxLength: 12 }), { maxLength: 6 }).map((l) => JSON.stringify({ thaw: l })),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ thaw: v })),
      fc.string({ unit: 'binary', maxLength: 60 }).map((t) => t.replaceAll('\n', ' ')),
    );
    await fc.assert(
      fc.asyncProperty(line, async (l) => {
        const [a, b] = [await native!.ask(l), await node!.ask(l)];
        expect(a.split(' ')[0], `${JSON.stringify(l)}: native ${a}, node ${b}`).toBe(b.split(' ')[0]);
      }),
      { numRuns: 300 },
    );
    native!.end();
    node!.end();
  }, 60000);
});

// ---------------------------------------------------------------- real thaws

const skipReal = realFreezeUnavailable();

describe.skipIf(skipReal !== undefined)(`freeze guards thaw real frozen file systems in a private mount namespace${skipReal ? ` (skipped: ${skipReal})` : ''}`, () => {
  let tmp: { dir: string; remove: () => void };
  let ns: LoopNamespace;
  let m: Record<'a' | 'b' | 'c' | 'u', string>;
  const allow = () => ({ HVGUEST_FREEZE_ALLOW: Object.values(m).join(':') });

  const freeze = async (...mounts: string[]) => {
    for (const x of mounts) expect(await ns.runIn(['fsfreeze', '-f', x], 5000, allow()), `fsfreeze -f ${x}`).toBe(0);
  };
  let n = 0;
  /** A one-block fsync'd write to each mount; resolves with which finished within `ms` (a frozen one blocks). */
  const writable = async (mounts: string[], ms: number) => {
    const tag = `w${n++}`;
    const codes = await Promise.all(mounts.map((x) => ns.runIn(['dd', 'if=/dev/zero', `of=${join(x, tag)}`, 'bs=4096', 'count=1', 'conv=fsync', 'status=none'], ms)));
    return codes.map((c) => c === 0);
  };
  const thawByHand = async (...mounts: string[]) => {
    for (const x of mounts) await ns.runIn(['fsfreeze', '-u', x], 5000);
  };

  beforeAll(async () => {
    tmp = tempDir('hvguest-guard-');
    ns = await createLoopNamespace(tmp.dir, [
      { name: 'a', sizeMb: 16 },
      { name: 'b', sizeMb: 16, on: 'a' },
      { name: 'c', sizeMb: 16 },
      { name: 'u-\u00e9-\u{1F600}', sizeMb: 16 },
    ]);
    const [a, b, c, u] = Object.values(ns.mounts);
    m = { a: a!, b: b!, c: c!, u: u! };
  }, 60000);
  afterAll(async () => {
    await ns?.close(); // fsfreeze -u and umount of every test mount, whatever a test left
    tmp?.remove();
  });

  for (const g of GUARDS) {
    describe.skipIf(g.skip !== undefined)(`${g.kind} guard${g.skip ? ` (skipped: ${g.skip})` : ''}`, () => {
      const inNs = () => guardOf(g.program, ns.enter());

      it('end of stdin (the daemon died): thaws the list in reverse order, skipping entries that are not frozen or do not exist', async () => {
        await freeze(m.b, m.a);
        expect(await writable([m.a], 500)).toEqual([false]);
        const p = inNs();
        expect(await p.next()).toBe('ready');
        expect(await p.ask(JSON.stringify({ thaw: [m.b, '/nonexistent/hvguest', m.c, m.a] }))).toBe('ok');
        p.end();
        expect(await p.exited).toEqual({ code: 0, signal: null });
        expect(await writable([m.a, m.b, m.c], 5000)).toEqual([true, true, true]);
      });

      it('a refused line keeps the list; a partial last line is ignored; SIGTERM thaws', async () => {
        await freeze(m.a, m.c);
        const p = inNs();
        expect(await p.next()).toBe('ready');
        expect(await p.ask(JSON.stringify({ thaw: [m.a, m.c] }))).toBe('ok');
        expect(await p.ask('{"thaw":[1]}')).toMatch(/^bad /);
        expect(await p.ask(`{"thaw":["${'z'.repeat(MAX_LINE)}"]}`)).toMatch(/^bad line too long/);
        p.send('{"thaw":[]');
        await sleep(100);
        p.child.kill('SIGTERM');
        expect(await p.exited).toEqual({ code: 0, signal: null });
        expect(await writable([m.a, m.c], 5000)).toEqual([true, true]);
      });

      it('an empty list replaces the old one (disarm): nothing is thawed at the end', async () => {
        await freeze(m.c);
        const p = inNs();
        expect(await p.next()).toBe('ready');
        expect(await p.ask(JSON.stringify({ thaw: [m.c] }))).toBe('ok');
        expect(await p.ask('{"thaw":[]}')).toBe('ok');
        p.end();
        expect((await p.exited).code).toBe(0);
        const w = writable([m.c], 5000);
        await sleep(500);
        const early = await Promise.race([w, sleep(0).then(() => 'pending')]);
        expect(early, 'the guard thawed a mount it no longer held').toBe('pending');
        await thawByHand(m.c);
        expect(await w).toEqual([true]);
      });

      it('a mount point written with \\u escapes (a surrogate pair too) is the one thawed', async () => {
        await freeze(m.u);
        const p = inNs();
        expect(await p.next()).toBe('ready');
        const escaped = Array.from({ length: m.u.length }, (_, i) => `\\u${m.u.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');
        expect(escaped).toMatch(/\\ud83d\\ude00/);
        expect(await p.ask(`{"thaw":["${escaped}"]}`)).toBe('ok');
        p.end();
        expect((await p.exited).code).toBe(0);
        expect(await writable([m.u], 5000)).toEqual([true]);
      });
    });
  }
});

// ---------------------------------------------------------------- the daemon side

describe('createGuard: start, fallback, acknowledgements', () => {
  let tmp: { dir: string; remove: () => void };
  beforeAll(() => {
    tmp = tempDir('hvguest-guard-start-');
  });
  afterAll(() => tmp?.remove());

  /** Programs that are not a working guard. */
  const broken = (): [string, GuardProgram][] => {
    const notExec = join(tmp.dir, 'not-executable');
    writeFileSync(notExec, '#!/bin/sh\necho ready\n');
    chmodSync(notExec, 0o644);
    const garbage = join(tmp.dir, 'garbage');
    writeFileSync(garbage, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 0, 0]));
    chmodSync(garbage, 0o755);
    return [
      ['missing', { kind: 'native', command: join(tmp.dir, 'nonexistent'), args: [] }],
      ['not executable', { kind: 'native', command: notExec, args: [] }],
      ['not a program for this machine', { kind: 'native', command: garbage, args: [] }],
      ['exits at once', { kind: 'native', command: '/bin/sh', args: ['-c', 'exit 3'] }],
      ['answers something else', { kind: 'native', command: '/bin/sh', args: ['-c', 'echo hello; sleep 30'] }],
      ['never says ready', { kind: 'native', command: '/bin/sh', args: ['-c', 'exec sleep 30'] }],
    ];
  };

  it('a native guard that cannot start falls back to the node guard with a warning, and stays with it', async () => {
    for (const [what, bad] of broken()) {
      const events: string[] = [];
      const guard = createGuard({
        programs: [bad, nodeGuard(NODE_SCRIPT)],
        timeoutMs: 1500,
        onStarted: (kind, pid) => events.push(`started ${kind} ${pid > 0}`),
        onFallback: (failed, reason, next) => events.push(`fallback ${failed}->${next}: ${reason}`),
      });
      await guard.arm(['/nonexistent/x']);
      expect(events, what).toHaveLength(2);
      expect(events[0], what).toMatch(/^fallback native->node: the native freeze guard \(.*\) did not start: /);
      expect(events[1], what).toBe('started node true');
      const pid = guard.pid()!;
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), what).toContain('guard-main.js');
      // A new guard after close() is the node one again, without another try of the broken one.
      guard.close();
      await guard.arm([]);
      expect(events.slice(2), what).toEqual(['started node true']);
      guard.close();
    }
  }, 60000);

  it('a lone guard that cannot start rejects arm() (the handler then refuses to freeze), and is tried again next time', async () => {
    const [, bad] = broken().find(([w]) => w === 'exits at once')!;
    const events: string[] = [];
    const guard = createGuard({ programs: [bad], timeoutMs: 1000, onStarted: (k) => events.push(k), onFallback: () => events.push('fallback') });
    await expect(guard.arm(['/a'])).rejects.toThrow(/the native freeze guard \(\/bin\/sh\) did not start: the native freeze guard exited \(status 3\)/);
    await expect(guard.arm(['/a'])).rejects.toThrow(/did not start/);
    expect(events).toEqual([]);
    expect(guard.pid()).toBe(undefined);
  });

  it.skipIf(!existsSync(NATIVE_GUARD))('prefers the first program: the native guard runs, acknowledges and reports its pid', async () => {
    const started: [GuardKind, number][] = [];
    const guard = createGuard({ programs: [nativeGuard(NATIVE_GUARD), nodeGuard(NODE_SCRIPT)], onStarted: (k, pid) => started.push([k, pid]) });
    await guard.arm(['/nonexistent/a', '/nonexistent/b']);
    const pid = guard.pid()!;
    expect(started).toEqual([['native', pid]]);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toBe(NATIVE_GUARD);
    guard.disarm();
    await guard.arm([]);
    guard.close();
    expect(guard.pid()).toBe(undefined);
  });
});
