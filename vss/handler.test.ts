/** The VSS handler with a scripted freezer: statuses, rollback, held logs, watchdog, guard and state ordering. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MemorySink, SwitchableSink } from '../common/log.js';
import { HV_E_FAIL, HV_S_OK } from '../common/wire/constants.js';
import type { Freezer } from './freezer.js';
import type { GuardLike } from './guard.js';
import { createVssHandler } from './handler.js';
import { createFreezeGate } from '../common/freeze-gate.js';
import { AfterReply, replyOf, runAfter } from '../common/serve/loop.js';

function world(opts: { failOn?: string } = {}) {
  const events: string[] = [];
  const normal = { write: (l: string) => void events.push(`log ${JSON.parse(l).msg}`) };
  const log = pino({ level: 'debug' }, new SwitchableSink(normal, new MemorySink()));
  const list = ['/b', '/a'];
  let frozen: string[] = [];
  const freezer: Freezer = {
    check: () => ({ ok: true, freezable: list, notes: [{ mountPoint: '/proc', reason: 'pseudo' }] }),
    freeze: (l) => {
      for (const m of l) {
        if (m === opts.failOn) {
          events.push(`fail ${m}`);
          for (const f of [...frozen].reverse()) events.push(`thaw ${f}`);
          frozen = [];
          return { ok: false, frozen: [], failure: { mountPoint: m, code: 'EIO', message: `ioctl ${m}: EIO` } };
        }
        events.push(`freeze ${m}`);
        frozen.push(m);
      }
      return { ok: true, frozen: [...frozen] };
    },
    thaw: () => {
      for (const f of [...frozen].reverse()) events.push(`thaw ${f}`);
      frozen = [];
      return { ok: true, failures: [] };
    },
    frozen: () => frozen,
  };
  const guard: GuardLike = {
    arm: async (l) => void events.push(`guard ${l.join(',')}`),
    disarm: () => void events.push('guard disarm'),
    close: () => void events.push('guard close'),
    pid: () => 1,
  };
  const dir = mkdtempSync(join(tmpdir(), 'vss-handler-'));
  const stateFile = join(dir, 'state');
  return { events, log, freezer, guard, stateFile, dir };
}

let dirs: string[] = [];
afterEach(() => {
  vi.useRealTimers();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  dirs = [];
});

describe('VSS handler', () => {
  it('guard and state know the list before the first freeze; nothing is logged between freeze and thaw; held lines come out after', async () => {
    const w = world();
    dirs.push(w.dir);
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, guard: w.guard, stateFile: w.stateFile, watchdogMs: 60000 });
    expect(replyOf(await h.handle({ kind: 'freeze', op: 5 }))).toEqual({ status: HV_S_OK });
    expect(JSON.parse(readFileSync(w.stateFile, 'utf8')).mounts).toEqual(['/b', '/a']);
    const i = w.events.indexOf('guard /b,/a');
    expect(i).toBeGreaterThan(-1);
    expect(i).toBeLessThan(w.events.indexOf('freeze /b'));
    // The "frozen" line was written to memory, not to the sink.
    expect(w.events.slice(w.events.indexOf('freeze /b'))).toEqual(['freeze /b', 'freeze /a']);
    w.log.info('while frozen');
    expect(w.events.at(-1)).toBe('freeze /a');
    expect(h.isFrozen()).toBe(true);
    expect(replyOf(await h.handle({ kind: 'thaw', op: 6 }))).toEqual({ status: HV_S_OK });
    const after = w.events.slice(w.events.indexOf('freeze /a') + 1);
    expect(after.slice(0, 3)).toEqual(['thaw /a', 'thaw /b', 'guard disarm']);
    expect(after).toContain('log file systems frozen');
    expect(after.indexOf('log while frozen')).toBeLessThan(after.indexOf('log file systems thawed'));
    expect(existsSync(w.stateFile)).toBe(false);
  });

  it('CHECK starts the guard and the thaw leaves it running; the freeze gate is closed from before the freeze until the thaw', async () => {
    const w = world();
    dirs.push(w.dir);
    const gate = createFreezeGate();
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, guard: w.guard, gate, stateFile: w.stateFile, watchdogMs: 60000 });
    expect(replyOf(await h.handle({ kind: 'check', op: 2 }))).toEqual({ status: HV_S_OK });
    expect(w.events).toContain('guard ');
    // Work already inside the gate finishes before the first FIFREEZE.
    let release!: () => void;
    const inFlight = gate.during(() => new Promise<void>((r) => (release = () => (w.events.push('kvp in flight done'), r()))));
    const frz = h.handle({ kind: 'freeze', op: 5 });
    await new Promise((r) => setTimeout(r, 20));
    expect(w.events).not.toContain('freeze /b');
    release();
    await inFlight;
    expect(replyOf(await frz)).toEqual({ status: HV_S_OK });
    expect(w.events.indexOf('kvp in flight done')).toBeLessThan(w.events.indexOf('freeze /b'));
    expect(gate.closed).toBe(true);
    // Work that arrives while frozen waits for the thaw.
    const later = gate.during(() => void w.events.push('kvp after thaw'));
    await new Promise((r) => setTimeout(r, 20));
    expect(w.events).not.toContain('kvp after thaw');
    expect(replyOf(await h.handle({ kind: 'thaw', op: 6 }))).toEqual({ status: HV_S_OK });
    await later;
    const after = w.events.slice(w.events.indexOf('freeze /a') + 1);
    expect(after.slice(0, 3)).toEqual(['thaw /a', 'thaw /b', 'guard disarm']);
    expect(after).not.toContain('guard close');
    expect(after.indexOf('kvp after thaw')).toBeGreaterThan(after.indexOf('guard disarm'));
    expect(gate.closed).toBe(false);
  });

  it('a failing freeze: rollback by the freezer, failure to the host, logs released, state removed', async () => {
    const w = world({ failOn: '/a' });
    dirs.push(w.dir);
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, guard: w.guard, stateFile: w.stateFile, watchdogMs: 60000 });
    expect(replyOf(await h.handle({ kind: 'freeze', op: 5 }))).toEqual({ status: HV_E_FAIL });
    expect(w.events).toContain('log FREEZE of /a failed: ioctl /a: EIO; everything thawed');
    expect(h.isFrozen()).toBe(false);
    expect(existsSync(w.stateFile)).toBe(false);
  });

  it('CHECK succeeds, unknown ops fail (pitfall L7), a guard that cannot be armed prevents the freeze', async () => {
    const w = world();
    dirs.push(w.dir);
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, watchdogMs: 60000, guard: { ...w.guard, arm: async () => { throw new Error('the freeze guard did not start'); } } });
    expect(replyOf(await h.handle({ kind: 'check', op: 2 }))).toEqual({ status: HV_S_OK });
    expect(replyOf(await h.handle({ kind: 'unknown', op: 9 }))).toEqual({ status: HV_E_FAIL });
    expect(w.events).toContain('log Illegal op:9');
    expect(replyOf(await h.handle({ kind: 'freeze', op: 5 }))).toEqual({ status: HV_E_FAIL });
    expect(w.events.some((e) => e.startsWith('freeze '))).toBe(false);
  });

  it('the watchdog thaws; thawNow thaws synchronously and is a no-op when nothing is frozen', async () => {
    vi.useFakeTimers();
    const w = world();
    dirs.push(w.dir);
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, watchdogMs: 1000 });
    await h.handle({ kind: 'freeze', op: 5 });
    vi.advanceTimersByTime(1001);
    expect(h.isFrozen()).toBe(false);
    expect(w.events).toContain('log no THAW within 1000 ms; thawed by the watchdog');
    await h.handle({ kind: 'freeze', op: 5 });
    expect(h.thawNow('signal')?.ok).toBe(true);
    expect(h.thawNow('signal')).toBeUndefined();
  });

  it('FreeBSD: a FREEZE that took longer than the kernel deadline is thawed and failed (pitfall F15)', async () => {
    const w = world();
    dirs.push(w.dir);
    let t = 0;
    const slow: Freezer = { ...w.freezer, prepare: async () => void (t += 20000) };
    const h = createVssHandler({ flavor: 'freebsd', freezer: slow, log: w.log, watchdogMs: 60000, replyDeadlineMs: 14000, now: () => t });
    expect(replyOf(await h.handle({ kind: 'freeze', op: 2 }))).toEqual({ status: HV_E_FAIL });
    expect(h.isFrozen()).toBe(false);
  });

  it('a thaw that fails keeps logs in memory and the guard armed, and is retried until it succeeds', async () => {
    vi.useFakeTimers();
    const w = world();
    dirs.push(w.dir);
    let failures = 2;
    const thaw = w.freezer.thaw;
    w.freezer.thaw = () => {
      if (failures-- > 0) return { ok: false, failures: [{ mountPoint: '/a', code: 'EIO', message: 'ioctl /a: EIO' }] };
      return thaw();
    };
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, guard: w.guard, stateFile: w.stateFile, watchdogMs: 60000 });
    expect(replyOf(await h.handle({ kind: 'freeze', op: 5 }))).toEqual({ status: HV_S_OK });
    const before = w.events.length;
    expect(replyOf(await h.handle({ kind: 'thaw', op: 6 }))).toEqual({ status: HV_E_FAIL });
    expect(h.isFrozen()).toBe(true);
    // Nothing reached the log sink, the guard is still armed, the state file is still there.
    expect(w.events.slice(before).filter((e) => e.startsWith('log ') || e === 'guard disarm')).toEqual([]);
    expect(existsSync(w.stateFile)).toBe(true);
    await vi.advanceTimersByTimeAsync(1000); // second failure
    expect(h.isFrozen()).toBe(true);
    await vi.advanceTimersByTimeAsync(1000); // now it works
    expect(h.isFrozen()).toBe(false);
    expect(w.events).toContain('guard disarm');
    expect(w.events.some((e) => e.includes('THAW of /a failed'))).toBe(true);
    expect(existsSync(w.stateFile)).toBe(false);
  });

  it('a THAW arriving after the watchdog already thawed is reported as failure (the snapshot is not consistent)', async () => {
    vi.useFakeTimers();
    const w = world();
    dirs.push(w.dir);
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, guard: w.guard, stateFile: w.stateFile, watchdogMs: 5000 });
    expect(replyOf(await h.handle({ kind: 'freeze', op: 5 }))).toEqual({ status: HV_S_OK });
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.isFrozen()).toBe(false);
    expect(replyOf(await h.handle({ kind: 'thaw', op: 6 }))).toEqual({ status: HV_E_FAIL });
    // The next backup starts clean.
    expect(replyOf(await h.handle({ kind: 'freeze', op: 5 }))).toEqual({ status: HV_S_OK });
    expect(replyOf(await h.handle({ kind: 'thaw', op: 6 }))).toEqual({ status: HV_S_OK });
  });

  it('a second FREEZE without THAW gives the applications their thaw before freezing again; stop thaws and runs the thaw hooks', async () => {
    const w = world();
    dirs.push(w.dir);
    const hooks = {
      freeze: async () => void w.events.push('hook freeze'),
      thaw: async () => (w.events.push('hook thaw'), []),
    };
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, guard: w.guard, stateFile: w.stateFile, watchdogMs: 60000, hooks });
    await h.handle({ kind: 'freeze', op: 5 });
    await h.handle({ kind: 'freeze', op: 5 });
    const seq = w.events.filter((e) => e.startsWith('hook') || e.startsWith('freeze ') || e.startsWith('thaw '));
    expect(seq).toEqual(['hook freeze', 'freeze /b', 'freeze /a', 'thaw /a', 'thaw /b', 'hook thaw', 'hook freeze', 'freeze /b', 'freeze /a']);
    await h.thawAndResume('stop');
    expect(h.isFrozen()).toBe(false);
    expect(w.events.slice(-2)).toEqual(['hook thaw', 'log thaw hooks done']);
    // Nothing frozen: no hooks run.
    const n = w.events.length;
    await h.thawAndResume('stop');
    expect(w.events.length).toBe(n);
  });

  it('THAW is answered before the thaw hooks run; their failure is logged and does not change the answer', async () => {
    const w = world();
    dirs.push(w.dir);
    let release!: () => void;
    const hooks = {
      freeze: async () => void w.events.push('hook freeze'),
      thaw: async () => {
        w.events.push('hook thaw started');
        await new Promise<void>((r) => (release = r));
        w.events.push('hook thaw ended');
        return [{ hook: '/etc/hooks/db', reason: 'exit status 3: no db' }];
      },
    };
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, guard: w.guard, stateFile: w.stateFile, watchdogMs: 60000, hooks });
    expect(replyOf(await h.handle({ kind: 'freeze', op: 5 }))).toEqual({ status: HV_S_OK });
    const res = await h.handle({ kind: 'thaw', op: 6 });
    // The answer is ready with the file systems thawed and the logs released, and no thaw hook has started.
    expect(res).toBeInstanceOf(AfterReply);
    expect(replyOf(res)).toEqual({ status: HV_S_OK });
    expect(h.isFrozen()).toBe(false);
    expect(w.events).toContain('log file systems thawed');
    expect(w.events).not.toContain('hook thaw started');
    // The loop sends, then runs the after-reply work: the hook starts, and holds it until it ends.
    const after = runAfter((res as AfterReply<unknown>).after, w.log);
    await new Promise((r) => setTimeout(r, 10));
    expect(w.events).toContain('hook thaw started');
    expect(w.events).not.toContain('log thaw hooks done, 1 failed');
    release();
    await after;
    expect(w.events.slice(w.events.indexOf('hook thaw ended'))).toEqual(['hook thaw ended', 'log thaw hook /etc/hooks/db failed: exit status 3: no db', 'log thaw hooks done, 1 failed']);
    // The next backup goes on as usual.
    expect(replyOf(await h.handle({ kind: 'freeze', op: 5 }))).toEqual({ status: HV_S_OK });
  });

  it('a FREEZE that fails after the freeze hooks answers first and gives the applications their thaw after the reply', async () => {
    const w = world({ failOn: '/a' });
    dirs.push(w.dir);
    const hooks = {
      freeze: async () => void w.events.push('hook freeze'),
      thaw: async () => (w.events.push('hook thaw'), []),
    };
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, guard: w.guard, stateFile: w.stateFile, watchdogMs: 60000, hooks });
    const res = await h.handle({ kind: 'freeze', op: 5 });
    expect(replyOf(res)).toEqual({ status: HV_E_FAIL });
    expect(w.events).toContain('hook freeze');
    expect(w.events).not.toContain('hook thaw');
    expect(res).toBeInstanceOf(AfterReply);
    await (res as AfterReply<unknown>).after();
    expect(w.events.at(-2)).toBe('hook thaw');
    expect(w.events.at(-1)).toBe('log thaw hooks done');
  });

  it('thaw hooks the watchdog started finish before the next FREEZE runs the freeze hooks', async () => {
    vi.useFakeTimers();
    const w = world();
    dirs.push(w.dir);
    let release!: () => void;
    let thaws = 0;
    const hooks = {
      freeze: async () => void w.events.push('hook freeze'),
      thaw: async () => {
        w.events.push('hook thaw started');
        if (thaws++ === 0) await new Promise<void>((r) => (release = r));
        w.events.push('hook thaw ended');
        return [];
      },
    };
    const h = createVssHandler({ flavor: 'linux', freezer: w.freezer, log: w.log, guard: w.guard, stateFile: w.stateFile, watchdogMs: 1000, hooks });
    await h.handle({ kind: 'freeze', op: 5 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.isFrozen()).toBe(false);
    expect(w.events.at(-1)).toBe('hook thaw started');
    const frz = h.handle({ kind: 'freeze', op: 5 });
    await vi.advanceTimersByTimeAsync(50);
    expect(w.events.filter((e) => e === 'hook freeze')).toHaveLength(1);
    release();
    expect(replyOf(await frz)).toEqual({ status: HV_S_OK });
    const seq = w.events.filter((e) => e.startsWith('hook'));
    expect(seq).toEqual(['hook freeze', 'hook thaw started', 'hook thaw ended', 'hook freeze']);
  });
});
