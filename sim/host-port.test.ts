import { describe, expect, it, vi } from 'vitest';
import { HV_E_FAIL, HV_S_OK } from '../common/wire/constants.js';
import type { RingPacket } from './channel.js';
import { systemClock } from './clock.js';
import { HostPort, type HostCall } from './host-port.js';
import { fakeTimersPerTest } from '../test/lib/sim-helpers.js';

const NEGOTIATE = Buffer.from('negotiate');

/** A host port with a scripted kernel that records every packet it reads and takes them only when told. */
function rig() {
  const port = new HostPort(systemClock, () => NEGOTIATE);
  const read: RingPacket[] = [];
  let open = false;
  const drain = (): void => {
    for (let p = open ? port.channel.take() : undefined; p; p = open ? port.channel.take() : undefined) read.push(p);
  };
  port.channel.attach(drain);
  const call = (data: string, o: Partial<HostCall> = {}) => port.call({ data: Buffer.from(data), raw: false, waitForDaemonMs: 1000, hostTimeoutMs: 2000, ...o });
  return {
    port,
    read,
    call,
    open: () => ((open = true), drain()),
    answer: (p: RingPacket, status = HV_S_OK) => port.channel.answer(p.id, { status, outcome: 'answered' }),
  };
}

fakeTimersPerTest();

describe('host port', () => {
  it('sends one NEGOTIATE before the first request, and no more once it is answered', async () => {
    const r = rig();
    r.open();
    const a = r.call('one');
    await vi.advanceTimersByTimeAsync(0);
    expect(r.read.map((p) => p.data.toString())).toEqual(['negotiate', 'one']);
    r.answer(r.read[0]!);
    r.answer(r.read[1]!);
    await a;
    const b = r.call('two');
    await vi.advanceTimersByTimeAsync(0);
    r.answer(r.read[2]!);
    await b;
    expect(r.read.map((p) => p.data.toString())).toEqual(['negotiate', 'one', 'two']);
  });

  it('one request at a time: the next goes out only after the previous ended', async () => {
    const r = rig();
    r.open();
    const a = r.call('one');
    const b = r.call('two');
    await vi.advanceTimersByTimeAsync(0);
    expect(r.read.map((p) => p.data.toString())).toEqual(['negotiate', 'one']);
    r.answer(r.read[1]!, HV_E_FAIL);
    expect(await a).toMatchObject({ outcome: 'answered', answer: { status: HV_E_FAIL } });
    await vi.advanceTimersByTimeAsync(0);
    expect(r.read.map((p) => p.data.toString())).toEqual(['negotiate', 'one', 'two']);
    r.answer(r.read[2]!);
    expect((await b).outcome).toBe('answered');
  });

  it('withdraws a request nobody read after waitForDaemonMs; gives up on a read one after hostTimeoutMs', async () => {
    const r = rig();
    const a = r.call('unread');
    await vi.advanceTimersByTimeAsync(1000);
    expect(await a).toMatchObject({ outcome: 'no-daemon', answer: { status: HV_E_FAIL }, ms: 1000 });
    expect(r.port.channel.pending).toBe(1); // only the NEGOTIATE is left in the ring
    r.open();
    const b = r.call('read-never-answered');
    await vi.advanceTimersByTimeAsync(1999);
    expect(r.port.busy).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    const res = await b;
    expect(res).toMatchObject({ outcome: 'dropped', ms: 2000 });
    expect(res.answer).toBeUndefined();
    r.answer(r.read.at(-1)!); // a late answer is ignored
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rescind drops what the kernel had read, keeps what waits in the ring, and negotiates again', async () => {
    const r = rig();
    r.open();
    const a = r.call('in-kernel');
    await vi.advanceTimersByTimeAsync(0);
    r.answer(r.read[0]!);
    r.port.rescind();
    expect((await a).outcome).toBe('dropped');
    const b = r.call('after');
    await vi.advanceTimersByTimeAsync(0);
    expect(r.read.slice(2).map((p) => p.data.toString())).toEqual(['negotiate', 'after']);
    r.answer(r.read[3]!);
    await b;
  });

  it('close ends what is in flight and what is queued as dropped', async () => {
    const r = rig();
    const a = r.call('x');
    await vi.advanceTimersByTimeAsync(0);
    const b = r.call('y');
    r.port.close();
    expect((await a).outcome).toBe('dropped');
    expect((await b).outcome).toBe('dropped');
    expect(r.port.channel.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
