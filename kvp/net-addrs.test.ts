import { describe, expect, it } from 'vitest';
import { flattenInterfaces, isLinkLocal6, prefixFromMask } from './net-addrs.js';

describe('prefixFromMask', () => {
  it('counts the one bits of dotted IPv4 and IPv6 masks, as the C daemons did', () => {
    expect(prefixFromMask('255.255.255.0')).toBe(24);
    expect(prefixFromMask('255.255.252.0')).toBe(22);
    expect(prefixFromMask('0.0.0.0')).toBe(0);
    expect(prefixFromMask('ffff:ffff:ffff:ffff::')).toBe(64);
    expect(prefixFromMask('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(128);
    expect(prefixFromMask('ffff:ffff:ffff:ff80::')).toBe(57);
    expect(prefixFromMask('::')).toBe(0);
  });
});

describe('isLinkLocal6', () => {
  it('is fe80::/10 exactly', () => {
    for (const a of ['fe80::1', 'FE80::1', 'febf:1::1', 'fe9a::1']) expect(isLinkLocal6(a), a).toBe(true);
    for (const a of ['fec0::1', 'fe8::1', '2001:db8::fe80', '::1', 'ff02::1']) expect(isLinkLocal6(a), a).toBe(false);
  });
});

describe('flattenInterfaces', () => {
  it('keeps the OS order, folds Linux labels into their device and drops scope suffixes', () => {
    const out = flattenInterfaces({
      eth0: [{ address: '10.0.0.4', netmask: '255.255.255.0', family: 'IPv4', mac: '00:0D:3A:AA:BB:01', internal: false, cidr: '10.0.0.4/24' }],
      'eth0:1': [{ address: '10.0.0.5', netmask: '255.255.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: '10.0.0.5/16' }],
      lo: [{ address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 }],
      em0: [{ address: 'fe80::1%em0', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:0d:3a:aa:bb:02', internal: false, cidr: null, scopeid: 2 }],
    });
    expect(out).toEqual([
      { iface: 'eth0', family: 4, address: '10.0.0.4', netmask: '255.255.255.0', prefixLen: 24, loopback: false, mac: '00:0d:3a:aa:bb:01' },
      { iface: 'eth0', family: 4, address: '10.0.0.5', netmask: '255.255.0.0', prefixLen: 16, loopback: false, mac: '00:00:00:00:00:00' },
      { iface: 'lo', family: 6, address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', prefixLen: 128, loopback: true, mac: '00:00:00:00:00:00' },
      { iface: 'em0', family: 6, address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', prefixLen: 64, loopback: false, mac: '00:0d:3a:aa:bb:02' },
    ]);
  });
});
