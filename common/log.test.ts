import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createLogger,
  holdLogs,
  logControl,
  MemorySink,
  releaseLogs,
  syslogPriority,
  toSyslogLine,
  valueForLog,
  type LineSink,
} from './log.js';
import { LOG_CRIT, LOG_DAEMON, LOG_DEBUG, LOG_ERR, LOG_INFO, LOG_NDELAY, LOG_PID, LOG_USER, LOG_WARNING, setSyslogBinding } from './os/syslog.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(here, '..');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hvguest-log-'));
});
afterEach(() => {
  setSyslogBinding(undefined);
  rmSync(dir, { recursive: true, force: true });
});

const parse = (text: string): Record<string, unknown>[] =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** A stderr-sink logger writing to a temp file, and a reader for what reached the file. */
function fileLogger(extra: { debug?: boolean; memoryLines?: number } = {}) {
  const path = join(dir, 'stderr.log');
  const fd = openSync(path, 'w');
  const logger = createLogger({ name: 'hv_test', sink: 'stderr', fd, ...extra });
  return { logger, read: () => parse(readFileSync(path, 'utf8')), close: () => closeSync(fd) };
}

function fakeSyslog() {
  const calls: unknown[][] = [];
  setSyslogBinding({
    openlog: (...a) => void calls.push(['openlog', ...a]),
    syslog: (...a) => void calls.push(['syslog', ...a]),
    closelog: () => void calls.push(['closelog']),
  });
  return calls;
}

const collect = (): LineSink & { lines: string[] } => {
  const lines: string[] = [];
  return { lines, write: (l) => void lines.push(l) };
};

describe('valueForLog', () => {
  it('gives the value only in debug, else its UTF-8 byte length', () => {
    expect(valueForLog('secret-é', true)).toBe('secret-é');
    expect(valueForLog('secret-é', false)).toBe(9);
    expect(valueForLog('', false)).toBe(0);
  });
});

describe('MemorySink', () => {
  it('keeps the newest lines in order and counts the dropped ones', () => {
    const m = new MemorySink(3);
    for (const l of ['a\n', 'b\n', 'c\n', 'd\n', 'e\n']) m.write(l);
    expect(m.lines()).toEqual(['c\n', 'd\n', 'e\n']);
    expect(m.dropped).toBe(2);
  });

  it('flushTo writes a drop notice first, then the kept lines, and empties itself', () => {
    const m = new MemorySink(2);
    for (const l of ['1\n', '2\n', '3\n']) m.write(l);
    const out = collect();
    expect(m.flushTo(out)).toEqual({ lines: 2, dropped: 1 });
    expect(out.lines).toHaveLength(3);
    expect(JSON.parse(out.lines[0]!)).toMatchObject({ level: 40, msg: 'log lines dropped while buffering', dropped: 1 });
    expect(out.lines.slice(1)).toEqual(['2\n', '3\n']);
    expect(m.lines()).toEqual([]);
    expect(m.dropped).toBe(0);
    m.write('4\n');
    const again = collect();
    expect(m.flushTo(again)).toEqual({ lines: 1, dropped: 0 });
    expect(again.lines).toEqual(['4\n']);
  });

  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new MemorySink(0)).toThrow(RangeError);
    expect(() => new MemorySink(1.5)).toThrow(RangeError);
  });
});

describe('syslog rendering', () => {
  it('maps every pino level to a syslog priority', () => {
    const table = Object.entries(pino.levels.values).map(([label, n]) => [label, syslogPriority(n)]);
    expect(Object.fromEntries(table)).toEqual({
      trace: LOG_DEBUG,
      debug: LOG_DEBUG,
      info: LOG_INFO,
      warn: LOG_WARNING,
      error: LOG_ERR,
      fatal: LOG_CRIT,
    });
  });

  it('renders msg then key=value, leaving out pino bookkeeping and quoting only where needed', () => {
    const line = JSON.stringify({
      level: 40,
      time: '2025-01-01T00:00:00.000Z',
      pid: 7,
      hostname: 'h',
      name: 'hv_kvp_daemon',
      msg: 'pool write failed',
      op: 'set',
      pool: 2,
      key: 'has space',
      ok: false,
      errno: 'ENOSPC',
      ms: 1.5,
      list: [1, 'a'],
      empty: '',
    });
    expect(toSyslogLine(`${line}\n`)).toEqual({
      priority: LOG_WARNING,
      text: 'pool write failed op=set pool=2 key="has space" ok=false errno=ENOSPC ms=1.5 list=[1,"a"] empty=""',
    });
  });

  it('renders a serialized error as its message, without the stack', () => {
    const line = JSON.stringify({ level: 50, msg: 'open failed', err: { type: 'Error', message: 'open /dev/x: ENOENT', stack: 'Error: ...\n at y' } });
    expect(toSyslogLine(line)).toEqual({ priority: LOG_ERR, text: 'open failed err="open /dev/x: ENOENT"' });
  });

  it('passes a line that is not JSON through at info', () => {
    expect(toSyslogLine('not json\n')).toEqual({ priority: LOG_INFO, text: 'not json' });
  });
});

describe('syslog sink', () => {
  it('opens the log with the program name and sends one message per event', () => {
    const calls = fakeSyslog();
    const log = createLogger({ name: 'hv_kvp_daemon', sink: 'syslog' });
    log.info({ op: 'get', pool: 0, key: 'k' }, 'request');
    log.debug('hidden without -d');
    log.child({ tid: 9 }).error({ errno: 'EIO' }, 'write');
    expect(calls).toEqual([
      ['openlog', 'hv_kvp_daemon', LOG_PID | LOG_NDELAY, LOG_USER],
      ['syslog', LOG_INFO, 'request op=get pool=0 key=k'],
      ['syslog', LOG_ERR, 'write tid=9 errno=EIO'],
    ]);
  });

  it('takes the C daemons\' ident and another facility when asked, and sends debug with -d', () => {
    const calls = fakeSyslog();
    const log = createLogger({ name: 'hv_vss_daemon', sink: 'syslog', ident: 'Hyper-V VSS', facility: LOG_DAEMON, debug: true });
    log.debug('shown');
    expect(calls).toEqual([
      ['openlog', 'Hyper-V VSS', LOG_PID | LOG_NDELAY, LOG_DAEMON],
      ['syslog', LOG_DEBUG, 'shown'],
    ]);
  });
});

describe('stderr sink', () => {
  it('writes one JSON line per event synchronously, at info unless debug', () => {
    const f = fileLogger();
    f.logger.debug('not at info');
    f.logger.info({ op: 'set', pool: 1 }, 'stored');
    // No flush and no await: the line must already be in the file.
    const [rec, ...rest] = f.read();
    expect(rest).toEqual([]);
    expect(rec).toMatchObject({ level: 30, name: 'hv_test', pid: process.pid, msg: 'stored', op: 'set', pool: 1 });
    expect(rec).not.toHaveProperty('hostname');
    expect(new Date(rec!.time as string).toISOString()).toBe(rec!.time);
    f.close();
  });

  it('logs debug with debug: true', () => {
    const f = fileLogger({ debug: true });
    f.logger.debug('now shown');
    expect(f.read()).toMatchObject([{ level: 20, msg: 'now shown' }]);
    f.close();
  });

  // The real fd 2 in a child process, which exits right after logging: a synchronous
  // destination loses nothing, and nothing goes to stdout.
  it('uses fd 2 by default and loses nothing on an immediate exit', () => {
    const script = join(dir, 'child.ts');
    writeFileSync(
      script,
      [
        `import { createLogger } from ${JSON.stringify(join(here, 'log.ts'))};`,
        `const log = createLogger({ name: 'hv_child' });`,
        `for (let i = 0; i < 200; i++) log.info({ i }, 'line');`,
        `process.exit(3);`,
      ].join('\n'),
    );
    const r = spawnSync(process.execPath, [join(root, 'node_modules/vite-node/vite-node.mjs'), script], { cwd: root, encoding: 'utf8', timeout: 20000 });
    expect(r.status, r.stderr).toBe(3);
    expect(r.stdout).toBe('');
    const recs = parse(r.stderr);
    expect(recs.map((x) => x.i)).toEqual([...Array(200).keys()]);
    expect(recs[0]).toMatchObject({ name: 'hv_child', level: 30, msg: 'line' });
  });
});

describe('holding logs in memory', () => {
  it('buffers while held and flushes in order on release, children included', () => {
    const f = fileLogger();
    const child = f.logger.child({ op: 'freeze' });
    f.logger.info('before');
    holdLogs(f.logger);
    expect(logControl(child)?.holding).toBe(true);
    child.info('frozen 1');
    f.logger.warn('frozen 2');
    expect(f.read().map((r) => r.msg)).toEqual(['before']);
    expect(releaseLogs(f.logger)).toEqual({ lines: 2, dropped: 0 });
    f.logger.info('after');
    expect(f.read().map((r) => r.msg)).toEqual(['before', 'frozen 1', 'frozen 2', 'after']);
    expect(f.read()[1]).toMatchObject({ op: 'freeze' });
    expect(releaseLogs(f.logger)).toEqual({ lines: 0, dropped: 0 });
    f.close();
  });

  it('counts what the ring dropped and says so before the kept lines', () => {
    const f = fileLogger({ memoryLines: 2 });
    holdLogs(f.logger);
    holdLogs(f.logger);
    for (let i = 0; i < 5; i++) f.logger.info({ i }, 'held');
    expect(releaseLogs(f.logger)).toEqual({ lines: 2, dropped: 3 });
    const recs = f.read();
    expect(recs[0]).toMatchObject({ level: 40, msg: 'log lines dropped while buffering', dropped: 3 });
    expect(recs.slice(1).map((r) => r.i)).toEqual([3, 4]);
    f.close();
  });

  it('does nothing for a logger it did not create', () => {
    const other = pino({}, collect());
    expect(logControl(other)).toBeUndefined();
    holdLogs(other);
    expect(releaseLogs(other)).toEqual({ lines: 0, dropped: 0 });
  });
});

describe('memory sink', () => {
  it('keeps the lines in the ring until flushed elsewhere', () => {
    const log = createLogger({ name: 'hvsim', sink: 'memory', memoryLines: 10 });
    log.info({ key: 'k', value: valueForLog('v', false) }, 'set');
    const ctl = logControl(log)!;
    expect(ctl.holding).toBe(true);
    holdLogs(log);
    expect(releaseLogs(log)).toEqual({ lines: 0, dropped: 0 });
    expect(ctl.memory.lines().map((l) => JSON.parse(l) as unknown)).toMatchObject([{ msg: 'set', key: 'k', value: 1 }]);
    const out = collect();
    expect(ctl.memory.flushTo(out)).toEqual({ lines: 1, dropped: 0 });
    expect(out.lines).toHaveLength(1);
  });
});

describe('syslog lines quote control characters', () => {
  it('a newline in a message cannot start a second syslog line', async () => {
    const { toSyslogLine } = await import('./log.js');
    const r = toSyslogLine(JSON.stringify({ level: 40, msg: 'bad adapter a\nFAKE: root login', op: 'x\ry' }));
    expect(r.text).not.toMatch(/[\n\r]/);
    expect(r.text).toContain('a\\x0aFAKE');
  });
});
