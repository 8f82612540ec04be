/** Running services side by side (common/service.ts) and the freeze gate (common/freeze-gate.ts). */
import { describe, expect, it } from 'vitest';
import { createFreezeGate } from './freeze-gate.js';
import { runServices, unprefixed, type Service } from './service.js';

/** A service that registers after `readyMs`, or fails with `fail` after that long; records what happened. */
function fake(name: string, events: string[], o: { readyMs?: number; fail?: Error } = {}): Service {
  return {
    name,
    async run(signal, onReady) {
      await new Promise((r) => setTimeout(r, o.readyMs ?? 0));
      if (o.fail) {
        events.push(`${name} failed`);
        throw o.fail;
      }
      events.push(`${name} ready`);
      onReady();
      await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
      events.push(`${name} stopped`);
    },
  };
}

describe('runServices', () => {
  it('reports ready once every service registered, and stops them all on abort', async () => {
    const events: string[] = [];
    const ac = new AbortController();
    const done = runServices([fake('kvp', events, { readyMs: 5 }), fake('vss', events, { readyMs: 30 })], ac.signal, () => events.push('ready'));
    await new Promise((r) => setTimeout(r, 60));
    expect(events).toEqual(['kvp ready', 'vss ready', 'ready']);
    ac.abort();
    await done;
    expect(events.slice(3).sort()).toEqual(['kvp stopped', 'vss stopped']);
  });

  it('a service that cannot start stops the others and its error is thrown; ready is never reported', async () => {
    const events: string[] = [];
    const err = new Error('no VSS device');
    await expect(runServices([fake('kvp', events), fake('vss', events, { readyMs: 10, fail: err })], new AbortController().signal, () => events.push('ready'))).rejects.toBe(err);
    expect(events).toEqual(['kvp ready', 'vss failed', 'kvp stopped']);
  });
});

describe('unprefixed', () => {
  it('takes the options of one prefix under their own names and nothing else', () => {
    const o = { kvp: true, kvpDevice: '/d', kvpPoolDir: '/p', vssInclude: ['/a'], vssDryRun: true, flavor: 'linux', kvpx: 1 };
    expect(unprefixed(o, 'kvp-')).toEqual({ device: '/d', poolDir: '/p' });
    expect(unprefixed(o, 'vss-')).toEqual({ include: ['/a'], dryRun: true });
    expect(unprefixed(o, '')).toEqual(o);
  });
});

describe('freeze gate', () => {
  it('close() waits for the work in flight; work that arrives while closed runs after open(), in order', async () => {
    const gate = createFreezeGate();
    const events: string[] = [];
    let finish!: () => void;
    const first = gate.during(() => new Promise<void>((r) => (finish = () => (events.push('first done'), r()))));
    let closed = false;
    const closing = gate.close().then(() => ((closed = true), events.push('closed')));
    await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(false);
    finish();
    await first;
    await closing;
    const second = gate.during(() => events.push('second'));
    const third = gate.during(() => events.push('third'));
    await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual(['first done', 'closed']);
    gate.open();
    await Promise.all([second, third]);
    expect(events).toEqual(['first done', 'closed', 'second', 'third']);
    expect(gate.closed).toBe(false);
  });

  it('an error inside the gate reaches the caller and does not keep a later close() waiting', async () => {
    const gate = createFreezeGate();
    await expect(gate.during(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await gate.close();
    expect(gate.closed).toBe(true);
  });
});
