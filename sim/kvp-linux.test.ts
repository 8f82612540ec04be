import { describe, expect, it, vi } from 'vitest';
import type { Device } from '../common/device/types.js';
import {
  HV_E_FAIL,
  HV_S_CONT,
  HV_S_OK,
  ICMSGTYPE_KVPEXCHANGE,
  KVP_OP_ENUMERATE,
  KVP_OP_GET,
  KVP_OP_REGISTER,
  KVP_OP_REGISTER1,
  REG_SZ,
} from '../common/wire/constants.js';
import { decodeIcPacket, encodeHostKvp, encodeIcPacket } from '../common/wire/host.js';
import { decodeKvp, encodeKvp, readExchange, readVariant, replyFrom, type KvpMessage } from '../common/wire/kvp.js';
import { cstringBytes } from '../common/wire/strings.js';
import { serveMessages } from '../test/lib/sim-daemon.js';
import type { SimulatorOptions } from './host-api.js';
import { LinuxKvpDriver } from './kvp-linux.js';
import { SIM_POLLERR, SIM_POLLHUP, SIM_POLLIN, SIM_POLLRDNORM, type SimFile } from './node.js';
import { bareEnv, expectKernelTimeout, fakeTimersPerTest, openExclusive, openRegistered, simulatorNode, startDaemon } from '../test/lib/sim-helpers.js';

const MSG = 7432;

const setup = (extra: Partial<SimulatorOptions> = {}) => simulatorNode('linux', 'vmbus/hv_kvp', 'kvp', extra);

const text = (b: Buffer): string => cstringBytes(b).toString('utf8');
const msgOf = (b: Buffer): KvpMessage => decodeKvp(b, 'linux') as KvpMessage;
const register1 = (): Buffer => encodeKvp('linux', { operation: KVP_OP_REGISTER1 });

/** Open and register by hand (write op, read the reply). */
async function registered(node: { open: (c: { pid: number }) => SimFile }, op = KVP_OP_REGISTER1): Promise<SimFile> {
  const f = node.open({ pid: 1 });
  f.write(encodeKvp('linux', { operation: op }));
  await f.read(MSG);
  return f;
}

/** A registered daemon answering with `handler`; `seen` holds the raw requests. */
const daemon = (dev: Device, handler: (m: KvpMessage) => Buffer | undefined) => startDaemon(dev, serveMessages, (b: Buffer) => handler(msgOf(b)));

fakeTimersPerTest();

describe('Linux /dev/vmbus/hv_kvp: open and registration', () => {
  it('one opener: a second open fails EBUSY (a positive errno here)', async () => {
    const { node, dev } = setup();
    openExclusive(node, 'EBUSY');
    await expect(dev().open()).rejects.toMatchObject({ code: 'EBUSY' });
  });

  it('registration: short or foreign writes fail EINVAL; op 100 queues a 7432-byte reply with version "3.1"', async () => {
    const { host, node } = setup();
    const f = node.open({ pid: 1 });
    expect(() => f.write(register1().subarray(0, MSG - 1))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => f.write(encodeKvp('linux', { operation: KVP_OP_GET }))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(f.poll()).toBe(0);
    expect(f.write(register1())).toBe(MSG);
    expect(f.poll()).toBe(SIM_POLLIN | SIM_POLLRDNORM);
    // Not READY until the daemon reads the reply: a second registration is still accepted (its reply is lost).
    expect(host.status().kvp.registered).toBe(false);
    expect(f.write(register1())).toBe(MSG);
    const reply = msgOf(await f.read(MSG));
    expect(reply.operation).toBe(KVP_OP_REGISTER1);
    expect(text(readVariant(reply, 'kvp_register').version as Buffer)).toBe('3.1');
    expect(f.poll()).toBe(0);
    expect(host.status().kvp).toMatchObject({ open: true, registered: true, version: '3.1' });
    // READY now: another registration write is a reply with no transaction.
    expect(() => f.write(register1())).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
  });

  it('registerDevice() does the handshake and returns the kernel version', async () => {
    const { dev } = setup();
    const d = await daemon(dev(), () => undefined);
    expect(d.reg).toEqual({ version: '3.1' });
    await d.stop();
  });

  it('a read too small for the queued message fails EINVAL and the message stays', async () => {
    const { node } = setup();
    const f = node.open({ pid: 1 });
    f.write(register1());
    await expect(f.read(MSG - 1)).rejects.toMatchObject({ errno: 'EINVAL' });
    expect((await f.read(65536)).length).toBe(MSG);
  });

  it('host packets stay in the ring until the registration reply has been read', async () => {
    const { host, node } = setup();
    const p = host.kvp({ op: 'get', pool: 0, key: 'early' });
    const f = node.open({ pid: 1 });
    f.write(register1());
    await vi.advanceTimersByTimeAsync(1000);
    expect(host.status().kvp.outstanding).toBe(false);
    await f.read(MSG); // the registration reply
    const req = msgOf(await f.read(MSG));
    expect(text(readExchange(req, 'kvp_get').key)).toBe('early');
    f.write(replyFrom(req.raw, HV_S_OK));
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_OK });
  });
});

describe('Linux /dev/vmbus/hv_kvp: requests', () => {
  it('GET: key only to the daemon; the host gets the value as UTF-16 with value_type REG_SZ', async () => {
    const { host, dev } = setup();
    // The kernel reads a GET value at the ENUMERATE value offset (532), where the daemon puts it.
    const d = await daemon(dev(), () => encodeKvp('linux', { error: 0 }, 'kvp_enum_data', { data: { value: Buffer.from('Blue') } }));
    expect(await host.kvp({ op: 'get', pool: 1, key: 'Color' })).toMatchObject({ status: HV_S_OK, key: 'Color', value: 'Blue', valueSize: 10, valueType: REG_SZ });
    const ex = readExchange(msgOf(d.seen[0]!), 'kvp_get');
    expect([text(ex.key), ex.keySize, ex.valueSize]).toEqual(['Color', 6, 0]);
    await d.stop();
  });

  it('linuxKvpGetValueAtEnumOffset (default): a GET value written at the GET offset loses its first four bytes', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), () => encodeKvp('linux', { error: 0 }, 'kvp_get', { data: { value: Buffer.from('ABCDvalue') } }));
    expect((await host.kvp({ op: 'get', pool: 1, key: 'k' })).value).toBe('value');
    await d.stop();
  });

  it('with linuxKvpGetValueAtEnumOffset off the simulator follows spec/kvp.md (value read at 528)', async () => {
    const { host, dev } = setup({ quirks: { linuxKvpGetValueAtEnumOffset: false } });
    const d = await daemon(dev(), () => encodeKvp('linux', { error: 0 }, 'kvp_get', { data: { value: Buffer.from('ABCDvalue') } }));
    expect((await host.kvp({ op: 'get', pool: 1, key: 'k' })).value).toBe('ABCDvalue');
    await d.stop();
  });

  it('SET: U32 rendered unsigned, U64 unsigned, strings converted with UTF-8 sizes', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), (m) => replyFrom(m.raw, HV_S_OK));
    await host.kvp({ op: 'set', pool: 0, key: 'n', value: 0xffffffff, valueType: 'u32' });
    await host.kvp({ op: 'set', pool: 0, key: 'éé', value: 'Grün😀' });
    const [u32, sz] = d.seen.map((b) => readExchange(msgOf(b), 'kvp_set'));
    expect([text(u32!.value), u32!.valueSize, u32!.valueType]).toEqual(['4294967295', 11, 0]);
    expect([text(sz!.key), sz!.keySize, text(sz!.value), sz!.valueSize]).toEqual(['éé', 5, 'Grün😀', 10]);
    await d.stop();
  });

  it('a non-zero daemon status goes to the host alone: the body is not converted', async () => {
    const { channel, env, answers } = bareEnv('linux');
    const driver = new LinuxKvpDriver(env, { getValueAtEnumOffset: false });
    const f = await registered(driver.nodes[0]!);
    const payload = encodeHostKvp({ operation: KVP_OP_ENUMERATE, pool: 0, index: 3 }) as Buffer;
    channel.send({ id: 1, data: encodeIcPacket({ msgtype: ICMSGTYPE_KVPEXCHANGE }, payload), raw: false });
    await f.read(MSG);
    const reply = encodeKvp('linux', { error: HV_S_CONT }, 'kvp_enum_data', { data: { key: Buffer.from('k'), value: Buffer.from('v') } });
    reply.writeUInt32LE(HV_S_CONT, 0);
    f.write(reply);
    const pkt = decodeIcPacket(answers[0]!.packet!);
    expect('header' in pkt && pkt.header.status).toBe(HV_S_CONT);
    expect('payload' in pkt && pkt.payload.subarray(4, 7430).every((x) => x === 0 || x === 3)).toBe(true);
  });

  it('ENUMERATE: keys cut at 254 units and values at 1022, sizes from what was written', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), () => encodeKvp('linux', { error: 0 }, 'kvp_enum_data', { data: { key: Buffer.from('k'.repeat(300)), value: Buffer.from('v'.repeat(2000)) } }));
    const r = await host.kvp({ op: 'enum', pool: 1, index: 0 });
    expect([r.key, r.keySize, r.value, r.valueSize]).toEqual(['k'.repeat(254), 510, 'v'.repeat(1022), 2046]);
    await d.stop();
  });

  it('a reply that is not valid UTF-8 gives the host HV_E_FAIL', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), () => encodeKvp('linux', { error: 0 }, 'kvp_enum_data', { data: { value: Buffer.from([0x41, 0xff, 0x42]) } }));
    expect(await host.kvp({ op: 'get', pool: 1, key: 'k' })).toMatchObject({ status: HV_E_FAIL, outcome: 'answered' });
    await d.stop();
  });

  it('legacy registration (op 4): an empty enumerate key means HV_S_CONT, status bytes are ignored', async () => {
    const { host, node } = setup();
    const f = await registered(node, KVP_OP_REGISTER);
    expect(host.status().kvp.registered).toBe(true);
    const p = host.kvp({ op: 'enum', pool: 1, index: 9 });
    const req = await f.read(MSG);
    f.write(replyFrom(req, HV_E_FAIL));
    expect((await p).status).toBe(HV_S_CONT);
    const q = host.kvp({ op: 'enum', pool: 1, index: 0 });
    await f.read(MSG);
    f.write(encodeKvp('linux', { error: HV_E_FAIL }, 'kvp_enum_data', { data: { key: Buffer.from('k'), value: Buffer.from('v') } }));
    expect(await q).toMatchObject({ status: HV_S_OK, key: 'k', value: 'v' });
  });

  it('IP info: family stays the host\'s, dhcp comes back; SET_IP_INFO strings cut at 1024 bytes, GUID untouched', async () => {
    const { host, dev } = setup({ hnDevices: [{ guid: 'ignored-on-linux', ifname: 'eth9' }] });
    const d = await daemon(dev(), (m) =>
      m.operation === 4 ? encodeKvp('linux', { error: 0 }, 'kvp_ip_val', { addr_family: 2, dhcp_enabled: 1, ip_addr: Buffer.from('10.0.0.5') }) : replyFrom(m.raw, HV_S_OK),
    );
    const r = await host.kvp({ op: 'ipinfo', mac: '00:15:5D:00:00:01', addrFamily: 1 });
    // The daemon sent an empty adapter id: zero units are written and no terminator, so the host reads its own MAC back.
    expect(r.ipInfo).toMatchObject({ addrFamily: 1, dhcpEnabled: 1, ipAddr: '10.0.0.5', adapterId: '00:15:5D:00:00:01' });
    await host.kvp({ op: 'setip', adapterId: '{5B1E1E5F-2F2A-4C9E-8F7E-0123456789AB}', ip: 'é'.repeat(600), subnet: '64', gateway: '', dns: '', dhcp: false });
    const ip = readVariant(msgOf(d.seen[1]!), 'kvp_ip_val');
    expect([text(ip.adapter_id as Buffer), text(ip.ip_addr as Buffer), text(ip.sub_net as Buffer)]).toEqual(['{5B1E1E5F-2F2A-4C9E-8F7E-0123456789AB}', 'é'.repeat(512), '64']);
    expect(text(readVariant(msgOf(d.seen[0]!), 'kvp_ip_val').adapter_id as Buffer)).toBe('00:15:5D:00:00:01');
    await d.stop();
  });

  it('raw: exact bytes down, the reply exactly as written, status from bytes 0..3', async () => {
    const { host, node } = setup();
    const f = await registered(node);
    const bytes = Buffer.from('deadbeef', 'hex');
    const p = host.raw('kvp', bytes);
    expect(await f.read(MSG)).toEqual(bytes);
    expect(() => f.write(Buffer.alloc(100))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    const reply = Buffer.alloc(MSG + 10, 0x11);
    f.write(reply);
    expect(await p).toMatchObject({ outcome: 'answered', status: 0x11111111, reply });
  });
});

describe('Linux /dev/vmbus/hv_kvp: timeouts, close, single slot, removal', () => {
  it('no reply within 30 s: HV_E_FAIL; the late reply write fails EINVAL', async () => {
    const { host, node } = setup();
    const f = await registered(node);
    const p = host.kvp({ op: 'get', pool: 0, key: 'k' });
    const req = await f.read(MSG);
    await expectKernelTimeout(host, 'kvp', p, 30_000);
    expect(() => f.write(replyFrom(req, HV_S_OK))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
  });

  it('close with a request outstanding: HV_E_FAIL at once and the next daemon must register again', async () => {
    const { host, node } = setup();
    const f = await registered(node);
    const p = host.kvp({ op: 'get', pool: 0, key: 'k' });
    await f.read(MSG);
    f.release();
    expect(await p).toMatchObject({ outcome: 'daemon-closed', status: HV_E_FAIL, ms: 0 });
    expect(host.status().kvp).toMatchObject({ open: false, registered: false });
    const g = node.open({ pid: 2 });
    expect(() => g.write(replyFrom(Buffer.alloc(MSG), HV_S_OK))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
  });

  it('an unread message blocks the single slot: the next request fails at once; the daemon then reads the stale one', async () => {
    const { host, node } = setup({ timeouts: { kvp: 1000 } });
    const f = await registered(node);
    const p = host.kvp({ op: 'get', pool: 0, key: 'first' });
    await vi.advanceTimersByTimeAsync(1000);
    expect((await p).outcome).toBe('timeout');
    expect(await host.kvp({ op: 'get', pool: 0, key: 'second' })).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL });
    expect(text(readExchange(msgOf(await f.read(MSG)), 'kvp_get').key)).toBe('first');
  });

  it('poll: POLLIN|POLLRDNORM with a message queued, never POLLOUT; POLLERR|POLLHUP after removal', async () => {
    const { host, node } = setup();
    const f = await registered(node);
    expect(f.poll()).toBe(0);
    void host.kvp({ op: 'get', pool: 0, key: 'k' });
    await vi.advanceTimersByTimeAsync(0);
    expect(f.poll()).toBe(SIM_POLLIN | SIM_POLLRDNORM);
    host.remove();
    expect(f.poll()).toBe(SIM_POLLERR | SIM_POLLHUP);
  });

  it('removal: a blocked read fails EBADF, opens fail ENOENT until restore, the old file stays dead', async () => {
    const { host, node, dev } = setup();
    const d = await openRegistered(dev());
    const read = d.read();
    host.remove();
    await expect(read).rejects.toMatchObject({ code: 'EBADF' });
    await expect(dev().open()).rejects.toMatchObject({ code: 'ENOENT' });
    host.restore();
    await expect(d.waitReadable()).rejects.toMatchObject({ code: 'EGONE' });
    const f = await registered(node);
    expect(host.status().kvp.registered).toBe(true);
    f.release();
  });

  it('too-short packets are dropped without an answer; the next packet is read', async () => {
    const { channel, env, ids } = bareEnv('linux');
    const driver = new LinuxKvpDriver(env, { getValueAtEnumOffset: false });
    const f = await registered(driver.nodes[0]!);
    channel.send({ id: 1, data: Buffer.alloc(27), raw: false });
    channel.send({ id: 2, data: encodeIcPacket({ msgtype: ICMSGTYPE_KVPEXCHANGE }, encodeHostKvp({ operation: KVP_OP_GET, pool: 0, key: 'x' }) as Buffer), raw: false });
    f.write(replyFrom(await f.read(MSG), HV_S_OK));
    expect(ids).toEqual([2]);
    expect(channel.pending).toBe(0);
  });
});
