import { afterEach, describe, expect, it, vi } from 'vitest';
import { FLAVORS, HV_E_FAIL, HV_S_OK, KVP_OP_REGISTER, KVP_OP_REGISTER1 } from '../common/wire/constants.js';
import type { SimClock } from './clock.js';
import { encodeKvp, replyFrom } from '../common/wire/kvp.js';
import { serveMessages } from '../test/lib/sim-daemon.js';
import { createMemoryDevice } from './memory-device.js';
import { SIM_POLLERR, SIM_POLLHUP } from './node.js';
import { createSimulator } from './simulator.js';

afterEach(() => vi.useRealTimers());

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('simulator', () => {
  it('exposes the nodes of its flavor', () => {
    expect(createSimulator({ flavor: 'freebsd' }).nodes.map((n) => n.name)).toEqual(['hv_kvp_dev', 'hv_fsvss_dev', 'hv_appvss_dev']);
    expect(createSimulator({ flavor: 'linux' }).nodes.map((n) => n.name)).toEqual(['vmbus/hv_kvp', 'vmbus/hv_vss']);
  });

  it('status: nothing open at first; appvss only on FreeBSD', () => {
    expect(createSimulator({ flavor: 'freebsd' }).status()).toEqual({
      flavor: 'freebsd',
      kvp: { open: false, registered: false, outstanding: false },
      vss: { open: false, registered: false, outstanding: false },
      appvss: { open: false },
    });
    expect(createSimulator({ flavor: 'linux' }).status()).toEqual({
      flavor: 'linux',
      kvp: { open: false, registered: false, outstanding: false },
      vss: { open: false, registered: false, outstanding: false },
    });
  });

  it.each(FLAVORS)('%s: an idle simulator holds no timer, before and after a round trip (real timers)', async (flavor) => {
    const before = timers();
    const host = createSimulator({ flavor });
    const node = host.nodes[0]!;
    const dev = createMemoryDevice(node, { flavor, service: 'kvp' });
    await dev.open();
    await dev.register();
    const ac = new AbortController();
    const done = serveMessages(dev, (b) => replyFrom(b, HV_S_OK), ac.signal);
    expect(await host.kvp({ op: 'delete', pool: 0, key: 'k' })).toMatchObject({ outcome: 'answered', status: HV_S_OK });
    expect(timers()).toBe(before);
    ac.abort();
    dev.close();
    await done;
    expect(timers()).toBe(before);
  });

  it('the host waits 5 s by default for a daemon', async () => {
    vi.useFakeTimers();
    const host = createSimulator({ flavor: 'linux' });
    const p = host.kvp({ op: 'get', pool: 0, key: 'k' });
    await vi.advanceTimersByTimeAsync(4999);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await p).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL, statusName: 'HV_E_FAIL', ms: 5000 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the host gives up after hostTimeoutMs; by default the kernel timeout plus 5 s', async () => {
    vi.useFakeTimers();
    const host = createSimulator({ flavor: 'freebsd' });
    host.nodes[1]!.open({ pid: 1 });
    const p = host.vss('bu_complete');
    await vi.advanceTimersByTimeAsync(19_999);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await p).toMatchObject({ outcome: 'dropped', ms: 20_000 });
  });

  it('a request sent while the driver is removed waits in the ring and is served after restore', async () => {
    vi.useFakeTimers();
    const host = createSimulator({ flavor: 'linux' });
    host.remove();
    const p = host.kvp({ op: 'get', pool: 0, key: 'k' });
    await vi.advanceTimersByTimeAsync(1000);
    host.restore();
    const f = host.nodes[0]!.open({ pid: 1 });
    f.write(encodeKvp('linux', { operation: KVP_OP_REGISTER1 }));
    await f.read(7432);
    f.write(replyFrom(await f.read(7432), HV_S_OK));
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_OK });
  });

  it('close: what is outstanding is dropped, files die, opens fail, later requests reject', async () => {
    vi.useFakeTimers();
    const host = createSimulator({ flavor: 'freebsd' });
    const f = host.nodes[0]!.open({ pid: 1 });
    const p = host.kvp({ op: 'get', pool: 0, key: 'k' });
    host.close();
    expect((await p).outcome).toBe('dropped');
    expect(f.poll()).toBe(SIM_POLLERR | SIM_POLLHUP);
    expect(() => host.nodes[0]!.open({ pid: 2 })).toThrow(expect.objectContaining({ errno: 'ENOENT' }));
    await expect(host.vss('check')).rejects.toThrow(/closed/);
    host.restore();
    expect(() => host.nodes[0]!.open({ pid: 3 })).toThrow();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('takes an injected clock: kernel and host timers run on it, not on the global timers', async () => {
    let now = 0;
    const timers: { at: number; fn: () => void; live: boolean }[] = [];
    const clock: SimClock = {
      now: () => now,
      setTimer(ms, fn) {
        const t = { at: now + ms, fn, live: true };
        timers.push(t);
        return () => void (t.live = false);
      },
    };
    const advance = (ms: number): void => {
      now += ms;
      for (const t of timers.filter((x) => x.live && x.at <= now)) (t.live = false), t.fn();
    };
    const host = createSimulator({ flavor: 'freebsd', clock });
    const f = host.nodes[0]!.open({ pid: 1 });
    f.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    const p = host.kvp({ op: 'get', pool: 0, key: 'k' });
    await f.read(7430);
    advance(4999);
    expect(host.status().kvp.outstanding).toBe(true);
    advance(1);
    expect(await p).toMatchObject({ outcome: 'timeout', ms: 5000 });
    expect(timers.filter((t) => t.live)).toEqual([]);
  });

  it('a request whose fields do not fit is rejected before anything is sent', async () => {
    const host = createSimulator({ flavor: 'linux' });
    await expect(host.kvp({ op: 'get', pool: 0, key: 'k'.repeat(300) })).rejects.toThrow(RangeError);
    await expect(host.kvp({ op: 'set', pool: 0, key: 'k', value: 1.5, valueType: 'u32' })).rejects.toThrow(RangeError);
    expect(host.status().kvp.outstanding).toBe(false);
  });
});
