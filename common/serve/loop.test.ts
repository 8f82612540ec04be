/**
 * The generic daemon loop against the simulator's drivers (in-memory
 * devices): malformed messages get the failure answer and the loop goes
 * on, a throwing handler does not take the daemon down, a device that goes
 * away is reopened and re-registered with backoff, an abort ends the loop,
 * and a busy device on the first open is fatal.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { AfterReply, answer, serve, type Handled, type ServeEnd } from './loop.js';
import { kvpProtocol, type KvpReply } from './kvp.js';
import { vssProtocol } from './vss.js';
import { createMemoryDevice } from '../../sim/memory-device.js';
import { createSimulator } from '../../sim/simulator.js';
import type { SimHost } from '../../sim/host-api.js';
import { HV_E_FAIL, HV_S_OK, KVP_OP_GET, VSS_OP_THAW, type Flavor } from '../wire/constants.js';
import { encodeKvp } from '../wire/kvp.js';
import { encodeLinuxVss } from '../wire/vss.js';
import type { KvpMessage } from '../wire/kvp.js';
import type { Device } from '../device/types.js';

const KVP_NODE: Record<Flavor, string> = { freebsd: 'hv_kvp_dev', linux: 'vmbus/hv_kvp' };

/** A logger whose lines the test can read. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

/** The protocol, noting each send in `events` once the device has taken the reply. */
function recordSends<P extends { send(dev: Device, reply: Buffer): Promise<void> }>(p: P, events: string[]): P {
  return { ...p, send: async (dev: Device, reply: Buffer) => (await p.send(dev, reply), void events.push('sent')) };
}

let hosts: SimHost[] = [];
afterEach(() => {
  hosts.forEach((h) => h.close());
  hosts = [];
});

/** `sent`, when given, gets one entry per reply the loop hands to the device. */
function setup(flavor: Flavor, handler: (m: KvpMessage) => Handled<KvpReply>, backoffMs = 10, sent?: string[]) {
  const host = createSimulator({ flavor, timeouts: { kvp: 2000 } });
  hosts.push(host);
  const node = host.nodes.find((n) => n.name === KVP_NODE[flavor])!;
  const ac = new AbortController();
  const { log, lines } = capture();
  let registrations = 0;
  const done: Promise<ServeEnd> = serve({
    device: () => createMemoryDevice(node, { flavor, service: 'kvp' }),
    protocol: sent ? recordSends(kvpProtocol(flavor), sent) : kvpProtocol(flavor),
    handler,
    log,
    signal: ac.signal,
    backoff: { initialMs: backoffMs, maxMs: backoffMs * 4 },
    onRegistered: () => {
      registrations++;
    },
  });
  const registered = async (n: number) => {
    for (let i = 0; i < 200 && registrations < n; i++) await new Promise((r) => setTimeout(r, 5));
    expect(registrations).toBeGreaterThanOrEqual(n);
  };
  return { host, ac, done, lines, registered, regs: () => registrations };
}

for (const flavor of ['freebsd', 'linux'] as const) {
  describe(`serve loop, ${flavor}`, () => {
    it('answers requests with the handler result, in order, until aborted', async () => {
      const seen: number[] = [];
      const s = setup(flavor, (m) => {
        seen.push(m.pool);
        return { status: HV_S_OK };
      });
      await s.registered(1);
      for (const pool of [0, 1, 3]) expect((await s.host.kvp({ op: 'delete', pool, key: 'k' })).status).toBe(HV_S_OK);
      expect(seen).toEqual([0, 1, 3]);
      s.ac.abort();
      expect(await s.done).toEqual({ reason: 'aborted' });
    });

    it('a message of the wrong size gets HV_E_FAIL, one log line, and the loop goes on', async () => {
      const s = setup(flavor, () => ({ status: HV_S_OK }));
      await s.registered(1);
      const r = await s.host.raw('kvp', Buffer.from([KVP_OP_GET, 1, 0, 0, 0x41]));
      expect(r.status).toBe(HV_E_FAIL);
      expect(r.reply?.readUInt32LE(0)).toBe(HV_E_FAIL);
      expect(s.lines.filter((l) => l.op === 'decode')).toHaveLength(1);
      // A valid request right after still works.
      const ok = await s.host.raw('kvp', encodeKvp(flavor, { operation: KVP_OP_GET, pool: 1 }));
      expect(ok.status).toBe(HV_S_OK);
      s.ac.abort();
      await s.done;
    });

    it('a handler that throws gets the host a failure status and the daemon stays up', async () => {
      let n = 0;
      const s = setup(flavor, () => {
        if (n++ === 0) throw new Error('boom');
        return { status: HV_S_OK };
      });
      await s.registered(1);
      expect((await s.host.kvp({ op: 'get', pool: 1, key: 'a' })).status).toBe(HV_E_FAIL);
      expect((await s.host.kvp({ op: 'get', pool: 1, key: 'b' })).status).toBe(HV_S_OK);
      expect(s.lines.some((l) => l.op === 'handler' && String(l.msg).includes('boom'))).toBe(true);
      s.ac.abort();
      await s.done;
    });

    it('work after the reply starts once the reply is sent, does not delay it, and the next request waits for it', async () => {
      const events: string[] = [];
      let release!: () => void;
      const s = setup(
        flavor,
        (m) => {
          events.push(`handled ${m.pool}`);
          if (m.pool !== 0) return { status: HV_S_OK };
          return new AfterReply({ status: HV_S_OK }, async () => {
            events.push('after started');
            await new Promise<void>((r) => (release = r)); // a hook that hangs until the test lets it go
            events.push('after ended');
          });
        },
        10,
        events,
      );
      await s.registered(1);
      // The host has its answer while the after-reply work is still running.
      expect((await s.host.kvp({ op: 'delete', pool: 0, key: 'k' })).status).toBe(HV_S_OK);
      for (let i = 0; i < 100 && !events.includes('after started'); i++) await new Promise((r) => setTimeout(r, 5));
      expect(events).toEqual(['handled 0', 'sent', 'after started']);
      // The next request is not taken before that work ends.
      const next = s.host.kvp({ op: 'delete', pool: 1, key: 'k' });
      await new Promise((r) => setTimeout(r, 50));
      expect(events).not.toContain('handled 1');
      release();
      expect((await next).status).toBe(HV_S_OK);
      expect(events).toEqual(['handled 0', 'sent', 'after started', 'after ended', 'handled 1', 'sent']);
      s.ac.abort();
      expect(await s.done).toEqual({ reason: 'aborted' });
    });

    it('work after the reply that fails is logged and the loop goes on', async () => {
      const s = setup(flavor, (m) =>
        m.pool === 0
          ? new AfterReply({ status: HV_S_OK }, async () => {
              throw new Error('hook exploded');
            })
          : { status: HV_S_OK },
      );
      await s.registered(1);
      expect((await s.host.kvp({ op: 'delete', pool: 0, key: 'k' })).status).toBe(HV_S_OK);
      expect((await s.host.kvp({ op: 'delete', pool: 1, key: 'k' })).status).toBe(HV_S_OK);
      const failed = s.lines.filter((l) => l.op === 'after-reply');
      expect(failed).toHaveLength(1);
      expect(String(failed[0]!.msg)).toContain('hook exploded');
      s.ac.abort();
      expect(await s.done).toEqual({ reason: 'aborted' });
    });

    it('reopens and re-registers with backoff when the device goes away and comes back', async () => {
      const s = setup(flavor, () => ({ status: HV_S_OK }));
      await s.registered(1);
      s.host.remove();
      await new Promise((r) => setTimeout(r, 60)); // a few failed reopens while it is gone
      s.host.restore();
      await s.registered(2);
      expect((await s.host.kvp({ op: 'set', pool: 0, key: 'k', value: 'v' })).status).toBe(HV_S_OK);
      expect(s.lines.some((l) => l.op === 'reopen' || l.op === 'device')).toBe(true);
      s.ac.abort();
      await s.done;
    });

    it('a busy device on the first open ends the loop as fatal, naming EBUSY', async () => {
      const s = setup(flavor, () => ({ status: HV_S_OK }));
      await s.registered(1);
      const node = s.host.nodes.find((x) => x.name === KVP_NODE[flavor])!;
      const second = await serve({
        device: () => createMemoryDevice(node, { flavor, service: 'kvp' }),
        protocol: kvpProtocol(flavor),
        handler: () => ({ status: HV_S_OK }),
        log: capture().log,
        signal: new AbortController().signal,
      });
      expect(second.reason).toBe('fatal');
      expect(second.reason === 'fatal' && second.error.code).toBe('EBUSY');
      s.ac.abort();
      await s.done;
    });
  });
}

describe('serve loop, Linux VSS', () => {
  it('an op the daemon does not implement is answered with the handler status, a short message with HV_E_FAIL', async () => {
    const host = createSimulator({ flavor: 'linux' });
    hosts.push(host);
    const node = host.nodes.find((n) => n.name === 'vmbus/hv_vss')!;
    const ac = new AbortController();
    let registered!: () => void;
    const ready = new Promise<void>((r) => (registered = r));
    const done = serve({
      onRegistered: () => registered(),
      device: () => createMemoryDevice(node, { flavor: 'linux', service: 'vss' }),
      protocol: vssProtocol('linux'),
      handler: (r) => ({ status: r.kind === 'unknown' ? HV_E_FAIL : HV_S_OK }),
      log: capture().log,
      signal: ac.signal,
    });
    // Linux fails VSS requests at once while no daemon is registered, so wait for it.
    await ready;
    expect((await host.vss('check')).status).toBe(HV_S_OK);
    expect((await host.raw('vss', encodeLinuxVss({ operation: 42 }))).status).toBe(HV_E_FAIL);
    expect((await host.raw('vss', Buffer.from([6, 0, 0]))).status).toBe(HV_E_FAIL);
    expect((await host.vss('thaw')).status).toBe(HV_S_OK);
    ac.abort();
    await done;
  });
});

describe('answer()', () => {
  it('returns the encoded reply after running the after-reply work; a failure there is logged, not thrown', async () => {
    const events: string[] = [];
    const { log, lines } = capture();
    const protocol = vssProtocol('linux');
    const handler = () =>
      new AfterReply({ status: HV_S_OK }, async () => {
        events.push('after');
        throw new Error('late failure');
      });
    const reply = await answer(encodeLinuxVss({ operation: VSS_OP_THAW }), { protocol, handler, log });
    expect(reply?.readUInt32LE(0)).toBe(HV_S_OK);
    expect(events).toEqual(['after']);
    expect(lines.some((l) => l.op === 'after-reply' && String(l.msg).includes('late failure'))).toBe(true);
  });
});
