import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it, vi } from 'vitest';
import type { RunOptions, RunResult, Runner } from '../common/os/run.js';
import { getIpInfo, type IpInfoOptions, type IpInfoSys } from './ip-info.js';
import type { InterfaceTable } from './net-addrs.js';
import type { SysfsReader } from './net-links.js';

const result = (over: Partial<RunResult> = {}): RunResult => ({ code: 0, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false, ms: 1, ...over });

const ip = (address: string, prefix: number, mac: string, internal = false): NetworkInterfaceInfo => {
  const v6 = address.includes(':');
  const mask = v6 ? maskText6(prefix) : maskText4(prefix);
  return v6
    ? { address, netmask: mask, family: 'IPv6', mac, internal, cidr: `${address}/${prefix}`, scopeid: 0 }
    : { address, netmask: mask, family: 'IPv4', mac, internal, cidr: `${address}/${prefix}` };
};
const maskText4 = (p: number) => [0, 8, 16, 24].map((s) => (p - s >= 8 ? 255 : p - s <= 0 ? 0 : (0xff << (8 - (p - s))) & 0xff)).join('.');
const maskText6 = (p: number) => (p === 64 ? 'ffff:ffff:ffff:ffff::' : p === 128 ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : 'ffff:ffff:ffff::');

/** A Runner that answers from a table of recorded outputs keyed by the full command line, and records every call. */
function recorded(outputs: Record<string, Partial<RunResult>>) {
  const calls: { cmd: string; opts?: RunOptions }[] = [];
  const run: Runner = async (file, args, opts) => {
    const cmd = [file, ...args].join(' ');
    calls.push({ cmd, opts });
    const out = outputs[cmd];
    return out ? result(out) : result({ code: null, error: 'ENOENT' });
  };
  return { run, calls };
}

const log = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn() });

// ---------------------------------------------------------------- Linux

const MAC = '00:0d:3a:aa:bb:01';
const LINUX_TABLE: InterfaceTable = {
  lo: [ip('127.0.0.1', 8, '00:00:00:00:00:00', true), ip('::1', 128, '00:00:00:00:00:00', true)],
  eth0: [ip('10.0.0.4', 24, MAC), ip('2001:db8::4', 64, MAC), ip('fe80::20d:3aff:feaa:bb01', 64, MAC)],
  'eth0:1': [ip('10.0.0.5', 24, '00:00:00:00:00:00')],
  eth10: [ip('10.10.0.4', 16, '00:0d:3a:aa:bb:10')],
};
// Azure accelerated networking: enP1s1 is eth0's VF, same MAC, no address, listed first.
const LINUX_SYSFS: SysfsReader = {
  readdir: () => ['lo', 'enP1s1', 'eth0', 'eth10'],
  readFile: (p) =>
    ({
      '/sys/class/net/lo/address': '00:00:00:00:00:00\n',
      '/sys/class/net/enP1s1/address': `${MAC}\n`,
      '/sys/class/net/eth0/address': `${MAC}\n`,
      '/sys/class/net/eth10/address': '00:0d:3a:aa:bb:10\n',
    })[p],
  readlink: (p) => (p.endsWith('/eth0/device/driver') || p.endsWith('/eth10/device/driver') ? '../../bus/vmbus/drivers/hv_netvsc' : undefined),
  exists: (p) => p === '/sys/class/net/enP1s1/master',
};
const LINUX_OUTPUTS: Record<string, Partial<RunResult>> = {
  '/usr/sbin/ip -j -4 route show default': {
    stdout: '[{"dst":"default","gateway":"10.10.0.1","dev":"eth10","protocol":"dhcp","metric":200,"flags":[]},{"dst":"default","gateway":"10.0.0.1","dev":"eth0","protocol":"dhcp","prefsrc":"10.0.0.4","metric":100,"flags":[]}]\n',
  },
  '/usr/sbin/ip -j -6 route show default': { stdout: '[{"dst":"default","gateway":"fe80::1234:5678:9abc:def0","dev":"eth0","protocol":"ra","metric":1024,"flags":[],"pref":"medium"}]\n' },
  // No final newline: the C daemon crashed on that (F23).
  '/usr/libexec/hypervkvpd/hv_get_dns_info eth0': { stdout: '168.63.129.16\n2001:db8::53' },
  '/usr/libexec/hypervkvpd/hv_get_dhcp_info eth0': { stdout: 'Enabled\n' },
};
const linuxSys: Partial<IpInfoSys> = { networkInterfaces: () => LINUX_TABLE, sysfs: LINUX_SYSFS, ipPath: '/usr/sbin/ip' };

function linuxCtx(outputs = LINUX_OUTPUTS, sys: Partial<IpInfoSys> = {}) {
  const r = recorded(outputs);
  const l = log();
  const ctx: IpInfoOptions = { flavor: 'linux', helperDir: '/usr/libexec/hypervkvpd', configDir: '/var/lib/hyperv', run: r.run, log: l, sys: { ...linuxSys, ...sys } };
  return { ctx, calls: r.calls, log: l };
}

describe('getIpInfo, Linux', () => {
  it('answers with the Linux formats: ip/subnet joined, gateways and DNS each ending in ";"', async () => {
    const { ctx, log } = linuxCtx();
    expect(await getIpInfo({ adapterId: '00:0D:3A:AA:BB:01', addrFamily: 0 }, ctx)).toEqual({
      adapterId: '00:0D:3A:AA:BB:01',
      addrFamily: 3,
      dhcpEnabled: 1,
      // IPv4 first; the label address of eth0 belongs to eth0; eth10's address does not (no prefix match).
      ipAddr: '10.0.0.4;10.0.0.5;2001:db8::4;fe80::20d:3aff:feaa:bb01',
      subNet: '255.255.255.0;255.255.255.0;/64;/64',
      // eth10's default route is not eth0's (pitfall L6).
      gateWay: '10.0.0.1;fe80::1234:5678:9abc:def0;',
      dnsAddr: '168.63.129.16;2001:db8::53;',
    });
    // The VF shares the MAC; the interface with the addresses answers, and the log says so.
    expect(log.info).toHaveBeenCalledWith(expect.objectContaining({ iface: 'eth0', others: ['enP1s1'] }), expect.any(String));
    expect(log.warn).not.toHaveBeenCalled();
  });

  it('runs each helper once per request however many addresses there are (L6), with argv only and a timeout', async () => {
    const { ctx, calls } = linuxCtx();
    await getIpInfo({ adapterId: MAC, addrFamily: 3 }, { ...ctx, timeoutMs: 1234 });
    expect(calls.map((c) => c.cmd).sort()).toEqual([
      '/usr/libexec/hypervkvpd/hv_get_dhcp_info eth0',
      '/usr/libexec/hypervkvpd/hv_get_dns_info eth0',
      '/usr/sbin/ip -j -4 route show default',
      '/usr/sbin/ip -j -6 route show default',
    ]);
    expect(calls.every((c) => c.opts?.timeoutMs === 1234)).toBe(true);
  });

  it('answers {error} for a MAC no interface has, without running any helper', async () => {
    const { ctx, calls } = linuxCtx();
    expect(await getIpInfo({ adapterId: '00:0D:3A:AA:BB:99', addrFamily: 3 }, ctx)).toEqual({ error: expect.stringContaining('00:0D:3A:AA:BB:99') });
    expect(await getIpInfo({ adapterId: '', addrFamily: 3 }, ctx)).toHaveProperty('error');
    expect(calls).toEqual([]);
  });

  it('still answers when helpers and ip fail: empty parts, one warning each', async () => {
    const { ctx, log } = linuxCtx({
      '/usr/libexec/hypervkvpd/hv_get_dhcp_info eth0': { code: null, timedOut: true },
    });
    expect(await getIpInfo({ adapterId: MAC, addrFamily: 3 }, ctx)).toMatchObject({ addrFamily: 3, dhcpEnabled: 0, gateWay: '', dnsAddr: '', ipAddr: expect.stringContaining('10.0.0.4') });
    expect(log.warn.mock.calls.map((c) => (c[0] as { part: string }).part).sort()).toEqual(['dhcp', 'dns', 'gateways']);
  });

  it('answers an interface without addresses with empty lists and addr_family 0', async () => {
    const { ctx } = linuxCtx(LINUX_OUTPUTS, { networkInterfaces: () => ({}) });
    expect(await getIpInfo({ adapterId: MAC, addrFamily: 3 }, ctx)).toMatchObject({ addrFamily: 0, ipAddr: '', subNet: '', gateWay: '10.0.0.1;fe80::1234:5678:9abc:def0;' });
  });

  it('cuts ip_addr and sub_net at the same whole item when they overflow, and logs it', async () => {
    const many = Array.from({ length: 80 }, (_, n) => ip(`2001:db8:0:0:ffff:ffff:ffff:${n.toString(16)}`, 64, MAC));
    const { ctx, log } = linuxCtx(LINUX_OUTPUTS, { networkInterfaces: () => ({ eth0: [ip('10.0.0.4', 24, MAC), ...many] }) });
    const r = (await getIpInfo({ adapterId: MAC, addrFamily: 3 }, ctx)) as { ipAddr: string; subNet: string; addrFamily: number };
    const ips = r.ipAddr.split(';');
    expect(r.ipAddr.length).toBeLessThanOrEqual(1023);
    expect(ips.length).toBeLessThan(81);
    expect(r.subNet.split(';')).toHaveLength(ips.length);
    expect(ips.every((a) => a === '10.0.0.4' || many.some((m) => m.address === a))).toBe(true);
    expect(log.warn).toHaveBeenCalledWith(expect.objectContaining({ dropped: { addresses: 81 - ips.length, gateways: 0, dns: 0 } }), expect.any(String));
  });

  it('cuts a gateway list at 511 units after a whole item', async () => {
    const routes = Array.from({ length: 40 }, (_, n) => ({ dst: 'default', gateway: `2001:db8:ffff:ffff:ffff:ffff:ffff:${n.toString(16)}`, dev: 'eth0', flags: [] }));
    const { ctx } = linuxCtx({ ...LINUX_OUTPUTS, '/usr/sbin/ip -j -6 route show default': { stdout: JSON.stringify(routes) } });
    const r = (await getIpInfo({ adapterId: MAC, addrFamily: 3 }, ctx)) as { gateWay: string };
    expect(r.gateWay.length).toBeLessThanOrEqual(511);
    expect(r.gateWay.endsWith(';')).toBe(true);
    expect(r.gateWay.split(';').filter(Boolean).every((g) => g === '10.0.0.1' || routes.some((x) => x.gateway === g))).toBe(true);
  });
});

// ---------------------------------------------------------------- FreeBSD (recorded outputs only)

const HN = '00:15:5d:aa:bb:01';
// `ifconfig -a` after hyperv_vfup in non-transparent VF mode (see net-links.test.ts); written from the ifconfig(8) format.
const IFCONFIG = `hn0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tether ${HN}
\tinet6 fe80::215:5dff:feaa:bb01%hn0 prefixlen 64 scopeid 0x1
mce0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tether ${HN}
\thwaddr 00:0d:3a:00:00:99
lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384
\tinet 127.0.0.1 netmask 0xff000000
\tgroups: lo
lagg0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tether ${HN}
\tinet 10.0.0.5 netmask 0xffffff00 broadcast 10.0.0.255
\tlaggproto failover lagghash l2,l3,l4
\tlaggport: hn0 flags=5<MASTER,ACTIVE>
\tlaggport: mce0 flags=0<>
\tgroups: lagg
hn1: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tether 00:15:5d:aa:bb:02
\tinet 10.2.0.5 netmask 0xffffff00 broadcast 10.2.0.255
\tinet6 fe80::215:5dff:feaa:bb02%hn1 prefixlen 64 scopeid 0x4
\tinet6 2001:db8:2::5 prefixlen 64
`;
const rt = (destination: string, gateway: string, iface: string) => ({ destination, gateway, flags: 'UGS', 'interface-name': iface });
const NETSTAT = JSON.stringify({
  statistics: {
    'route-information': {
      'route-table': {
        'rt-family': [
          { 'address-family': 'Internet', 'rt-entry': [rt('default', '10.0.0.1', 'lagg0'), rt('10.0.0.0/24', 'link#5', 'lagg0'), rt('default', '10.2.0.1', 'hn1')] },
          { 'address-family': 'Internet6', 'rt-entry': [rt('default', 'fe80::1%hn1', 'hn1'), rt('::/96', '::1', 'lo0')] },
        ],
      },
    },
  },
});
const FREEBSD_TABLE: InterfaceTable = {
  hn0: [ip('fe80::215:5dff:feaa:bb01', 64, HN)],
  lo0: [ip('127.0.0.1', 8, '00:00:00:00:00:00', true)],
  lagg0: [ip('10.0.0.5', 24, HN)],
  hn1: [ip('10.2.0.5', 24, '00:15:5d:aa:bb:02'), ip('fe80::215:5dff:feaa:bb02', 64, '00:15:5d:aa:bb:02'), ip('2001:db8:2::5', 64, '00:15:5d:aa:bb:02')],
};
const DIR = '/usr/local/libexec/hyperv';
const FREEBSD_OUTPUTS: Record<string, Partial<RunResult>> = {
  '/sbin/ifconfig -a': { stdout: IFCONFIG },
  '/usr/bin/netstat -rn --libxo json': { stdout: NETSTAT },
  [`/bin/sh ${DIR}/hv_get_dns_info`]: { stdout: '10.0.0.2\n10.0.0.3\n' },
  [`/bin/sh ${DIR}/hv_get_dhcp_info lagg0 hn0`]: { stdout: 'Enabled\n' },
  [`/bin/sh ${DIR}/hv_get_dhcp_info hn1`]: { stdout: 'Disabled\n' },
};

function freebsdCtx(outputs = FREEBSD_OUTPUTS, table = FREEBSD_TABLE) {
  const r = recorded(outputs);
  const l = log();
  const ctx: IpInfoOptions = { flavor: 'freebsd', helperDir: DIR, configDir: '/var/db/hyperv', run: r.run, log: l, sys: { networkInterfaces: () => table } };
  return { ctx, calls: r.calls, log: l };
}

describe('getIpInfo, FreeBSD', () => {
  it('answers with the FreeBSD formats: every item of every list ends in ";"', async () => {
    const { ctx } = freebsdCtx();
    expect(await getIpInfo({ adapterId: '00:15:5D:AA:BB:02', addrFamily: 1 }, ctx)).toEqual({
      adapterId: '00:15:5D:AA:BB:02',
      // Both families are reported whatever the host asked for, as both C daemons do.
      addrFamily: 3,
      dhcpEnabled: 0,
      ipAddr: '10.2.0.5;fe80::215:5dff:feaa:bb02;2001:db8:2::5;',
      subNet: '255.255.255.0;/64;/64;',
      gateWay: '10.2.0.1;fe80::1;',
      dnsAddr: '10.0.0.2;10.0.0.3;',
    });
  });

  it('lagg in non-transparent VF mode: the lagg answers and the DHCP helper hears about lagg0 and hn0', async () => {
    const { ctx, calls, log } = freebsdCtx();
    expect(await getIpInfo({ adapterId: '00:15:5D:AA:BB:01', addrFamily: 3 }, ctx)).toEqual({
      adapterId: '00:15:5D:AA:BB:01',
      addrFamily: 1,
      dhcpEnabled: 1,
      ipAddr: '10.0.0.5;',
      subNet: '255.255.255.0;',
      gateWay: '10.0.0.1;',
      dnsAddr: '10.0.0.2;10.0.0.3;',
    });
    expect(log.info).toHaveBeenCalledWith(expect.objectContaining({ iface: 'lagg0', others: ['hn0', 'mce0'] }), expect.any(String));
    // Helpers run through sh, as the C daemon did, once each; the DNS helper gets no argument.
    expect(calls.map((c) => c.cmd)).toEqual([
      '/sbin/ifconfig -a',
      '/usr/bin/netstat -rn --libxo json',
      `/bin/sh ${DIR}/hv_get_dns_info`,
      `/bin/sh ${DIR}/hv_get_dhcp_info lagg0 hn0`,
    ]);
  });

  it('falls back to the MACs in the address table when ifconfig cannot run', async () => {
    const { '/sbin/ifconfig -a': _gone, ...rest } = FREEBSD_OUTPUTS;
    const { ctx, log } = freebsdCtx(rest);
    expect(await getIpInfo({ adapterId: '00:15:5D:AA:BB:01', addrFamily: 3 }, ctx)).toMatchObject({ ipAddr: '10.0.0.5;', gateWay: '10.0.0.1;' });
    expect(log.warn).toHaveBeenCalledWith(expect.objectContaining({ part: 'links' }), expect.any(String));
  });

  it('answers {error} for an unknown MAC', async () => {
    const { ctx } = freebsdCtx();
    expect(await getIpInfo({ adapterId: '00:15:5D:AA:BB:0', addrFamily: 3 }, ctx)).toHaveProperty('error');
  });
});

describe('getIpInfo, failures of the machine', () => {
  it('uses the MACs libuv reports when /sys/class/net cannot be read', async () => {
    const empty: SysfsReader = { readdir: () => [], readFile: () => undefined, readlink: () => undefined, exists: () => false };
    const { ctx, log } = linuxCtx(LINUX_OUTPUTS, { sysfs: empty });
    expect(await getIpInfo({ adapterId: MAC, addrFamily: 3 }, ctx)).toMatchObject({ ipAddr: '10.0.0.4;10.0.0.5;2001:db8::4;fe80::20d:3aff:feaa:bb01' });
    expect(log.warn).toHaveBeenCalledWith(expect.objectContaining({ part: 'links' }), expect.any(String));
  });

  it('answers {error} instead of throwing when the interface table cannot be read', async () => {
    const { ctx } = linuxCtx(LINUX_OUTPUTS, {
      networkInterfaces: () => {
        throw new Error('uv_interface_addresses returned Unknown system error -24');
      },
    });
    expect(await getIpInfo({ adapterId: MAC, addrFamily: 3 }, ctx)).toEqual({ error: expect.stringContaining('system error -24') });
  });
});
