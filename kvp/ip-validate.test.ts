import { describe, expect, it } from 'vitest';
import { addressFamily, expandIPv6, isIfName, maskToPrefix, normalizeGuid, prefixToMask, show, validateSetIp } from './ip-validate.js';
import type { SetIpRequest } from './types.js';

const GUID = 'f5e1a6b2-3c4d-4e5f-8a9b-0c1d2e3f4a5b';
const base: SetIpRequest = {
  adapterId: `{${GUID.toUpperCase()}}`,
  addrFamily: 1,
  dhcpEnabled: 0,
  ipAddr: '10.0.0.5',
  subNet: '255.255.255.0',
  gateWay: '10.0.0.1',
  dnsAddr: '10.0.0.2',
};
const check = (over: Partial<SetIpRequest>, flavor: 'linux' | 'freebsd' = 'linux') => validateSetIp({ ...base, ...over }, flavor);

describe('address parsing', () => {
  it('accepts strict IPv4 and IPv6 and refuses the lax forms', () => {
    expect(addressFamily('10.0.0.5')).toBe(4);
    expect(addressFamily('2001:db8::5')).toBe(6);
    expect(addressFamily('::ffff:10.0.0.5')).toBe(6);
    expect(addressFamily('010.0.0.5')).toBeUndefined(); // octal to inet_aton
    expect(addressFamily('10.0.0.256')).toBeUndefined();
    expect(addressFamily('10.0.0')).toBeUndefined();
    expect(addressFamily('fe80::1%eth0')).toBeUndefined(); // zone id
    expect(addressFamily('[2001:db8::1]')).toBeUndefined();
    expect(addressFamily('1::2::3')).toBeUndefined();
  });

  it('expands IPv6 to eight four-digit lowercase groups', () => {
    expect(expandIPv6('2001:DB8::5')).toBe('2001:0db8:0000:0000:0000:0000:0000:0005');
    expect(expandIPv6('::1')).toBe('0000:0000:0000:0000:0000:0000:0000:0001');
    expect(expandIPv6('fe80::')).toBe('fe80:0000:0000:0000:0000:0000:0000:0000');
    expect(expandIPv6('::ffff:10.0.0.5')).toBe('0000:0000:0000:0000:0000:ffff:0a00:0005');
    expect(expandIPv6('1:2:3:4:5:6:7:8')).toBe('0001:0002:0003:0004:0005:0006:0007:0008');
  });

  it('converts masks and prefixes both ways and refuses holes', () => {
    for (let p = 0; p <= 32; p++) expect(maskToPrefix(prefixToMask(p))).toBe(p);
    expect(prefixToMask(24)).toBe('255.255.255.0');
    expect(prefixToMask(0)).toBe('0.0.0.0');
    expect(maskToPrefix('255.0.255.0')).toBeUndefined();
    expect(maskToPrefix('255.255.255.1')).toBeUndefined();
    expect(maskToPrefix('0.255.255.255')).toBeUndefined();
  });

  it('normalises GUIDs: braces optional but balanced, any case', () => {
    expect(normalizeGuid(`{${GUID.toUpperCase()}}`)).toBe(GUID);
    expect(normalizeGuid(GUID)).toBe(GUID);
    expect(normalizeGuid(`{${GUID}`)).toBeUndefined();
    expect(normalizeGuid(`${GUID}}`)).toBeUndefined();
    expect(normalizeGuid(GUID.slice(1))).toBeUndefined();
  });

  it('accepts only interface names usable as file names', () => {
    expect(isIfName('eth0')).toBe(true);
    expect(isIfName('enP1s1.100')).toBe(true);
    expect(isIfName('a..b')).toBe(false);
    expect(isIfName('.hidden')).toBe(false);
    expect(isIfName('eth/0')).toBe(false);
    expect(isIfName('abcdefghijklmnop')).toBe(false); // 16 > IFNAMSIZ - 1
  });

  it('shows host strings escaped and bounded', () => {
    expect(show('a\nb\u0000c"')).toBe('"a\\x0ab\\x00c\\""');
    expect(show('\ufffd')).toBe('"\\u{fffd}"');
    expect(show('x'.repeat(60), 10)).toBe(`"${'x'.repeat(10)}"...`);
  });
});

describe('validateSetIp', () => {
  it('pairs addresses with subnets and keeps gateways and DNS in order', () => {
    const r = check({
      ipAddr: '10.0.0.5; 2001:db8::5;10.0.1.5;',
      subNet: '255.255.255.0;64;/16',
      gateWay: '10.0.0.1;2001:db8::1',
      dnsAddr: '10.0.0.2;2001:db8::2;',
    });
    expect(r).toEqual({
      ok: true,
      value: {
        adapter: { kind: 'guid', guid: GUID },
        dhcp: false,
        addresses: [
          { family: 4, text: '10.0.0.5', prefix: 24 },
          { family: 6, text: '2001:db8::5', prefix: 64 },
          { family: 4, text: '10.0.1.5', prefix: 16 },
        ],
        gateways: [
          { family: 4, text: '10.0.0.1' },
          { family: 6, text: '2001:db8::1' },
        ],
        dns: [
          { family: 4, text: '10.0.0.2' },
          { family: 6, text: '2001:db8::2' },
        ],
      },
    });
  });

  it('accepts DHCP with nothing else', () => {
    const r = check({ dhcpEnabled: 1, ipAddr: '', subNet: '', gateWay: '', dnsAddr: '' });
    expect(r.ok && r.value.addresses).toEqual([]);
  });

  it('takes an ifname adapter id only on FreeBSD', () => {
    expect(check({ adapterId: 'hn0' }, 'freebsd')).toMatchObject({ ok: true, value: { adapter: { kind: 'ifname', name: 'hn0' } } });
    expect(check({ adapterId: 'hn0' }, 'linux')).toMatchObject({ ok: false, detail: expect.stringContaining('not a GUID') });
  });

  it.each([
    [{ subNet: '255.255.255.0;255.255.255.0' }, 'must pair up'],
    [{ subNet: '' }, 'must pair up'],
    [{ subNet: '255.0.255.0' }, 'not contiguous'],
    [{ subNet: '33' }, 'over 32'],
    [{ ipAddr: '2001:db8::5', subNet: '129' }, 'over 128'],
    [{ ipAddr: '2001:db8::5', subNet: '255.255.255.0' }, 'IPv4 mask'],
    [{ ipAddr: '2001:db8::5', subNet: 'ffff:ffff::' }, 'prefix lengths'],
    [{ subNet: '024' }, 'neither'],
    [{ ipAddr: '10.0.0.5;;10.0.0.6', subNet: '24;;24' }, 'empty'],
    [{ ipAddr: '0.0.0.0' }, 'unspecified'],
    [{ gateWay: '224.0.0.1' }, 'multicast'],
    [{ dnsAddr: 'ff02::1' }, 'multicast'],
    [{ dnsAddr: '::' }, 'unspecified'],
    [{ dhcpEnabled: 2 }, 'dhcp_enabled'],
    [{ adapterId: '' }, 'empty'],
    [{ ipAddr: `${'1'.repeat(46)}` }, 'too long'],
  ] as Array<[Partial<SetIpRequest>, string]>)('refuses %j (%s)', (over, why) => {
    const r = check(over);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.detail).toContain(why);
  });

  it('refuses a list that fills the kernel field without a final separator (truncated last item)', () => {
    // 1023 bytes: what the FreeBSD kernel leaves of a longer list.
    const items: string[] = [];
    while (items.join(';').length < 1023) items.push('10.0.0.12');
    const cut = items.join(';').slice(0, 1023);
    expect(cut.length).toBe(1023);
    const r = check({ ipAddr: cut, subNet: cut.split(';').map(() => '24').join(';') });
    expect(r).toMatchObject({ ok: false, detail: expect.stringContaining('truncated') });
    // The same length ending on ";" is whole: 93 items of "10.0.0.123;" are exactly 1023 bytes.
    const whole = '10.0.0.123;'.repeat(93);
    expect(whole.length).toBe(1023);
    expect(check({ ipAddr: whole, subNet: Array(93).fill('24').join(';') }).ok).toBe(true);
  });

  it('refuses fields over their size', () => {
    expect(check({ gateWay: '10.0.0.1;'.repeat(60) })).toMatchObject({ ok: false, detail: expect.stringContaining('over the 511-byte field') });
  });
});
