import { describe, expect, it, vi } from 'vitest';
import { DeviceError, type Device } from '../common/device/types.js';
import { HV_E_FAIL, HV_S_CONT, HV_S_OK, ICMSGTYPE_KVPEXCHANGE, KVP_OP_GET, KVP_OP_REGISTER, KVP_OP_SET, REG_SZ } from '../common/wire/constants.js';
import { decodeKvp, encodeKvp, readExchange, readVariant, replyFrom, type KvpMessage } from '../common/wire/kvp.js';
import type { Decoded } from '../common/wire/layout.js';
import { cstringBytes } from '../common/wire/strings.js';
import { encodeIcPacket } from '../common/wire/host.js';
import { serveMessages } from '../test/lib/sim-daemon.js';
import { FreebsdKvpDriver } from './kvp-freebsd.js';
import type { SimulatorOptions } from './host-api.js';
import { SIM_POLLIN, SimErrno } from './node.js';
import { bareEnv, expectKernelTimeout, fakeTimersPerTest, openExclusive, openRegistered, simulatorNode, startDaemon } from '../test/lib/sim-helpers.js';

const MSG = 7430;

const setup = (extra: Partial<SimulatorOptions> = {}) => simulatorNode('freebsd', 'hv_kvp_dev', 'kvp', extra);

const text = (b: Buffer): string => cstringBytes(b).toString('utf8');
const msgOf = (b: Buffer): KvpMessage => decodeKvp(b, 'freebsd') as KvpMessage;

/** A registered daemon answering with `handler`; records what it read. */
const daemon = (dev: Device, handler: (m: KvpMessage) => Buffer | undefined) => startDaemon(dev, serveMessages, (b: Buffer) => handler(msgOf(b)));

/** A GET/ENUMERATE reply: status 0, key and value as NUL-terminated UTF-8. */
function exchangeReply(variant: 'kvp_get' | 'kvp_enum_data', key: string, value: string): Buffer {
  const data: Decoded = { key: Buffer.from(key), value: Buffer.from(value) };
  return encodeKvp('freebsd', { error: HV_S_OK }, variant, { data });
}

fakeTimersPerTest();

describe('FreeBSD hv_kvp_dev: open and registration', () => {
  it('a second open fails with the negative -EBUSY (F1); the Device maps it to EBUSY', async () => {
    const { node, dev } = setup();
    const first = openExclusive(node, '-EBUSY');
    await expect(dev().open()).rejects.toMatchObject({ code: 'EBUSY', op: 'open' });
    first.release();
    expect(() => node.open({ pid: 3 }).release()).not.toThrow();
  });

  it('read before registration fails EPERM; a first write other than op 4 fails EINVAL', async () => {
    const { node } = setup();
    const f = node.open({ pid: 1 });
    await expect(f.read(MSG)).rejects.toMatchObject({ errno: 'EPERM' });
    expect(() => f.write(encodeKvp('freebsd', { operation: KVP_OP_GET }))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => f.write(Buffer.from([KVP_OP_REGISTER]))).not.toThrow(); // a short write registers too
    expect(f.write(Buffer.alloc(8000, KVP_OP_REGISTER))).toBe(MSG); // at most one message is taken
  });

  it('close drops the registration: the next open must register again', async () => {
    const { node } = setup();
    const f = node.open({ pid: 1 });
    f.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    f.release();
    const g = node.open({ pid: 2 });
    await expect(g.read(MSG)).rejects.toMatchObject({ errno: 'EPERM' });
  });
});

describe('FreeBSD hv_kvp_dev: requests', () => {
  it('GET: the daemon sees only the key (UTF-8 size with NUL, value_size 0); the host gets the value in UTF-16', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), () => exchangeReply('kvp_get', 'ignored', 'Blue'));
    const r = await host.kvp({ op: 'get', pool: 1, key: 'Color' });
    expect(r).toMatchObject({ outcome: 'answered', status: HV_S_OK, key: 'Color', value: 'Blue', valueSize: 10, valueType: REG_SZ });
    const req = msgOf(d.seen[0]!);
    expect(req).toMatchObject({ operation: KVP_OP_GET, pool: 1 });
    const ex = readExchange(req, 'kvp_get');
    expect([text(ex.key), ex.keySize, ex.valueSize, ex.valueType]).toEqual(['Color', 6, 0, 0]);
    await d.stop();
  });

  it('SET: value_type is not copied, U32 is rendered signed and U64 unsigned', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), (m) => replyFrom(m.raw, HV_S_OK));
    await host.kvp({ op: 'set', pool: 0, key: 'k', value: 0xffffffff, valueType: 'u32' });
    await host.kvp({ op: 'set', pool: 0, key: 'k', value: 2n ** 64n - 1n });
    await host.kvp({ op: 'set', pool: 0, key: 'Color', value: 'Grün' });
    const [u32, u64, sz] = d.seen.map((b) => readExchange(msgOf(b), 'kvp_set'));
    expect([text(u32!.value), u32!.valueSize, u32!.valueType]).toEqual(['-1', 3, 0]);
    expect([text(u64!.value), u64!.valueSize]).toEqual(['18446744073709551615', 21]);
    // "Grün": the host's 10-byte size read as 10 units, converted (trailing NULs included) and halved (F5).
    expect([text(sz!.value), sz!.valueSize, text(sz!.key), sz!.keySize]).toEqual(['Grün', 5, 'Color', 6]);
    expect(msgOf(d.seen[2]!).operation).toBe(KVP_OP_SET);
    await d.stop();
  });

  it('non-ASCII key: key_size is the halved byte count, not the UTF-8 size (F5)', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), (m) => replyFrom(m.raw, HV_S_OK));
    await host.kvp({ op: 'delete', pool: 0, key: 'éé' });
    const del = readVariant(msgOf(d.seen[0]!), 'kvp_delete');
    // Host size 6 → 6 units: é é NUL NUL NUL NUL → 4 + 4 = 8 bytes → 4, where the UTF-8 size is 5.
    expect([text(del.key as Buffer), del.key_size]).toEqual(['éé', 4]);
    await d.stop();
  });

  it('ENUMERATE: only the index goes down; sizes come back as 2*(units+1) with REG_SZ', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), () => exchangeReply('kvp_enum_data', 'Ключ', '值'));
    const r = await host.kvp({ op: 'enum', pool: 2, index: 7 });
    expect(r).toMatchObject({ key: 'Ключ', value: '值', keySize: 10, valueSize: 4, valueType: REG_SZ });
    const req = readExchange(msgOf(d.seen[0]!), 'kvp_enum_data');
    expect([req.index, req.keySize, req.key.every((x) => x === 0)]).toEqual([7, 0, true]);
    await d.stop();
  });

  it('an over-long value is announced with its untruncated size (F7) and cut at 1022 units', async () => {
    const { host, dev } = setup();
    const long = 'v'.repeat(1500);
    const d = await daemon(dev(), (m) => {
      const out = encodeKvp('freebsd', { error: 0 });
      Buffer.from(long).copy(out, 532, 0, 2047); // enum value field, NUL-terminated by the zero at the end
      return m.operation === 3 ? out : undefined;
    });
    const r = await host.kvp({ op: 'enum', pool: 1, index: 0 });
    expect(r.valueSize).toBe(2 * (1500 + 1));
    expect(r.value).toBe('v'.repeat(1022));
    await d.stop();
  });

  it('the daemon status passes through unchanged, and the body is converted whatever the status', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), (m) => replyFrom(m.raw, HV_S_CONT));
    expect(await host.kvp({ op: 'get', pool: 0, key: 'missing' })).toMatchObject({ status: HV_S_CONT, outcome: 'answered' });
    await d.stop();
  });

  it('GET_IP_INFO: adapter id and family down; all strings, dhcp and family back', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), () =>
      encodeKvp('freebsd', { error: 0 }, 'kvp_ip_val', {
        adapter_id: Buffer.from('00:15:5D:00:00:01'),
        addr_family: 1,
        dhcp_enabled: 1,
        ip_addr: Buffer.from('10.0.0.5;'),
        sub_net: Buffer.from('255.255.255.0;'),
        gate_way: Buffer.from('10.0.0.1;'),
        dns_addr: Buffer.from('10.0.0.2;'),
      }),
    );
    const r = await host.kvp({ op: 'ipinfo', mac: '00:15:5D:00:00:01', addrFamily: 3 });
    expect(r.ipInfo).toEqual({ adapterId: '00:15:5D:00:00:01', addrFamily: 1, dhcpEnabled: 1, ipAddr: '10.0.0.5;', subNet: '255.255.255.0;', gateWay: '10.0.0.1;', dnsAddr: '10.0.0.2;' });
    const ip = readVariant(msgOf(d.seen[0]!), 'kvp_ip_val');
    expect([text(ip.adapter_id as Buffer), ip.addr_family, (ip.ip_addr as Buffer).every((x) => x === 0)]).toEqual(['00:15:5D:00:00:01', 3, true]);
    await d.stop();
  });

  it('SET_IP_INFO: strings cut at 1024/512 bytes; the adapter GUID becomes the hn(4) name when it matches', async () => {
    const guid = '5b1e1e5f-2f2a-4c9e-8f7e-0123456789ab';
    const { host, dev } = setup({ hnDevices: [{ guid: guid.toUpperCase(), ifname: 'hn3' }] });
    const d = await daemon(dev(), (m) => replyFrom(m.raw, HV_S_OK));
    const base = { op: 'setip' as const, ip: 'é'.repeat(600), subnet: '255.0.0.0', gateway: 'g'.repeat(511), dns: '1.1.1.1', dhcp: true };
    await host.kvp({ ...base, adapterId: `{${guid}}` });
    await host.kvp({ ...base, adapterId: `{${guid.toUpperCase()}}` });
    const [hit, miss] = d.seen.map((b) => readVariant(msgOf(b), 'kvp_ip_val'));
    expect(text(hit!.adapter_id as Buffer)).toBe('hn3');
    expect(text(miss!.adapter_id as Buffer)).toBe(`{${guid.toUpperCase()}}`); // case-sensitive compare
    expect(text(hit!.ip_addr as Buffer)).toBe('é'.repeat(512)); // 1024 bytes
    expect([text(hit!.gate_way as Buffer).length, hit!.dhcp_enabled]).toEqual([511, 1]);
    await d.stop();
  });
});

describe('FreeBSD hv_kvp_dev: device semantics', () => {
  it('poll reports POLLIN only while a request is posted and unanswered', async () => {
    const { host, node } = setup();
    const f = node.open({ pid: 1 });
    f.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    expect(f.poll()).toBe(0);
    const changes = vi.fn();
    f.onPollChange(changes);
    const p = host.kvp({ op: 'get', pool: 0, key: 'a' });
    await vi.advanceTimersByTimeAsync(0);
    expect(f.poll()).toBe(SIM_POLLIN);
    expect(changes).toHaveBeenCalled();
    const req = await f.read(MSG);
    expect(f.poll()).toBe(SIM_POLLIN); // still busy until the reply is written
    f.write(replyFrom(req, HV_S_OK));
    expect(f.poll()).toBe(0);
    await p;
  });

  it('an interrupted read fails EINTR and takes no post: the request goes to the next read', async () => {
    const { host, node } = setup();
    const f = node.open({ pid: 1 });
    f.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    const ac = new AbortController();
    const blocked = f.read(MSG, ac.signal);
    ac.abort();
    await expect(blocked).rejects.toMatchObject({ errno: 'EINTR' });
    const p = host.kvp({ op: 'get', pool: 0, key: 'a' });
    const req = await f.read(MSG);
    expect(decodeKvp(req, 'freebsd')).toMatchObject({ operation: KVP_OP_GET });
    f.write(replyFrom(req, HV_S_OK));
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_OK });
  });

  it('a read blocks until a request is posted and returns min(count, 7430) bytes', async () => {
    const { host, node } = setup();
    const f = node.open({ pid: 1 });
    f.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    const read = f.read(100_000);
    let got: Buffer | undefined;
    void read.then((b) => (got = b));
    await vi.advanceTimersByTimeAsync(1000);
    expect(got).toBeUndefined();
    const p = host.kvp({ op: 'get', pool: 0, key: 'a' });
    expect((await read).length).toBe(MSG);
    f.write(replyFrom(got!, HV_S_OK));
    await p;
    const q = host.kvp({ op: 'get', pool: 0, key: 'b' });
    expect((await f.read(10)).length).toBe(10);
    f.write(replyFrom(Buffer.alloc(MSG), HV_S_OK));
    await q;
  });

  it('host packets stay in the ring until a daemon registers', async () => {
    const { host, dev } = setup();
    const p = host.kvp({ op: 'get', pool: 0, key: 'early' });
    await vi.advanceTimersByTimeAsync(3000);
    expect(host.status().kvp).toMatchObject({ registered: false, outstanding: false });
    const d = await daemon(dev(), (m) => replyFrom(m.raw, HV_S_OK));
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_OK });
    expect(text(readExchange(msgOf(d.seen[0]!), 'kvp_get').key)).toBe('early');
    await d.stop();
  });

  it('no daemon: the host withdraws its request after waitForDaemonMs (no-daemon, HV_E_FAIL)', async () => {
    const { host } = setup();
    const p = host.kvp({ op: 'get', pool: 0, key: 'a' }, { waitForDaemonMs: 2000 });
    await vi.advanceTimersByTimeAsync(1999);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await p).toMatchObject({ outcome: 'no-daemon', status: HV_E_FAIL, ms: 2000 });
  });

  it('a daemon that never answers: HV_E_FAIL after 5 s; its late reply is dropped and the write succeeds', async () => {
    const { host, node } = setup();
    const f = node.open({ pid: 1 });
    f.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    const p = host.kvp({ op: 'get', pool: 0, key: 'slow' });
    const req = await f.read(MSG);
    await expectKernelTimeout(host, 'kvp', p, 5000);
    expect(f.write(replyFrom(req, HV_S_OK))).toBe(MSG);
    // daemon_busy was cleared by that write: the next request reaches the daemon.
    const q = host.kvp({ op: 'get', pool: 0, key: 'next' });
    f.write(replyFrom(await f.read(MSG), HV_S_OK));
    expect(await q).toMatchObject({ outcome: 'answered' });
  });

  it('while daemon_busy is stuck, later requests are not posted and each times out', async () => {
    const { host, node } = setup({ timeouts: { kvp: 1000 } });
    const f = node.open({ pid: 1 });
    f.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    const p = host.kvp({ op: 'get', pool: 0, key: 'one' });
    await f.read(MSG);
    await vi.advanceTimersByTimeAsync(1000);
    expect((await p).outcome).toBe('timeout');
    const q = host.kvp({ op: 'get', pool: 0, key: 'two' });
    const second = f.read(MSG);
    let posted = false;
    void second.then(() => (posted = true), () => {});
    await vi.advanceTimersByTimeAsync(1000);
    expect((await q).outcome).toBe('timeout');
    expect(posted).toBe(false);
    f.release();
  });

  it('close with a request outstanding: the host still waits for the 5 s timeout', async () => {
    const { host, dev } = setup();
    const d = await daemon(dev(), () => undefined);
    const p = host.kvp({ op: 'get', pool: 0, key: 'a' });
    await vi.advanceTimersByTimeAsync(100);
    await d.stop();
    expect(host.status().kvp).toMatchObject({ open: false, registered: false, outstanding: true });
    await vi.advanceTimersByTimeAsync(4899);
    expect(host.status().kvp.outstanding).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(await p).toMatchObject({ outcome: 'timeout', status: HV_E_FAIL });
  });

  it('a post the old daemon never read reaches the next daemon right after it registers (F10)', async () => {
    const { host, node } = setup({ timeouts: { kvp: 1000 } });
    const f = node.open({ pid: 1 });
    f.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    const p = host.kvp({ op: 'get', pool: 0, key: 'lost' });
    await vi.advanceTimersByTimeAsync(0);
    f.release(); // dies before reading
    await vi.advanceTimersByTimeAsync(1000);
    expect((await p).outcome).toBe('timeout');
    const g = node.open({ pid: 2 });
    g.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    // The semaphore still holds the post; the shared buffer now holds the registration message.
    const stale = await g.read(MSG);
    expect(stale[0]).toBe(KVP_OP_REGISTER);
  });

  it('a conversion failure (unknown host op) fails the write with EINVAL, but the host still gets the status', async () => {
    const { channel, env, answers } = bareEnv('freebsd');
    const driver = new FreebsdKvpDriver(env, []);
    const f = driver.nodes[0]!.open({ pid: 1 });
    f.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    const payload = Buffer.alloc(MSG);
    payload[0] = 9;
    channel.send({ id: 1, data: encodeIcPacket({ msgtype: ICMSGTYPE_KVPEXCHANGE }, payload), raw: false });
    const req = await f.read(MSG);
    expect(req[0]).toBe(9);
    expect(() => f.write(replyFrom(req, HV_S_CONT))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(answers).toHaveLength(1);
    expect(answers[0]).toMatchObject({ status: HV_S_CONT, outcome: 'answered' });
  });

  it('raw: exact bytes of any length go down, the reply comes back exactly as written with bytes 0..3 as status', async () => {
    const { host, node } = setup();
    const f = node.open({ pid: 1 });
    f.write(encodeKvp('freebsd', { operation: KVP_OP_REGISTER }));
    const bytes = Buffer.from('0102030405', 'hex');
    const p = host.raw('kvp', bytes);
    expect(await f.read(MSG)).toEqual(bytes);
    const reply = Buffer.concat([Buffer.from([0x03, 0x01, 0x07, 0x80]), Buffer.alloc(8000, 0xaa)]);
    f.write(reply);
    expect(await p).toMatchObject({ outcome: 'answered', status: HV_S_CONT, reply });
  });

  it('removal: the request in progress is dropped, calls fail EBADF/EGONE, open fails until restore; the old file stays dead', async () => {
    const { host, dev } = setup();
    const d = await openRegistered(dev());
    const p = host.kvp({ op: 'get', pool: 0, key: 'a' });
    await vi.advanceTimersByTimeAsync(0);
    host.remove();
    expect(await p).toMatchObject({ outcome: 'dropped' });
    expect((await p).status).toBeUndefined();
    await expect(d.read()).rejects.toMatchObject({ code: 'EBADF' });
    await expect(d.waitReadable()).rejects.toMatchObject({ code: 'EGONE' });
    const other = dev();
    await expect(other.open()).rejects.toMatchObject({ code: 'ENOENT' });
    host.restore();
    await expect(d.write(Buffer.alloc(MSG))).rejects.toMatchObject({ code: 'EBADF' });
    await expect(d.waitReadable()).rejects.toMatchObject({ code: 'EGONE' });
    await openRegistered(other);
    expect(host.status().kvp).toMatchObject({ open: true, registered: true, outstanding: false });
    other.close();
    d.close();
  });

  it('removal fails a read that is still blocked', async () => {
    const { host, dev } = setup();
    const d = await openRegistered(dev());
    const read = d.read();
    host.remove();
    await expect(read).rejects.toBeInstanceOf(DeviceError);
    await expect(read).rejects.toMatchObject({ code: 'EBADF' });
    expect(() => host.nodes[0]!.open({ pid: 1 })).toThrow(SimErrno);
  });
});
