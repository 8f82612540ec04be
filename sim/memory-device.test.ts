import { describe, expect, it, vi } from 'vitest';
import { registerDevice } from '../common/device/handshake.js';
import { DeviceError, type Service } from '../common/device/types.js';
import { KVP_OP_REGISTER, KVP_OP_REGISTER1, type Flavor } from '../common/wire/constants.js';
import { encodeKvp } from '../common/wire/kvp.js';
import { createMemoryDevice } from './memory-device.js';
import { SIM_POLLHUP, SIM_POLLIN, SimErrno, type SimFile, type SimNode } from './node.js';
import { fakeTimersPerTest } from '../test/lib/sim-helpers.js';
import { Watchers } from './watchers.js';

/** A scripted node: records writes, answers reads from a queue, poll from a variable. */
function scripted(opts: { openErr?: string; replies?: Buffer[]; writeReturns?: number } = {}) {
  const writes: Buffer[] = [];
  const reads: number[] = [];
  const replies = [...(opts.replies ?? [])];
  const watchers = new Watchers();
  const state = { poll: opts.replies?.length ? SIM_POLLIN : 0, released: 0 };
  const file: SimFile = {
    read: async (count) => {
      reads.push(count);
      const r = replies.shift();
      if (!r) throw new SimErrno('EAGAIN');
      return r;
    },
    write: (d) => {
      writes.push(Buffer.from(d));
      return opts.writeReturns ?? d.length;
    },
    poll: () => state.poll,
    onPollChange: (cb) => watchers.add(cb),
    ioctl: (cmd, arg) => ({ ret: 0, out: Buffer.concat([Buffer.from([cmd & 0xff]), arg]) }),
    release: () => void state.released++,
  };
  const node: SimNode = {
    name: 'scripted',
    open: () => {
      if (opts.openErr) throw new SimErrno(opts.openErr);
      return file;
    },
  };
  const setPoll = (v: number): void => {
    state.poll = v;
    watchers.notify();
  };
  return { node, writes, reads, state, setPoll };
}

const device = (node: SimNode, flavor: Flavor, service: Service) => createMemoryDevice(node, { flavor, service });

fakeTimersPerTest();

describe('memory device: errors', () => {
  it('open: a negative or odd errno is EBUSY (F1); a plain one is kept; messages name op and path', async () => {
    await expect(device(scripted({ openErr: '-EBUSY' }).node, 'freebsd', 'kvp').open()).rejects.toMatchObject({ code: 'EBUSY', op: 'open' });
    await expect(device(scripted({ openErr: 'E16' }).node, 'freebsd', 'kvp').open()).rejects.toMatchObject({ code: 'EBUSY' });
    const e = await device(scripted({ openErr: 'ENOENT' }).node, 'linux', 'kvp').open().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DeviceError);
    expect((e as DeviceError).message).toBe('open /dev/scripted: ENOENT (is the Hyper-V driver loaded?)');
  });

  it('calls on a device that is not open fail EBADF; opening the same Device twice fails EBUSY; close is idempotent', async () => {
    const s = scripted();
    const d = device(s.node, 'linux', 'kvp');
    await expect(d.read()).rejects.toMatchObject({ code: 'EBADF', op: 'read' });
    await expect(d.waitReadable()).rejects.toMatchObject({ code: 'EBADF' });
    await d.open();
    await expect(d.open()).rejects.toMatchObject({ code: 'EBUSY' });
    d.close();
    d.close();
    expect(s.state.released).toBe(1);
  });

  it('a short write is ESHORT; read sizes default to the flavor message size; ioctl returns what the node copied out', async () => {
    const s = scripted({ writeReturns: 7430, replies: [Buffer.alloc(1), Buffer.alloc(1), Buffer.alloc(1), Buffer.alloc(1)] });
    const d = device(s.node, 'freebsd', 'kvp');
    await d.open();
    await expect(d.write(Buffer.alloc(8000))).rejects.toMatchObject({ code: 'ESHORT' });
    await d.read();
    await d.read(3);
    const l = device(s.node, 'linux', 'vss');
    await l.open();
    await l.read();
    const k = device(s.node, 'linux', 'kvp');
    await k.open();
    await k.read();
    expect(s.reads).toEqual([7430, 3, 12, 7432]);
    expect([...(await d.ioctl(0x41, Buffer.from([1])))]).toEqual([0x41, 1]);
    await expect(d.read()).rejects.toMatchObject({ code: 'EAGAIN', op: 'read' });
  });
});

describe('memory device: waitReadable', () => {
  it('resolves true once poll reports POLLIN, without polling in a loop', async () => {
    const s = scripted();
    const d = device(s.node, 'linux', 'kvp');
    await d.open();
    let done: boolean | undefined;
    void d.waitReadable().then((v) => (done = v));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(done).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    s.setPoll(SIM_POLLIN);
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
  });

  it('resolves false on abort (before or during the wait)', async () => {
    const s = scripted();
    const d = device(s.node, 'linux', 'kvp');
    await d.open();
    const ac = new AbortController();
    const w = d.waitReadable(ac.signal);
    ac.abort();
    expect(await w).toBe(false);
    expect(await d.waitReadable(ac.signal)).toBe(false);
  });

  it('rejects EGONE on hang-up and EBADF when the device is closed under it', async () => {
    const s = scripted();
    const d = device(s.node, 'linux', 'kvp');
    await d.open();
    const w = d.waitReadable();
    s.setPoll(SIM_POLLHUP);
    await expect(w).rejects.toMatchObject({ code: 'EGONE', op: 'poll' });
    s.setPoll(0);
    const v = d.waitReadable();
    d.close();
    await expect(v).rejects.toMatchObject({ code: 'EBADF' });
  });
});

describe('registerDevice (handshakes of devices.md section 4)', () => {
  it('FreeBSD KVP writes one zeroed 7430-byte message with op 4 and reads nothing', async () => {
    const s = scripted();
    const d = device(s.node, 'freebsd', 'kvp');
    await d.open();
    expect(await registerDevice(d)).toEqual({});
    expect(s.writes.map((w) => [w.length, w[0], w.subarray(1).every((x) => x === 0)])).toEqual([[7430, KVP_OP_REGISTER, true]]);
    expect(s.reads).toEqual([]);
  });

  it('Linux KVP writes op 100 and returns the version from the reply', async () => {
    const reply = encodeKvp('linux', { operation: KVP_OP_REGISTER1 }, 'kvp_register', { version: Buffer.from('9.9') });
    const s = scripted({ replies: [reply] });
    const d = device(s.node, 'linux', 'kvp');
    await d.open();
    expect(await d.register()).toEqual({ version: '9.9' });
    expect(s.writes.map((w) => [w.length, w[0]])).toEqual([[7432, KVP_OP_REGISTER1]]);
  });

  it('Linux KVP: a reply with another op or size is EPROTO', async () => {
    for (const reply of [encodeKvp('linux', { operation: 1 }), Buffer.alloc(7430)]) {
      const d = device(scripted({ replies: [reply] }).node, 'linux', 'kvp');
      await d.open();
      await expect(d.register()).rejects.toMatchObject({ code: 'EPROTO', op: 'register' });
    }
  });

  it('Linux VSS writes 12 bytes op 129 and accepts only a 4-byte 129', async () => {
    const good = scripted({ replies: [Buffer.from([129, 0, 0, 0])] });
    const d = device(good.node, 'linux', 'vss');
    await d.open();
    expect(await d.register()).toEqual({});
    expect(good.writes.map((w) => [...w])).toEqual([[129, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
    expect(good.reads).toEqual([4]);
    for (const reply of [Buffer.from([128, 0, 0, 0]), Buffer.alloc(12)]) {
      const b = device(scripted({ replies: [reply] }).node, 'linux', 'vss');
      await b.open();
      await expect(b.register()).rejects.toMatchObject({ code: 'EPROTO' });
    }
  });

  it('FreeBSD VSS and appvss: opening was the registration', async () => {
    for (const service of ['vss', 'appvss'] as const) {
      const s = scripted();
      const d = device(s.node, 'freebsd', service);
      await d.open();
      expect(await d.register()).toEqual({});
      expect(s.writes).toEqual([]);
    }
  });

  it('an abort while waiting for the reply is EINTR; a service the flavor lacks is EINVAL', async () => {
    const d = device(scripted().node, 'linux', 'kvp');
    await d.open();
    const ac = new AbortController();
    const p = registerDevice(d, ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'EINTR' });
    await expect(registerDevice(device(scripted().node, 'linux', 'appvss'))).rejects.toMatchObject({ code: 'EINVAL' });
  });
});
