import { describe, expect, it, vi } from 'vitest';
import type { Device } from '../common/device/types.js';
import { HV_E_FAIL, HV_S_OK, VSS_OP_FREEZE, VSS_OP_HOT_BACKUP, VSS_OP_REGISTER, VSS_OP_REGISTER1, VSS_OP_THAW } from '../common/wire/constants.js';
import { decodeLinuxVss, encodeLinuxVss, type LinuxVssMessage } from '../common/wire/vss.js';
import { serveMessages } from '../test/lib/sim-daemon.js';
import type { SimulatorOptions } from './host-api.js';
import { SIM_POLLIN, SIM_POLLRDNORM, type SimFile, type SimNode } from './node.js';
import { expectKernelTimeout, fakeTimersPerTest, openExclusive, openRegistered, simulatorNode, startDaemon } from '../test/lib/sim-helpers.js';

const setup = (extra: Partial<SimulatorOptions> = {}) => simulatorNode('linux', 'vmbus/hv_vss', 'vss', extra);

const reg = (op = VSS_OP_REGISTER1): Buffer => encodeLinuxVss({ operation: op });
const answer = (error: number): Buffer => encodeLinuxVss({ error });

async function registered(node: SimNode): Promise<SimFile> {
  const f = node.open({ pid: 1 });
  f.write(reg());
  await f.read(4);
  return f;
}

/** serveMessages for Linux VSS: requests decoded, the handler's error code sent back as a 12-byte reply. */
function serveVss(dev: Device, handler: (m: LinuxVssMessage) => number | undefined, signal: AbortSignal): Promise<unknown> {
  return serveMessages(
    dev,
    (b) => {
      const e = handler(decodeLinuxVss(b) as LinuxVssMessage);
      return e === undefined ? undefined : answer(e);
    },
    signal,
  );
}

/** A registered daemon answering with `handler`; `seen` holds the decoded requests. */
const daemon = (dev: Device, handler: (m: LinuxVssMessage) => number | undefined) => startDaemon(dev, serveVss, handler);

fakeTimersPerTest();

describe('Linux /dev/vmbus/hv_vss: registration', () => {
  it('writes must be exactly 12 bytes; op 129 queues a bare u32 129, READY once it is read', async () => {
    const { host, node } = setup();
    const f = openExclusive(node, 'EBUSY');
    expect(() => f.write(Buffer.concat([reg(), Buffer.alloc(1)]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(f.write(reg())).toBe(12);
    expect(f.poll()).toBe(SIM_POLLIN | SIM_POLLRDNORM);
    await expect(f.read(3)).rejects.toMatchObject({ errno: 'EINVAL' });
    expect(host.status().vss.registered).toBe(false);
    const v = await f.read(12);
    expect([...v]).toEqual([129, 0, 0, 0]);
    expect(host.status().vss).toMatchObject({ open: true, registered: true });
  });

  it('registerDevice() reads exactly the 4-byte reply', async () => {
    const { dev } = setup();
    const d = dev();
    await d.open();
    await expect(d.register()).resolves.toEqual({});
    d.close();
  });

  it('legacy op 128: no reply and never READY, so requests fail at once', async () => {
    const { host, node } = setup();
    const f = node.open({ pid: 1 });
    expect(f.write(reg(VSS_OP_REGISTER))).toBe(12);
    expect(f.poll()).toBe(0);
    expect(await host.vss('freeze')).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL, ms: 0 });
  });
});

describe('Linux /dev/vmbus/hv_vss: requests', () => {
  it('no daemon: CHECK/FREEZE/THAW fail at once; the other ops are answered by the kernel', async () => {
    const { host } = setup();
    for (const op of ['check', 'freeze', 'thaw'] as const) expect(await host.vss(op)).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL });
    for (const op of ['create', 'delete', 'bu_complete', 'auto_recover'] as const) expect(await host.vss(op)).toMatchObject({ outcome: 'kernel', status: HV_S_OK });
    expect(await host.vss('get_dm_info')).toMatchObject({ outcome: 'kernel', status: HV_S_OK, flags: 0 });
  });

  it('FREEZE/THAW reach the daemon as 12 bytes with only the op; its int32 error is the host status', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), (m) => (m.operation === VSS_OP_THAW ? HV_E_FAIL : 0));
    expect(await host.vss('freeze')).toMatchObject({ outcome: 'answered', status: HV_S_OK });
    expect(await host.vss('thaw')).toMatchObject({ outcome: 'answered', status: HV_E_FAIL });
    expect(d.seen.map((m) => [m.operation, m.flags, m.reserved.every((x) => x === 0)])).toEqual([
      [VSS_OP_FREEZE, 0, true],
      [VSS_OP_THAW, 0, true],
    ]);
    await d.stop();
  });

  it('a blocked read interrupted by a signal fails EINTR and takes nothing: the next request goes to the next read', async () => {
    const { host, node } = setup();
    const f = await registered(node);
    const ac = new AbortController();
    const blocked = f.read(12, ac.signal);
    await vi.advanceTimersByTimeAsync(1000);
    ac.abort();
    await expect(blocked).rejects.toMatchObject({ errno: 'EINTR' });
    const p = host.vss('freeze');
    await vi.advanceTimersByTimeAsync(0);
    const req = decodeLinuxVss(await f.read(12, new AbortController().signal)) as LinuxVssMessage;
    expect(req.operation).toBe(VSS_OP_FREEZE);
    f.write(answer(0));
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_OK });
  });

  it('HOT_BACKUP: flags 5 per the spec; with the reply-op quirk only when byte 0 of the reply is 2', async () => {
    const spec = setup();
    const d = await daemon(spec.dev(), () => 0);
    expect(await spec.host.vss('check')).toMatchObject({ status: HV_S_OK, flags: 5 });
    expect(d.seen[0]!.operation).toBe(VSS_OP_HOT_BACKUP);
    await d.stop();
    const quirk = setup({ quirks: { linuxVssHotBackupFlagsFromReplyOp: true } });
    const q = await daemon(quirk.dev(), () => 0);
    expect(await quirk.host.vss('check')).toMatchObject({ status: HV_S_OK, flags: 0 });
    await q.stop();
  });

  it('kernel-answered ops leave the state READY: a daemon that opened without registering then gets requests', async () => {
    const { host, node } = setup();
    await host.vss('get_dm_info');
    const f = node.open({ pid: 1 });
    const p = host.vss('freeze');
    expect(decodeLinuxVss(await f.read(12))).toMatchObject({ operation: VSS_OP_FREEZE });
    f.write(answer(0));
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_OK });
    expect(host.status().vss.registered).toBe(false);
  });

  it('FREEZE times out after 900 s, THAW after 30 s; a late reply fails EINVAL', async () => {
    const { host, node } = setup();
    const f = await registered(node);
    const p = host.vss('freeze');
    await f.read(12);
    await expectKernelTimeout(host, 'vss', p, 900_000);
    expect(() => f.write(answer(0))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    const q = host.vss('thaw');
    await f.read(12);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(await q).toMatchObject({ outcome: 'timeout', ms: 30_000 });
  });

  it('timeouts can be overridden', async () => {
    const { host, node } = setup({ timeouts: { vssFreeze: 50 } });
    const f = await registered(node);
    const p = host.vss('freeze');
    await f.read(12);
    await vi.advanceTimersByTimeAsync(50);
    expect((await p).outcome).toBe('timeout');
  });

  it('registration during a transaction fails EINVAL; close fails the transaction at once and drops the registration', async () => {
    const { host, node } = setup();
    const f = await registered(node);
    const p = host.vss('freeze');
    await f.read(12);
    expect(() => f.write(reg())).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    f.release();
    expect(await p).toMatchObject({ outcome: 'daemon-closed', status: HV_E_FAIL });
    expect(host.status().vss).toMatchObject({ open: false, registered: false, outstanding: false });
    expect(await host.vss('thaw')).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL });
  });

  it('raw: the exact bytes go down; the 12-byte reply comes back as written, status = its int32', async () => {
    const { host, node } = setup();
    expect(await host.raw('vss', Buffer.from([5]))).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL });
    const f = await registered(node);
    const p = host.raw('vss', Buffer.from([6, 1, 2]));
    expect([...(await f.read(12))]).toEqual([6, 1, 2]);
    const reply = answer(-5);
    f.write(reply);
    expect(await p).toMatchObject({ outcome: 'answered', status: 0xfffffffb, reply });
  });

  it('removal: pollers see POLLERR|POLLHUP, readers EBADF, opens ENOENT until restore', async () => {
    const { host, node, dev } = setup();
    const d = await openRegistered(dev());
    const waiting = d.waitReadable();
    const reading = d.read();
    host.remove();
    await expect(waiting).rejects.toMatchObject({ code: 'EGONE' });
    await expect(reading).rejects.toMatchObject({ code: 'EBADF' });
    expect(() => node.open({ pid: 1 })).toThrow(expect.objectContaining({ errno: 'ENOENT' }));
    host.restore();
    const f = await registered(node);
    expect(f.poll()).toBe(0);
    await expect(d.write(answer(0))).rejects.toMatchObject({ code: 'EBADF' });
    await expect(d.waitReadable()).rejects.toMatchObject({ code: 'EGONE' });
  });
});
