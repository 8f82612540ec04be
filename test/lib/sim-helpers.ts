/**
 * Setup shared by the simulator's tests: fake timers, a simulator with
 * memory Devices on one of its nodes, a daemon played on a Device, a driver
 * alone on a channel, and the check that a request times out in the kernel
 * exactly when it should. Test support only (like sim-daemon.ts); the
 * simulator itself never uses it.
 */
import { afterEach, beforeEach, expect, vi } from 'vitest';
import type { Device, Service } from '../../common/device/types.js';
import { HV_E_FAIL, type Flavor } from '../../common/wire/constants.js';
import { SimChannel, type KernelAnswer } from '../../sim/channel.js';
import { systemClock } from '../../sim/clock.js';
import type { SimHost, SimulatorOptions } from '../../sim/host-api.js';
import type { DriverEnv } from '../../sim/kernel-service.js';
import { createMemoryDevice } from '../../sim/memory-device.js';
import type { SimFile, SimNode } from '../../sim/node.js';
import { createSimulator } from '../../sim/simulator.js';
import { DEFAULT_TIMEOUTS } from '../../sim/timeouts.js';

/** Every test of the calling file runs on vitest's fake timers: kernel and host timeouts pass only when the test advances them. */
export function fakeTimersPerTest(): void {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
}

/** A simulator of `flavor`, its node `name`, and a maker of fresh memory Devices for `service` on that node. */
export function simulatorNode(flavor: Flavor, name: string, service: Service, extra: Partial<SimulatorOptions> = {}) {
  const host = createSimulator({ flavor, ...extra });
  const node = host.nodes.find((n) => n.name === name)!;
  const dev = (): Device => createMemoryDevice(node, { flavor, service });
  return { host, node, dev };
}

/** Open `node` as pid 1 and check that a second opener (pid 2) fails with `errno`, which differs per driver; returns the first file. */
export function openExclusive(node: SimNode, errno: string): SimFile {
  const f = node.open({ pid: 1 });
  expect(() => node.open({ pid: 2 })).toThrow(expect.objectContaining({ errno }));
  return f;
}

/** `dev` opened and registered, as a daemon starts. */
export async function openRegistered(dev: Device): Promise<Device> {
  await dev.open();
  await dev.register();
  return dev;
}

/** A serve loop of sim-daemon.ts (or an adapter around one). */
export type ServeLoop<M, R> = (dev: Device, handler: (m: M) => R, signal: AbortSignal) => Promise<unknown>;

/**
 * A daemon played on `dev`: opened, registered (`reg` is what registration
 * returned), then served by `serve` with `handler` until stop(); `seen`
 * records every request in the order it was handed to the handler.
 */
export async function startDaemon<M, R>(dev: Device, serve: ServeLoop<M, R>, handler: (m: M) => R) {
  await dev.open();
  const reg = await dev.register();
  const seen: M[] = [];
  const ac = new AbortController();
  const done = serve(dev, (m) => (seen.push(m), handler(m)), ac.signal);
  return { reg, seen, stop: () => (ac.abort(), dev.close(), done) };
}

/** An environment for one driver under test, without a host port: its channel records each answer and the request id it went to. */
export function bareEnv(flavor: Flavor) {
  const answers: KernelAnswer[] = [];
  const ids: number[] = [];
  const channel = new SimChannel({ taken: () => {}, answer: (id, a) => (ids.push(id), answers.push(a)) });
  const env: DriverEnv = { channel, clock: systemClock, timeouts: DEFAULT_TIMEOUTS[flavor] };
  return { channel, env, answers, ids };
}

/**
 * With fake timers: the request `p` is still inside the kernel 1 ms before
 * `ms` have passed since it was sent, and fails with HV_E_FAIL ('timeout')
 * after exactly `ms`.
 */
export async function expectKernelTimeout(host: SimHost, service: 'kvp' | 'vss', p: Promise<unknown>, ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms - 1);
  expect(host.status()[service].outstanding).toBe(true);
  await vi.advanceTimersByTimeAsync(1);
  expect(await p).toMatchObject({ outcome: 'timeout', status: HV_E_FAIL, ms });
}
