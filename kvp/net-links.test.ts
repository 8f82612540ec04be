import { describe, expect, it } from 'vitest';
import type { IfAddr } from './net-addrs.js';
import { chooseAdapter, linksFromAddrs, linuxLinks, normalizeMac, parseIfconfig, type Link, type SysfsReader } from './net-links.js';

/**
 * FreeBSD `ifconfig -a` in non-transparent VF mode after hyperv_vfup: lagg0
 * carries hn0's IPv4 configuration, hn0 keeps its IPv6 link-local address,
 * mce0 (the VF) has none; all three share the MAC. Written from the
 * ifconfig(8) format; not captured on a live guest.
 */
const IFCONFIG_LAGG = `hn0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=48001b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,LINKSTATE,TXCSUM_IPV6>
\tether 00:15:5d:aa:bb:01
\tinet6 fe80::215:5dff:feaa:bb01%hn0 prefixlen 64 scopeid 0x1
\tmedia: Ethernet autoselect (10Gbase-T <full-duplex>)
\tstatus: active
\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>
mce0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=7e8ef3b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,JUMBO_MTU,VLAN_HWCSUM,TSO4,TSO6,LRO>
\tether 00:15:5d:aa:bb:01
\thwaddr 00:0d:3a:00:00:99
\tmedia: Ethernet autoselect <full-duplex,rxpause,txpause>
\tstatus: active
lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384
\toptions=680003<RXCSUM,TXCSUM,LINKSTATE,RXCSUM_IPV6,TXCSUM_IPV6>
\tinet 127.0.0.1 netmask 0xff000000
\tinet6 ::1 prefixlen 128
\tgroups: lo
lagg0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=48001b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,LINKSTATE,TXCSUM_IPV6>
\tether 00:15:5d:aa:bb:01
\tinet 10.0.0.5 netmask 0xffffff00 broadcast 10.0.0.255
\tlaggproto failover lagghash l2,l3,l4
\tlaggport: hn0 flags=5<MASTER,ACTIVE>
\tlaggport: mce0 flags=0<>
\tgroups: lagg
\tmedia: Ethernet autoselect
\tstatus: active
hn1: flags=8802<BROADCAST,SIMPLEX,MULTICAST> metric 0 mtu 1500
\tether 00:15:5d:aa:bb:02
\tmedia: Ethernet autoselect
\tstatus: no carrier
hn10: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tether 00:15:5d:aa:bb:10
\tinet 10.1.0.5 netmask 0xffffff00 broadcast 10.1.0.255
`;

const addr = (iface: string, address: string, family: 4 | 6 = 4): IfAddr => ({
  iface,
  family,
  address,
  netmask: family === 4 ? '255.255.255.0' : 'ffff:ffff:ffff:ffff::',
  prefixLen: family === 4 ? 24 : 64,
  loopback: false,
  mac: '00:00:00:00:00:00',
});

describe('parseIfconfig', () => {
  it('lists every interface with an ether address, down ones included, and marks lagg, hn and ports', () => {
    expect(parseIfconfig(IFCONFIG_LAGG)).toEqual([
      { name: 'hn0', mac: '00:15:5d:aa:bb:01', aggregate: false, synthetic: true, port: true },
      // The current (ether) address counts, not the factory hwaddr.
      { name: 'mce0', mac: '00:15:5d:aa:bb:01', aggregate: false, synthetic: false, port: true },
      { name: 'lagg0', mac: '00:15:5d:aa:bb:01', aggregate: true, synthetic: false, port: false },
      { name: 'hn1', mac: '00:15:5d:aa:bb:02', aggregate: false, synthetic: true, port: false },
      { name: 'hn10', mac: '00:15:5d:aa:bb:10', aggregate: false, synthetic: true, port: false },
    ]);
  });

  it('gives nothing for empty or foreign text', () => {
    expect(parseIfconfig('')).toEqual([]);
    expect(parseIfconfig('ifconfig: not found\n')).toEqual([]);
  });
});

describe('linuxLinks', () => {
  // Azure accelerated networking: eth0 (hv_netvsc) with its VF enP1s1 enslaved; a bond with a port; lo.
  const tree: Record<string, string> = {
    '/sys/class/net/lo/address': '00:00:00:00:00:00\n',
    '/sys/class/net/eth0/address': '00:0d:3a:aa:bb:01\n',
    '/sys/class/net/enP1s1/address': '00:0d:3a:aa:bb:01\n',
    '/sys/class/net/bond0/address': '00:0d:3a:cc:dd:01\n',
    '/sys/class/net/eth1/address': '00:0d:3a:cc:dd:01\n',
    '/sys/class/net/a-very-long-interface-name/address': '00:0d:3a:ee:ee:ee\n',
  };
  const links: Record<string, string> = {
    '/sys/class/net/eth0/device/driver': '../../../../bus/vmbus/drivers/hv_netvsc',
    '/sys/class/net/enP1s1/device/driver': '../../../../bus/pci/drivers/mlx5_core',
    '/sys/class/net/eth1/device/driver': '../../../../bus/vmbus/drivers/hv_netvsc',
  };
  const dirs = new Set(['/sys/class/net/enP1s1/master', '/sys/class/net/eth1/master', '/sys/class/net/bond0/bonding']);
  const fs: SysfsReader = {
    readdir: () => ['lo', 'eth0', 'enP1s1', 'bond0', 'eth1', 'a-very-long-interface-name', 'gone'],
    readFile: (p) => tree[p],
    readlink: (p) => links[p],
    exists: (p) => dirs.has(p),
  };

  it('reads MACs and roles from sysfs; skips the all-zero loopback MAC and interfaces that vanished', () => {
    expect(linuxLinks(fs)).toEqual([
      { name: 'eth0', mac: '00:0d:3a:aa:bb:01', aggregate: false, synthetic: true, port: false },
      { name: 'enP1s1', mac: '00:0d:3a:aa:bb:01', aggregate: false, synthetic: false, port: true },
      { name: 'bond0', mac: '00:0d:3a:cc:dd:01', aggregate: true, synthetic: false, port: false },
      { name: 'eth1', mac: '00:0d:3a:cc:dd:01', aggregate: false, synthetic: true, port: true },
      { name: 'a-very-long-interface-name', mac: '00:0d:3a:ee:ee:ee', aggregate: false, synthetic: false, port: false },
    ]);
  });
});

describe('chooseAdapter', () => {
  const links = parseIfconfig(IFCONFIG_LAGG);

  it('matches the MAC exactly and case-insensitively; an empty or partial id matches nothing', () => {
    expect(chooseAdapter('00:15:5D:AA:BB:02', links, [])?.chosen.name).toBe('hn1');
    expect(chooseAdapter('00:15:5D:AA:BB:1', links, [])).toBeUndefined();
    expect(chooseAdapter('', links, [])).toBeUndefined();
    expect(chooseAdapter('00:15:5D:AA:BB:99', links, [])).toBeUndefined();
  });

  it('FreeBSD lagg: the lagg holding the IPv4 configuration wins over hn0 (link-local only) and the VF', () => {
    const c = chooseAdapter('00:15:5D:AA:BB:01', links, [addr('lagg0', '10.0.0.5'), addr('hn0', 'fe80::215:5dff:feaa:bb01', 6)]);
    expect(c?.candidates.map((l) => l.name)).toEqual(['lagg0', 'hn0', 'mce0']);
  });

  it('transparent VF mode: hn0 holds the addresses and wins over the VF', () => {
    const c = chooseAdapter('00:15:5d:aa:bb:01', links.filter((l) => l.name !== 'lagg0'), [addr('hn0', '10.0.0.5')]);
    expect(c?.candidates.map((l) => l.name)).toEqual(['hn0', 'mce0']);
  });

  it('no addresses anywhere: the synthetic NIC is preferred over the VF (pitfall L18)', () => {
    const vfFirst: Link[] = [
      { name: 'enP1s1', mac: '00:0d:3a:aa:bb:01', aggregate: false, synthetic: false, port: true },
      { name: 'eth0', mac: '00:0d:3a:aa:bb:01', aggregate: false, synthetic: true, port: false },
    ];
    expect(chooseAdapter('00:0D:3A:AA:BB:01', vfFirst, [])?.chosen.name).toBe('eth0');
  });

  it('an interface with an address wins even over the synthetic one; "hn1" never takes "hn10"\'s addresses', () => {
    const l: Link[] = [
      { name: 'eth0', mac: '00:0d:3a:aa:bb:01', aggregate: false, synthetic: true, port: false },
      { name: 'br0', mac: '00:0d:3a:aa:bb:01', aggregate: true, synthetic: false, port: false },
    ];
    expect(chooseAdapter('00:0d:3a:aa:bb:01', l, [addr('br0', '10.0.0.9')])?.chosen.name).toBe('br0');
    expect(chooseAdapter('00:15:5d:aa:bb:02', links, [addr('hn10', '10.1.0.5')])?.candidates.map((x) => x.name)).toEqual(['hn1']);
  });
});

describe('linksFromAddrs', () => {
  it('builds links from the MACs libuv attached to addresses, skipping loopback and MAC-less labels', () => {
    const a = [
      { ...addr('hn0', '10.0.0.5'), mac: '00:15:5d:aa:bb:01' },
      { ...addr('hn0', 'fe80::1', 6), mac: '00:15:5d:aa:bb:01' },
      { ...addr('lagg0', '10.0.0.6'), mac: '00:15:5d:aa:bb:01' },
      { ...addr('lo0', '127.0.0.1'), loopback: true },
      addr('eth0', '10.0.0.7'),
    ];
    expect(linksFromAddrs(a, 'freebsd')).toEqual([
      { name: 'hn0', mac: '00:15:5d:aa:bb:01', aggregate: false, synthetic: true, port: false },
      { name: 'lagg0', mac: '00:15:5d:aa:bb:01', aggregate: true, synthetic: false, port: false },
    ]);
  });
});

describe('normalizeMac', () => {
  it('accepts colon or dash separated hex in either case and rejects anything else', () => {
    expect(normalizeMac(' 00:15:5D:0A:0B:0C\n')).toBe('00:15:5d:0a:0b:0c');
    expect(normalizeMac('00-15-5d-0a-0b-0c')).toBe('00:15:5d:0a:0b:0c');
    for (const bad of ['', '00:15:5d', '00:15:5d:0a:0b:0c:0d', '0:15:5d:a:b:c', 'zz:15:5d:0a:0b:0c']) expect(normalizeMac(bad)).toBe('');
  });
});
