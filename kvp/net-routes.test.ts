import { describe, expect, it } from 'vitest';
import type { RunResult, Runner } from '../common/os/run.js';
import { freebsdGateways, linuxGateways, parseIpRouteJson, parseIpRouteText, parseNetstatJson } from './net-routes.js';

const result = (over: Partial<RunResult>): RunResult => ({ code: 0, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false, ms: 1, ...over });

// Captured from iproute2 6.1 on Linux 6.18 in a network namespace: multipath
// defaults over v0 and d0, an IPv4 default via an IPv6 next hop (RTA_VIA),
// and a router-advertised IPv6 default (the route that made the old column
// parser report "ra", pitfall L19).
const IP4_JSON =
  '[{"dst":"default","flags":[],"nexthops":[{"gateway":"192.0.2.1","dev":"v0","weight":1,"flags":[]},{"gateway":"198.51.100.1","dev":"d0","weight":2,"flags":[]}]},{"dst":"default","via":{"family":"inet6","host":"fe80::1"},"dev":"v0","metric":50,"flags":[]}]\n';
const IP4_TEXT = 'default \\\tnexthop via 192.0.2.1 dev v0 weight 1 \\\tnexthop via 198.51.100.1 dev d0 weight 2 \ndefault via inet6 fe80::1 dev v0 metric 50 \n';
const IP6_JSON =
  '[{"dst":"default","metric":1024,"flags":[],"pref":"medium","nexthops":[{"gateway":"2001:db8::1","dev":"v0","weight":1,"flags":[]},{"gateway":"2001:db8:1::1","dev":"d0","weight":1,"flags":[]}]},{"dst":"default","gateway":"fe80::5","dev":"d0","protocol":"ra","metric":2000,"flags":[],"pref":"medium"}]\n';
const IP6_TEXT =
  'default metric 1024 pref medium\\\tnexthop via 2001:db8::1 dev v0 weight 1 \\\tnexthop via 2001:db8:1::1 dev d0 weight 1 \ndefault via fe80::5 dev d0 proto ra metric 2000 pref medium\n';

describe('parseIpRouteJson / parseIpRouteText', () => {
  it('give the gateways of the named interface only, multipath hops included (pitfall L6)', () => {
    expect(parseIpRouteJson(IP4_JSON, 'v0')).toEqual(['192.0.2.1', 'fe80::1']);
    expect(parseIpRouteJson(IP4_JSON, 'd0')).toEqual(['198.51.100.1']);
    expect(parseIpRouteJson(IP6_JSON, 'd0')).toEqual(['2001:db8:1::1', 'fe80::5']);
    expect(parseIpRouteText(IP4_TEXT, 'v0')).toEqual(['192.0.2.1', 'fe80::1']);
    expect(parseIpRouteText(IP4_TEXT, 'd0')).toEqual(['198.51.100.1']);
    expect(parseIpRouteText(IP6_TEXT, 'd0')).toEqual(['2001:db8:1::1', 'fe80::5']);
  });

  it('match interface names exactly: "v" and "v00" have no gateways', () => {
    for (const dev of ['v', 'v00', 'd']) {
      expect(parseIpRouteJson(IP4_JSON, dev)).toEqual([]);
      expect(parseIpRouteText(IP4_TEXT, dev)).toEqual([]);
    }
  });

  it('never report a word that is not an address ("ra", "dev")', () => {
    const gws = [...parseIpRouteText(IP6_TEXT, 'd0'), ...parseIpRouteJson(IP6_JSON, 'd0')];
    expect(gws).not.toContain('ra');
    expect(parseIpRouteText('default dev wg0 scope link\nunreachable default metric 4278198272\n', 'wg0')).toEqual([]);
  });

  it('reject JSON that is not a route list', () => {
    expect(() => parseIpRouteJson('{"x":1}', 'v0')).toThrow();
    expect(() => parseIpRouteJson('Option "-j" is unknown', 'v0')).toThrow();
  });
});

describe('linuxGateways', () => {
  it('runs `ip -j -4|-6 route show default` and returns IPv4 then IPv6 gateways', async () => {
    const calls: string[] = [];
    const run: Runner = async (file, args) => {
      calls.push([file, ...args].join(' '));
      return result({ stdout: args.includes('-4') ? IP4_JSON : IP6_JSON });
    };
    expect(await linuxGateways(run, '/usr/sbin/ip', 'v0', 900)).toEqual(['192.0.2.1', 'fe80::1', '2001:db8::1']);
    expect(calls.sort()).toEqual(['/usr/sbin/ip -j -4 route show default', '/usr/sbin/ip -j -6 route show default']);
  });

  it('falls back to `ip -o` text when -j is unknown (iproute2 before 4.13)', async () => {
    const run: Runner = async (_file, args) => {
      if (args[0] === '-j') return result({ code: 255, stderr: 'Option "-j" is unknown, try "ip -help".\n' });
      return result({ stdout: args.includes('-4') ? IP4_TEXT : IP6_TEXT });
    };
    expect(await linuxGateways(run, '/sbin/ip', 'd0', 900)).toEqual(['198.51.100.1', '2001:db8:1::1', 'fe80::5']);
  });

  it('throws when ip cannot run at all', async () => {
    const run: Runner = async () => result({ code: null, error: 'ENOENT' });
    await expect(linuxGateways(run, '/sbin/ip', 'v0', 900)).rejects.toThrow(/ENOENT/);
  });
});

// `netstat -rn --libxo json` as FreeBSD 14 prints it (container names from
// usr.bin/netstat route.c/route_netlink.c); hand-written, not captured.
const NETSTAT = JSON.stringify({
  statistics: {
    'route-information': {
      'route-table': {
        'rt-family': [
          {
            'address-family': 'Internet',
            'rt-entry': [
              { destination: 'default', gateway: '10.0.0.1', flags: 'UGS', 'flags_pretty': ['up', 'gateway', 'static'], weight: 1, 'nhop-kidx': 3, 'interface-name': 'hn0' },
              { destination: 'default', gateway: '10.1.0.1', flags: 'UGS', weight: 1, 'interface-name': 'hn10' },
              { destination: '10.0.0.0/24', gateway: 'link#1', flags: 'U', weight: 1, 'interface-name': 'hn0' },
              { destination: '127.0.0.1', gateway: 'link#2', flags: 'UH', weight: 1, 'interface-name': 'lo0' },
            ],
          },
          {
            'address-family': 'Internet6',
            'rt-entry': [
              { destination: '::/96', gateway: '::1', flags: 'UGRS', 'interface-name': 'lo0' },
              { destination: 'default', gateway: 'fe80::1234:5678:9abc:def0%hn0', flags: 'UG', 'interface-name': 'hn0' },
              { destination: 'fe80::%hn0/64', gateway: 'link#1', flags: 'U', 'interface-name': 'hn0' },
            ],
          },
        ],
      },
    },
  },
});

describe('parseNetstatJson', () => {
  it('gives the default gateways of the named interface, IPv4 then IPv6, scope suffix removed', () => {
    expect(parseNetstatJson(NETSTAT, 'hn0')).toEqual(['10.0.0.1', 'fe80::1234:5678:9abc:def0']);
    // Exact names: hn1 is not a prefix match for hn10 (F22).
    expect(parseNetstatJson(NETSTAT, 'hn1')).toEqual([]);
    expect(parseNetstatJson(NETSTAT, 'hn10')).toEqual(['10.1.0.1']);
  });

  it('rejects output without a route table', () => {
    expect(() => parseNetstatJson('{}', 'hn0')).toThrow(/route-table/);
  });
});

describe('freebsdGateways', () => {
  it('runs netstat once for both families', async () => {
    const calls: string[] = [];
    const run: Runner = async (file, args) => {
      calls.push([file, ...args].join(' '));
      return result({ stdout: NETSTAT });
    };
    expect(await freebsdGateways(run, 'hn0', 900)).toEqual(['10.0.0.1', 'fe80::1234:5678:9abc:def0']);
    expect(calls).toEqual(['/usr/bin/netstat -rn --libxo json']);
  });

  it('throws when netstat fails or times out', async () => {
    await expect(freebsdGateways(async () => result({ code: null, timedOut: true }), 'hn0', 900)).rejects.toThrow(/timed out/);
  });
});
