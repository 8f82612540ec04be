import { describe, expect, it, vi } from 'vitest';
import { hostIoctlOs, ioctlNumbers } from '../common/device/ioctl.js';
import type { Device } from '../common/device/types.js';
import { HV_E_FAIL, HV_S_OK, HV_VSS_CHECK, HV_VSS_FREEZE, HV_VSS_THAW, VSS_FAIL, VSS_SUCCESS } from '../common/wire/constants.js';
import { decodeFreebsdVss, encodeFreebsdVss, type FreebsdVssMessage } from '../common/wire/vss.js';
import { serveOpts } from '../test/lib/sim-daemon.js';
import type { SimulatorOptions } from './host-api.js';
import { createMemoryDevice } from './memory-device.js';
import { SIM_POLLIN, type SimFile, type SimNode } from './node.js';
import { createSimulator } from './simulator.js';
import { expectKernelTimeout, fakeTimersPerTest, startDaemon } from '../test/lib/sim-helpers.js';

const IOC = ioctlNumbers(hostIoctlOs());

function setup(extra: Partial<SimulatorOptions> = {}) {
  const host = createSimulator({ flavor: 'freebsd', ...extra });
  const fs = host.nodes.find((n) => n.name === 'hv_fsvss_dev')!;
  const app = host.nodes.find((n) => n.name === 'hv_appvss_dev')!;
  const dev = (node: SimNode, service: 'vss' | 'appvss'): Device => createMemoryDevice(node, { flavor: 'freebsd', service });
  return { host, fs, app, dev };
}

/** setup() with the fs daemon (pid 1) and then the app (pid 2) open. */
function bothOpen() {
  const s = setup();
  const fsf = s.fs.open({ pid: 1 });
  return { ...s, fsf, appf: s.app.open({ pid: 2 }) };
}

/** IOCHVVSSREAD on a file. */
const fetch = (f: SimFile): FreebsdVssMessage => decodeFreebsdVss(f.ioctl(IOC.IOCHVVSSREAD, Buffer.alloc(64)).out) as FreebsdVssMessage;
/** IOCHVVSSWRITE on a file. */
const ack = (f: SimFile, m: FreebsdVssMessage, status: number): { ret: number; out: Buffer } =>
  f.ioctl(IOC.IOCHVVSSWRITE, encodeFreebsdVss({ opt: m.opt, msgid: m.msgid, status }));

/** A registered daemon answering with `handler`; `seen` holds the requests it fetched. */
const daemon = (d: Device, handler: (m: FreebsdVssMessage) => number | undefined) => startDaemon(d, serveOpts, handler);

fakeTimersPerTest();

describe('FreeBSD hv_fsvss_dev / hv_appvss_dev: devices', () => {
  it('opening fsvss is the registration; a second open and a second app open fail EBUSY', () => {
    const { host, fs, app } = setup();
    fs.open({ pid: 1 });
    expect(host.status().vss).toMatchObject({ open: true, registered: true });
    expect(() => fs.open({ pid: 2 })).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
    app.open({ pid: 3 });
    expect(host.status().appvss).toEqual({ open: true });
    expect(() => app.open({ pid: 4 })).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
  });

  it('no read/write entry points; IOCHVVSSREAD on an empty queue gives status 1; unknown ioctls return 0 and do nothing', async () => {
    const { fs } = setup();
    const f = fs.open({ pid: 1 });
    await expect(f.read(64)).rejects.toMatchObject({ errno: 'ENODEV' });
    expect(() => f.write(Buffer.alloc(64))).toThrow(expect.objectContaining({ errno: 'ENODEV' }));
    const empty = f.ioctl(IOC.IOCHVVSSREAD, Buffer.alloc(64, 0xff));
    expect(empty.ret).toBe(0);
    expect(decodeFreebsdVss(empty.out)).toMatchObject({ opt: 0, status: VSS_FAIL, msgid: 0n });
    const arg = Buffer.alloc(64, 7);
    expect(f.ioctl(0x12345678, arg)).toEqual({ ret: 0, out: arg });
    expect(f.poll()).toBe(0);
  });

  it('no daemon ever opened: host messages (NEGOTIATE too) stay unread; opening drains them', async () => {
    const { host, fs } = setup();
    const p = host.vss('check');
    await vi.advanceTimersByTimeAsync(4000);
    expect(host.status().vss.outstanding).toBe(false);
    const f = fs.open({ pid: 1 });
    expect(f.poll()).toBe(SIM_POLLIN);
    ack(f, fetch(f), VSS_SUCCESS);
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_OK, flags: 5 });
    // and with nobody at all the host withdraws after its wait
    const q = setup().host.vss('freeze', { waitForDaemonMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(await q).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL });
  });
});

describe('FreeBSD VSS: requests', () => {
  it('CHECK/FREEZE/THAW map to opts 1/2/3 with msgid = nanotime; status 0/1 → S_OK/E_FAIL; CHECK always flags 5', async () => {
    vi.setSystemTime(1_700_000_000_123);
    const { host, fs, dev } = setup();
    const d = await daemon(dev(fs, 'vss'), (m) => (m.opt === HV_VSS_CHECK ? VSS_FAIL : VSS_SUCCESS));
    expect(await host.vss('check')).toMatchObject({ outcome: 'answered', status: HV_E_FAIL, flags: 5 });
    expect(await host.vss('freeze')).toMatchObject({ outcome: 'answered', status: HV_S_OK });
    expect(await host.vss('thaw')).toMatchObject({ outcome: 'answered', status: HV_S_OK });
    expect(d.seen.map((m) => m.opt)).toEqual([HV_VSS_CHECK, HV_VSS_FREEZE, HV_VSS_THAW]);
    expect(d.seen[0]!.msgid).toBe(1_700_000_000_123n * 1_000_000n);
    expect(new Set(d.seen.map((m) => m.msgid)).size).toBe(3);
    expect(d.seen.every((m) => m.status === 0 && m.reserved.every((x) => x === 0))).toBe(true);
    await d.stop();
  });

  it('GET_DM_INFO is answered by the kernel (flags 0); CREATE, DELETE, BU_COMPLETE, AUTO_RECOVER never', async () => {
    const { host, fs } = setup();
    fs.open({ pid: 1 });
    expect(await host.vss('get_dm_info')).toMatchObject({ outcome: 'kernel', status: HV_S_OK, flags: 0 });
    for (const op of ['create', 'delete', 'bu_complete', 'auto_recover'] as const) {
      const p = host.vss(op, { hostTimeoutMs: 2000 });
      await vi.advanceTimersByTimeAsync(2000);
      expect(await p).toMatchObject({ outcome: 'dropped', ms: 2000 });
      expect((await p).status).toBeUndefined();
    }
  });

  it('poll: POLLIN only while the notify queue holds a request', async () => {
    const { host, fs } = setup();
    const f = fs.open({ pid: 1 });
    const p = host.vss('freeze');
    await vi.advanceTimersByTimeAsync(0);
    expect(f.poll()).toBe(SIM_POLLIN);
    const m = fetch(f);
    expect(f.poll()).toBe(0);
    ack(f, m, VSS_SUCCESS);
    await p;
  });

  it('CHECK/FREEZE go to the app first, then the fs daemon; THAW to the fs daemon first, then the app', async () => {
    const { host, fsf, appf } = bothOpen();
    const p = host.vss('freeze');
    await vi.advanceTimersByTimeAsync(0);
    expect([appf.poll(), fsf.poll()]).toEqual([SIM_POLLIN, 0]);
    ack(appf, fetch(appf), VSS_SUCCESS);
    expect([appf.poll(), fsf.poll()]).toEqual([0, SIM_POLLIN]);
    ack(fsf, fetch(fsf), VSS_SUCCESS);
    expect(await p).toMatchObject({ status: HV_S_OK, outcome: 'answered' });
    const q = host.vss('thaw');
    await vi.advanceTimersByTimeAsync(0);
    expect([appf.poll(), fsf.poll()]).toEqual([0, SIM_POLLIN]);
    ack(fsf, fetch(fsf), VSS_SUCCESS);
    expect([appf.poll(), fsf.poll()]).toEqual([SIM_POLLIN, 0]);
    ack(appf, fetch(appf), VSS_FAIL);
    expect(await q).toMatchObject({ status: HV_E_FAIL });
  });

  it('an app failure ends the chain: the fs daemon never sees the request', async () => {
    const { host, fsf, appf } = bothOpen();
    const p = host.vss('check');
    await vi.advanceTimersByTimeAsync(0);
    ack(appf, fetch(appf), VSS_FAIL);
    expect(await p).toMatchObject({ status: HV_E_FAIL, flags: 5 });
    expect(fsf.poll()).toBe(0);
  });

  it('an app ack with no fs daemon registered leaves the request to the 15 s timeout (F14)', async () => {
    const { host, fs, app } = setup();
    const appf = app.open({ pid: 2 });
    const fsf = fs.open({ pid: 3 });
    const p = host.vss('freeze');
    await vi.advanceTimersByTimeAsync(0);
    const m = fetch(appf);
    fsf.release();
    ack(appf, m, VSS_SUCCESS);
    // "Fatal": the request left the app's ack queue and entered no other; a new fs daemon does not get it.
    expect(fs.open({ pid: 4 }).poll()).toBe(0);
    await expectKernelTimeout(host, 'vss', p, 15_000);
  });

  it('one 15 s timeout covers the whole chain; a late ack returns 0 and changes nothing (F15)', async () => {
    const { host, fsf, appf } = bothOpen();
    const p = host.vss('check');
    await vi.advanceTimersByTimeAsync(10_000);
    ack(appf, fetch(appf), VSS_SUCCESS);
    const m = fetch(fsf);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await p).toMatchObject({ outcome: 'timeout', status: HV_E_FAIL, flags: 5, ms: 15_000 });
    const late = encodeFreebsdVss({ opt: m.opt, msgid: m.msgid, status: 0 });
    expect(fsf.ioctl(IOC.IOCHVVSSWRITE, late)).toEqual({ ret: 0, out: late });
    expect(host.status().vss.outstanding).toBe(false);
  });

  it('a request arriving while another is unfinished is silently ignored (F12)', async () => {
    const { host, fs } = setup();
    const f = fs.open({ pid: 1 });
    const first = host.vss('freeze', { hostTimeoutMs: 100 });
    await vi.advanceTimersByTimeAsync(100);
    expect((await first).outcome).toBe('dropped'); // the host gave up; the kernel still holds it
    const second = host.vss('thaw', { hostTimeoutMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    expect((await second).outcome).toBe('dropped');
    expect(fetch(f).opt).toBe(HV_VSS_FREEZE);
    expect(fetch(f).status).toBe(VSS_FAIL); // the THAW never entered a queue
  });

  it('after the daemon closes, every request fails at once until it reopens (F13)', async () => {
    const { host, fs } = setup();
    fs.open({ pid: 1 }).release();
    expect(host.status().vss).toMatchObject({ open: false, registered: false });
    expect(await host.vss('check')).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL, flags: 5 });
    expect(await host.vss('get_dm_info')).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL, flags: 0 });
    expect(await host.vss('create')).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL });
    const f = fs.open({ pid: 2 });
    const p = host.vss('freeze');
    await vi.advanceTimersByTimeAsync(0);
    ack(f, fetch(f), VSS_SUCCESS);
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_OK });
  });

  it('close with a request queued: a daemon reopening in time gets it; otherwise it times out after 15 s', async () => {
    const { host, fs } = setup();
    fs.open({ pid: 1 }).release();
    const f = fs.open({ pid: 1 });
    const p = host.vss('freeze');
    await vi.advanceTimersByTimeAsync(0);
    f.release();
    const g = fs.open({ pid: 2 });
    expect(g.poll()).toBe(SIM_POLLIN);
    ack(g, fetch(g), VSS_SUCCESS);
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_OK });
    const q = host.vss('thaw');
    await vi.advanceTimersByTimeAsync(0);
    g.release();
    await vi.advanceTimersByTimeAsync(15_000);
    expect(await q).toMatchObject({ outcome: 'timeout', status: HV_E_FAIL, ms: 15_000 });
  });

  it('raw: the bytes come out of IOCHVVSSREAD as given; the reply is the IOCHVVSSWRITE argument; status 0 → S_OK', async () => {
    const { host, fs } = setup();
    const f = fs.open({ pid: 1 });
    const bytes = encodeFreebsdVss({ opt: 9, msgid: 42n, status: 3 });
    const p = host.raw('vss', bytes);
    await vi.advanceTimersByTimeAsync(0);
    expect(f.ioctl(IOC.IOCHVVSSREAD, Buffer.alloc(64)).out).toEqual(bytes);
    const reply = encodeFreebsdVss({ opt: 9, msgid: 42n, status: 0, reserved: Buffer.alloc(48, 1) });
    f.ioctl(IOC.IOCHVVSSWRITE, reply);
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_OK, reply });
    const q = host.raw('vss', bytes);
    await vi.advanceTimersByTimeAsync(0);
    const m = fetch(f);
    ack(f, m, 1);
    expect((await q).status).toBe(HV_E_FAIL);
  });

  it('removal: waitReadable rejects EGONE, ioctl EBADF, opens ENOENT until restore', async () => {
    const { host, fs, dev } = setup();
    const d = dev(fs, 'vss');
    await d.open();
    const waiting = d.waitReadable();
    host.remove();
    await expect(waiting).rejects.toMatchObject({ code: 'EGONE' });
    await expect(d.ioctl(IOC.IOCHVVSSREAD, Buffer.alloc(64))).rejects.toMatchObject({ code: 'EBADF' });
    await expect(dev(fs, 'vss').open()).rejects.toMatchObject({ code: 'ENOENT' });
    host.restore();
    // A fresh driver: no daemon ever opened, so nothing fails at once.
    const p = host.vss('check', { waitForDaemonMs: 10 });
    await vi.advanceTimersByTimeAsync(10);
    expect((await p).outcome).toBe('no-daemon');
    await dev(fs, 'vss').open();
  });
});
