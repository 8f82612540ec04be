/**
 * GET_IP_INFO's interface choice against the `ifconfig -a` outputs the VF
 * flows use (vf/fixtures.ts, written from the ifconfig(8)/lagg(4) formats,
 * not captured): hn0, its VF and lagg0 share one MAC; before `vf up` hn0
 * holds the addresses, after it lagg0 holds IPv4 and IPv6. Also the fields
 * parseIfconfigBlocks added for `hvctl vf`.
 */
import { describe, expect, it } from 'vitest';
import { IFCONFIG_LAGG, IFCONFIG_NO_LAGG_V6, MAC } from '../vf/fixtures.js';
import type { IfAddr } from './net-addrs.js';
import { chooseAdapter, parseIfconfig, parseIfconfigBlocks } from './net-links.js';

/** The IfAddr list libuv would give for one ifconfig text (inet/inet6 lines). */
function addrsOf(text: string): IfAddr[] {
  return parseIfconfigBlocks(text).flatMap((b) => [
    ...b.inet.map((a): IfAddr => ({ iface: b.name, family: 4, address: a.address, netmask: '255.255.255.0', prefixLen: 24, loopback: b.name === 'lo0', mac: b.mac || '00:00:00:00:00:00' })),
    ...b.inet6.map((a): IfAddr => ({ iface: b.name, family: 6, address: a.address, netmask: '', prefixLen: a.prefixlen, loopback: b.name === 'lo0', mac: b.mac || '00:00:00:00:00:00' })),
  ]);
}

describe('GET_IP_INFO with hn, VF and lagg sharing a MAC', () => {
  it('after vf up: lagg0 answers (it holds IPv4 and IPv6), hn0 and the VF follow', () => {
    const c = chooseAdapter(MAC, parseIfconfig(IFCONFIG_LAGG), addrsOf(IFCONFIG_LAGG));
    expect(c?.candidates.map((l) => l.name)).toEqual(['lagg0', 'hn0', 'mce0']);
  });

  it('before vf up: hn0 answers, not the VF with the same MAC (pitfall L18)', () => {
    const c = chooseAdapter(MAC, parseIfconfig(IFCONFIG_NO_LAGG_V6), addrsOf(IFCONFIG_NO_LAGG_V6));
    expect(c?.candidates.map((l) => l.name)).toEqual(['hn0', 'mce0']);
  });
});

describe('parseIfconfigBlocks', () => {
  it('reads flags, description, laggproto, laggports with flags, inet and inet6 without the scope', () => {
    const lagg = parseIfconfigBlocks(IFCONFIG_LAGG).find((b) => b.name === 'lagg0');
    expect(lagg).toEqual({
      name: 'lagg0',
      flags: ['UP', 'BROADCAST', 'RUNNING', 'SIMPLEX', 'MULTICAST', 'LOWER_UP'],
      mac: MAC,
      groups: ['lagg'],
      description: 'hvguest-vf:hn0',
      laggproto: 'failover',
      laggports: [
        { name: 'hn0', flags: ['MASTER'] },
        { name: 'mce0', flags: ['ACTIVE'] },
      ],
      inet: [{ address: '10.0.0.5', netmask: '0xffffff00' }],
      inet6: [
        { address: 'fe80::215:5dff:feaa:bb01', prefixlen: 64 },
        { address: '2001:db8::5', prefixlen: 64 },
      ],
    });
  });

  it('keeps interfaces without ether (lo0) and a header with no flag list', () => {
    const b = parseIfconfigBlocks('lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> metric 0 mtu 16384\n\tinet 127.0.0.1 netmask 0xff000000\nx0: flags=0 metric 0\n');
    expect(b.map((x) => [x.name, x.mac, x.flags, x.inet.length])).toEqual([
      ['lo0', '', ['UP', 'LOOPBACK', 'RUNNING', 'MULTICAST'], 1],
      ['x0', '', [], 0],
    ]);
  });
});
