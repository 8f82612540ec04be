import { readFileSync } from 'node:fs';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it, vi } from 'vitest';
import { createIntrinsics, hvguestVersion, INTRINSIC_KEYS, type IntrinsicsSys } from './intrinsics.js';
import type { InterfaceTable } from './net-addrs.js';

const v4 = (address: string, mac: string, internal = false): NetworkInterfaceInfo => ({
  address,
  netmask: internal ? '255.0.0.0' : '255.255.255.0',
  family: 'IPv4',
  mac,
  internal,
  cidr: `${address}/24`,
});
const v6 = (address: string, mac: string, internal = false): NetworkInterfaceInfo => ({
  address,
  netmask: internal ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : 'ffff:ffff:ffff:ffff::',
  family: 'IPv6',
  mac,
  internal,
  cidr: `${address}/64`,
  scopeid: 0,
});

const MAC0 = '00:15:5d:00:00:01';
const MAC1 = '00:15:5d:00:00:02';
const ZERO = '00:00:00:00:00:00';

const freebsdTable: InterfaceTable = {
  hn0: [v4('10.0.0.4', MAC0), v6('fe80::215:5dff:fe00:1', MAC0), v6('2001:db8::4', MAC0)],
  lo0: [v4('127.0.0.1', ZERO, true), v6('::1', ZERO, true), v6('fe80::1', ZERO, true)],
  hn1: [v4('192.168.1.9', MAC1)],
};
const linuxTable: InterfaceTable = {
  lo: [v4('127.0.0.1', ZERO, true), v6('::1', ZERO, true)],
  eth0: [v4('10.0.0.4', MAC0), v6('2001:db8::4', MAC0), v6('fe80::215:5dff:fe00:1', MAC0)],
  'eth0:1': [v4('10.0.0.5', ZERO)],
  eth1: [v4('192.168.1.9', MAC1)],
};

/** Fixed facts for the keys a test does not look at; tests override what they check. */
function sys(over: Partial<IntrinsicsSys> = {}): Partial<IntrinsicsSys> {
  return {
    hostname: () => 'vm1',
    canonicalName: async () => 'vm1.contoso.internal',
    packageVersion: () => '9.8.7',
    now: () => 0,
    networkInterfaces: () => ({}),
    ifIndex: () => undefined,
    osFacts: () => ({ sysname: 'Linux', release: '6.1.0-1', machine: 'x86_64', readFile: () => undefined }),
    ...over,
  };
}

async function all(i: { at(n: number): Promise<{ key: string; value: string } | undefined> }) {
  const out: [string, string][] = [];
  for (let n = 0; ; n++) {
    const kv = await i.at(n);
    if (!kv) return out;
    out.push([kv.key, kv.value]);
  }
}

describe('createIntrinsics, FreeBSD', () => {
  const facts = { sysname: 'FreeBSD', release: '14.1-RELEASE-p3', machine: 'amd64', readFile: () => undefined };

  it('answers the ten keys in the spec order with FreeBSD formats', async () => {
    const i = createIntrinsics({ flavor: 'freebsd', sys: { ...sys(), networkInterfaces: () => freebsdTable, osFacts: () => facts } });
    expect(await all(i)).toEqual([
      ['FullyQualifiedDomainName', 'vm1.contoso.internal'],
      ['IntegrationServicesVersion', 'hvguest 9.8.7'],
      // Each item followed by ";"; lo0 left out and fe80:: left out (F24).
      ['NetworkAddressIPv4', '10.0.0.4;192.168.1.9;'],
      ['NetworkAddressIPv6', '2001:db8::4;'],
      ['OSBuildNumber', '14.1'],
      ['OSName', 'FreeBSD'],
      ['OSMajorVersion', '14'],
      ['OSMinorVersion', '1'],
      ['OSVersion', '14.1'],
      ['ProcessorArchitecture', 'amd64'],
    ]);
  });

  it('lists link-local IPv6 addresses when linkLocal asks for them', async () => {
    const i = createIntrinsics({ flavor: 'freebsd', linkLocal: true, sys: { ...sys(), networkInterfaces: () => freebsdTable, osFacts: () => facts } });
    expect(await i.at(3)).toEqual({ key: 'NetworkAddressIPv6', value: 'fe80::215:5dff:fe00:1;2001:db8::4;' });
  });

  it('ignores the kernel version callback: the FreeBSD kernel sends none', async () => {
    const i = createIntrinsics({ flavor: 'freebsd', version: () => '3.1', sys: sys() });
    expect((await i.at(1))?.value).toBe('hvguest 9.8.7');
  });
});

describe('createIntrinsics, Linux', () => {
  const facts = {
    sysname: 'Linux',
    release: '6.8.0-31-generic',
    machine: 'x86_64',
    readFile: (p: string) => (p === '/etc/os-release' ? 'NAME="Ubuntu"\nVERSION_ID="24.04"\n' : undefined),
  };

  it('answers the ten keys in the spec order with Linux formats', async () => {
    const i = createIntrinsics({ flavor: 'linux', version: () => '3.1', sys: { ...sys(), networkInterfaces: () => linuxTable, osFacts: () => facts } });
    expect(await all(i)).toEqual([
      ['FullyQualifiedDomainName', 'vm1.contoso.internal'],
      ['IntegrationServicesVersion', '3.1'],
      // Joined by ";", no loopback, label addresses ("eth0:1") included.
      ['NetworkAddressIPv4', '10.0.0.4;10.0.0.5;192.168.1.9'],
      // Link-local included, as the Linux C daemon does.
      ['NetworkAddressIPv6', '2001:db8::4;fe80::215:5dff:fe00:1'],
      ['OSBuildNumber', '6.8.0-31-generic'],
      ['OSName', 'Ubuntu'],
      ['OSMajorVersion', '24.04'],
      ['OSMinorVersion', ''],
      ['OSVersion', '6.8.0'],
      ['ProcessorArchitecture', 'x86_64'],
    ]);
  });

  it('says "Unknown version" until the kernel registration reply gives one', async () => {
    let version: string | undefined;
    const i = createIntrinsics({ flavor: 'linux', version: () => version, sys: sys() });
    expect((await i.at(1))?.value).toBe('Unknown version');
    version = '3.1';
    expect((await i.at(1))?.value).toBe('3.1');
  });
});

describe('address order', () => {
  // os.networkInterfaces() order: interfaces with IPv4 first (lo, eth0), then
  // veth1, which has only a link-local IPv6 address but the lower index.
  const table: InterfaceTable = {
    lo: [v4('127.0.0.1', ZERO, true), v6('::1', ZERO, true)],
    eth0: [v4('192.0.2.10', MAC0), v4('198.51.100.7', MAC0), v6('2001:db8::10', MAC0), v6('fe80::215:5dff:fe00:1', MAC0)],
    veth1: [v6('fe80::215:5dff:fe00:2', MAC1)],
    'eth0:1': [v4('192.0.2.11', ZERO)],
  };
  const index: Record<string, number> = { lo: 1, veth1: 2, eth0: 3 };

  it('lists each family by interface index, as the kernel dumps it and the C daemon reports it (docs/compatibility.md)', async () => {
    const i = createIntrinsics({ flavor: 'linux', sys: { ...sys(), networkInterfaces: () => table, ifIndex: (n) => index[n] } });
    // Label addresses ("eth0:1") belong to their device, so they sort with eth0 and keep their place after its own.
    expect((await i.at(2))?.value).toBe('192.0.2.10;198.51.100.7;192.0.2.11');
    expect((await i.at(3))?.value).toBe('fe80::215:5dff:fe00:2;2001:db8::10;fe80::215:5dff:fe00:1');
  });

  it('keeps the order os.networkInterfaces() gave where no index is known', async () => {
    const i = createIntrinsics({ flavor: 'linux', sys: { ...sys(), networkInterfaces: () => table, ifIndex: (n) => (n === 'veth1' ? 2 : undefined) } });
    expect((await i.at(3))?.value).toBe('fe80::215:5dff:fe00:2;2001:db8::10;fe80::215:5dff:fe00:1');
    const none = createIntrinsics({ flavor: 'linux', sys: { ...sys(), networkInterfaces: () => table } });
    expect((await none.at(3))?.value).toBe('2001:db8::10;fe80::215:5dff:fe00:1;fe80::215:5dff:fe00:2');
  });
});

describe('createIntrinsics, both flavors', () => {
  it('has nothing outside index 0..9', async () => {
    const i = createIntrinsics({ flavor: 'linux', sys: sys() });
    for (const n of [10, 11, -1, 1.5, NaN]) expect(await i.at(n)).toBeUndefined();
    expect(INTRINSIC_KEYS).toHaveLength(10);
  });

  it('reads addresses fresh on every request (P1: an address that appears is reported at once)', async () => {
    let table: InterfaceTable = { lo: [v4('127.0.0.1', ZERO, true)] };
    const i = createIntrinsics({ flavor: 'linux', sys: { ...sys(), networkInterfaces: () => table } });
    expect((await i.at(2))?.value).toBe('');
    table = { eth0: [v4('10.0.0.7', MAC0)] };
    expect((await i.at(2))?.value).toBe('10.0.0.7');
  });

  it('computes the OS values once', async () => {
    const osFacts = vi.fn(() => ({ sysname: 'FreeBSD', release: '14.1-RELEASE', machine: 'arm64', readFile: () => undefined }));
    const i = createIntrinsics({ flavor: 'freebsd', sys: { ...sys(), osFacts } });
    for (const n of [4, 5, 6, 7, 8, 9, 4]) await i.at(n);
    expect(osFacts).toHaveBeenCalledTimes(1);
  });

  it('cuts a long address list after a whole item within 1022 UTF-16 units and 2047 bytes', async () => {
    const many: InterfaceTable = {};
    for (let n = 0; n < 200; n++) many[`eth${n}`] = [v4(`10.0.${Math.floor(n / 250)}.${n}`, MAC0), v6(`2001:db8:ffff:ffff:ffff:ffff:ffff:${n.toString(16)}`, MAC0)];
    for (const flavor of ['linux', 'freebsd'] as const) {
      const i = createIntrinsics({ flavor, sys: { ...sys(), networkInterfaces: () => many } });
      for (const n of [2, 3]) {
        const value = (await i.at(n))!.value;
        expect(value.length).toBeLessThanOrEqual(1022);
        expect(Buffer.byteLength(value)).toBeLessThanOrEqual(2047);
        const items = value.split(';').filter(Boolean);
        // Every item is a whole address from the table, in order.
        const all = Object.values(many).map((e) => e![n === 2 ? 0 : 1]!.address);
        expect(items).toEqual(all.slice(0, items.length));
        expect(items.length).toBeLessThan(all.length);
        if (flavor === 'freebsd') expect(value.endsWith(';')).toBe(true);
        else expect(value.endsWith(';')).toBe(false);
      }
    }
  });

  it('reports the hostname, not an error text, when there is no canonical name (F25), and warns once', async () => {
    const warn = vi.fn();
    const debug = vi.fn();
    let t = 0;
    const i = createIntrinsics({ flavor: 'freebsd', log: { warn, debug }, fqdnTtlMs: 10, sys: { ...sys(), now: () => t, canonicalName: async () => undefined } });
    expect(await i.at(0)).toEqual({ key: 'FullyQualifiedDomainName', value: 'vm1' });
    t = 100;
    await i.at(0);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(debug).toHaveBeenCalledTimes(1);
  });

  it('fits every value into the field (a huge os-release NAME is cut)', async () => {
    const osFacts = () => ({ sysname: 'Linux', release: '6.1', machine: 'x86_64', readFile: (p: string) => (p === '/etc/os-release' ? `NAME=${'n'.repeat(3000)}\n` : undefined) });
    const i = createIntrinsics({ flavor: 'linux', sys: { ...sys(), osFacts } });
    expect((await i.at(5))!.value).toBe('n'.repeat(1022));
  });
});

describe('hvguestVersion', () => {
  it('is the version in package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(hvguestVersion()).toBe(pkg.version);
  });
});

describe('createIntrinsics, failures of the machine', () => {
  it('answers an empty value and warns when a fact cannot be read, so the host walk goes on', async () => {
    const warn = vi.fn();
    const i = createIntrinsics({
      flavor: 'linux',
      log: { warn, debug: vi.fn() },
      sys: sys({
        networkInterfaces: () => {
          throw new Error('EMFILE');
        },
      }),
    });
    expect(await i.at(2)).toEqual({ key: 'NetworkAddressIPv4', value: '' });
    expect(await i.at(9)).toEqual({ key: 'ProcessorArchitecture', value: 'x86_64' });
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ key: 'NetworkAddressIPv4', err: 'EMFILE' }), expect.any(String));
  });
});
