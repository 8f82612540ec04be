/**
 * The Device contract (common/device/types.ts), one suite run against every
 * implementation: the in-memory fake on the simulator's drivers, the FFI
 * device talking to the same drivers through the simulator's socket
 * transport, and the FFI device opening a FUSE node of `hvsim serve --fuse`
 * with plain open(2) as in production (another process: the test's own
 * blocking read(2) must not wait on its own event loop). Cases that need a
 * real Hyper-V guest are listed as skipped.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FfiDevice } from '../common/device/ffi-device.js';
import { DeviceError, type Device, type Service } from '../common/device/types.js';
import { kvpProtocol } from '../common/serve/kvp.js';
import { vssProtocol } from '../common/serve/vss.js';
import { HV_E_FAIL, HV_S_CONT, HV_S_OK, KVP_OP_GET, type Flavor } from '../common/wire/constants.js';
import { isWireError } from '../common/wire/errors.js';
import { kvpMsgSize } from '../common/wire/structs.js';
import { controlRequest, type ControlRequest } from '../sim/control.js';
import type { KvpHostRequest, SimHost, SimStatus, VssHostOp } from '../sim/host-api.js';
import { createMemoryDevice } from '../sim/memory-device.js';
import { createSimulator } from '../sim/simulator.js';
import { SocketServer } from '../sim/socket-server.js';
import { bin, start, stop, tempDir } from './lib/procs.js';
import { SIM_TRANSPORTS, noMountLeft } from './lib/transports.js';

const NODE: Record<Flavor, Record<'kvp' | 'vss', string>> = {
  freebsd: { kvp: 'hv_kvp_dev', vss: 'hv_fsvss_dev' },
  linux: { kvp: 'vmbus/hv_kvp', vss: 'vmbus/hv_vss' },
};

/** What the cases do as the host; the simulator may run in this process or behind its control socket. */
interface ContractHost {
  kvp(req: KvpHostRequest): Promise<{ outcome: string; status?: number }>;
  vss(op: VssHostOp): Promise<{ outcome: string; status?: number }>;
  status(): Promise<SimStatus>;
  remove(): Promise<void>;
  restore(): Promise<void>;
}

const local = (h: SimHost): ContractHost => ({
  kvp: (r) => h.kvp(r),
  vss: (op) => h.vss(op),
  status: async () => h.status(),
  remove: async () => h.remove(),
  restore: async () => h.restore(),
});

function remote(dir: string): ContractHost {
  const call = async <T>(req: ControlRequest): Promise<T> => {
    const r = await controlRequest(dir, req);
    if (!r.ok) throw new Error(r.error);
    return r.result as T;
  };
  return {
    kvp: (req) => call({ cmd: 'kvp', req }),
    vss: (op) => call({ cmd: 'vss', op }),
    status: () => call({ cmd: 'status' }),
    remove: () => call({ cmd: 'remove' }),
    restore: () => call({ cmd: 'restore' }),
  };
}

interface Env {
  host: ContractHost;
  make(service: Service): Device;
  close(): Promise<void>;
}

const fuse = SIM_TRANSPORTS.find((t) => t.name === 'fuse')!;

/** Each implementation, and why it cannot run here (FUSE needs Linux, root, /dev/fuse and the built front-end). */
const IMPLEMENTATIONS: Record<string, { skip?: string; env: (flavor: Flavor) => Promise<Env> }> = {
  memory: {
    env: async (flavor) => {
      const host = createSimulator({ flavor, timeouts: { kvp: 2000, vss: 2000, vssFreeze: 2000 } });
      return {
        host: local(host),
        make: (service) => {
          const name = NODE[flavor][service as 'kvp' | 'vss'];
          const node = host.nodes.find((n) => n.name === name)!;
          return createMemoryDevice(node, { flavor, service, path: `/mem/${name}` });
        },
        close: async () => host.close(),
      };
    },
  },
  'ffi + socket': {
    env: async (flavor) => {
      const host = createSimulator({ flavor, timeouts: { kvp: 2000, vss: 2000, vssFreeze: 2000 } });
      const tmp = tempDir();
      const server = new SocketServer(tmp.dir, host.nodes);
      server.start();
      return {
        host: local(host),
        make: (service) => new FfiDevice({ path: join(tmp.dir, NODE[flavor][service as 'kvp' | 'vss']), flavor, service }),
        close: async () => {
          await server.stop();
          host.close();
          tmp.remove();
        },
      };
    },
  },
  'ffi + fuse': {
    skip: fuse.skip,
    env: async (flavor) => {
      const tmp = tempDir();
      const dir = join(tmp.dir, 'sim');
      const sim = start(bin('hvsim'), ['serve', '--fuse', '--flavor', flavor, '--dir', dir, '--kvp-timeout', '2', '--vss-timeout', '2', '--vss-freeze-timeout', '2']);
      await sim.waitFor(/^hvsim: ready/);
      return {
        host: remote(dir),
        make: (service) => new FfiDevice({ path: join(dir, NODE[flavor][service as 'kvp' | 'vss']), flavor, service }),
        close: async () => {
          await stop(sim);
          noMountLeft(dir);
          tmp.remove();
        },
      };
    },
  },
};

/** Answer one request on an open, registered device the way the daemon loop does. */
async function answerOne(dev: Device, flavor: Flavor, service: 'kvp' | 'vss', status: number): Promise<unknown> {
  expect(await dev.waitReadable()).toBe(true);
  if (service === 'kvp') {
    const p = kvpProtocol(flavor);
    const raw = (await p.receive(dev))!;
    const req = p.decode(raw);
    if (isWireError(req)) throw new Error(req.message);
    await p.send(dev, p.encode({ status }, req, raw));
    return req;
  }
  const p = vssProtocol(flavor);
  const raw = (await p.receive(dev))!;
  const req = p.decode(raw);
  if (isWireError(req)) throw new Error(req.message);
  await p.send(dev, p.encode({ status }, req, raw));
  return req;
}

for (const [impl, { skip, env: makeEnv }] of Object.entries(IMPLEMENTATIONS)) {
  for (const flavor of ['freebsd', 'linux'] as const) {
    describe.skipIf(skip !== undefined)(`Device contract: ${impl}, ${flavor}${skip ? ` (skipped: ${skip})` : ''}`, () => {
      let env: Env;
      const opened: Device[] = [];
      const open = async (service: Service, register = true) => {
        const d = env.make(service);
        await d.open();
        opened.push(d);
        if (register) await d.register();
        return d;
      };

      beforeEach(async () => {
        env = await makeEnv(flavor);
      });
      afterEach(async () => {
        opened.splice(0).forEach((d) => d.close());
        await env.close();
      });

      for (const service of ['kvp', 'vss'] as const) {
        it(`${service}: open is exclusive; a second open fails with EBUSY`, async () => {
          await open(service);
          const second = env.make(service);
          const err = await second.open().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(DeviceError);
          expect((err as DeviceError).code).toBe('EBUSY');
          expect((err as DeviceError).message).toContain(second.path);
        });

        it(`${service}: after close the node can be opened and registered again`, async () => {
          const d = await open(service);
          d.close();
          d.close(); // idempotent
          const again = await open(service);
          expect((await env.host.status())[service].registered).toBe(true);
          again.close();
        });

        it(`${service}: an aborted wait resolves false and leaves the device usable`, async () => {
          const d = await open(service);
          const ac = new AbortController();
          const t0 = Date.now();
          setTimeout(() => ac.abort(), 50);
          expect(await d.waitReadable(ac.signal)).toBe(false);
          expect(Date.now() - t0).toBeLessThan(1000);
          // Still usable: a request now goes through.
          const host = service === 'kvp' ? env.host.kvp({ op: 'get', pool: 1, key: 'k' }) : env.host.vss('check');
          await answerOne(d, flavor, service, HV_S_OK);
          expect((await host).status).toBe(HV_S_OK);
        });

        it(`${service}: a host request is read whole and the reply's status reaches the host`, async () => {
          const d = await open(service);
          if (service === 'kvp') {
            const host = env.host.kvp({ op: 'get', pool: 1, key: 'Color' });
            const req = (await answerOne(d, flavor, 'kvp', HV_S_CONT)) as { operation: number; pool: number; raw: Buffer };
            expect(req.raw.length).toBe(kvpMsgSize(flavor));
            expect(req.operation).toBe(KVP_OP_GET);
            expect(req.pool).toBe(1);
            const r = await host;
            expect(r.outcome).toBe('answered');
            expect(r.status).toBe(HV_S_CONT);
          } else {
            const host = env.host.vss('freeze');
            const req = (await answerOne(d, flavor, 'vss', HV_E_FAIL)) as { kind: string };
            expect(req.kind).toBe('freeze');
            const r = await host;
            expect(r.outcome).toBe('answered');
            expect(r.status).toBe(HV_E_FAIL);
          }
        });

        it(`${service}: the device going away fails the wait instead of hanging`, async () => {
          const d = await open(service);
          const wait = d.waitReadable().then(
            (v) => ({ v }),
            (e: unknown) => ({ e }),
          );
          setTimeout(() => void env.host.remove(), 20);
          const r = await wait;
          expect('e' in r).toBe(true);
          expect((r as { e: unknown }).e).toBeInstanceOf(DeviceError);
          expect(['EGONE', 'EBADF', 'ENODEV']).toContain(((r as { e: DeviceError }).e).code);
          await env.host.restore();
        });
      }

      it('kvp: register returns the kernel version on Linux only', async () => {
        const d = await open('kvp', false);
        const reg = await d.register();
        expect(reg.version).toBe(flavor === 'linux' ? '3.1' : undefined);
      });
    });
  }
}

describe('Device contract: real Hyper-V device nodes', () => {
  const real = ['/dev/hv_kvp_dev', '/dev/vmbus/hv_kvp'].find((p) => existsSync(p));
  it.skip('needs a Hyper-V guest with the hv_kvp driver (no /dev/hv_kvp_dev or /dev/vmbus/hv_kvp here); the same cases run on the simulator above', () => {
    expect(real).toBeDefined();
  });
});
