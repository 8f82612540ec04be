/**
 * Test data for the VF flows: FreeBSD `ifconfig -a` and `sysctl -n`
 * outputs WRITTEN FROM DOCUMENTATION (ifconfig(8),
 * lagg(4), hn(4), sysctl(8) formats), not captured on a live guest, plus
 * a fake Runner that answers from a table and records every command.
 * Only tests import this file.
 */
import { vi } from 'vitest';
import type { RunResult, Runner } from '../common/os/run.js';
import { VF_PATHS, type VfDeps, type VfLog } from './system.js';

export const MAC = '00:15:5d:aa:bb:01';

const HN0_HEAD = `hn0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=48001b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,LINKSTATE,TXCSUM_IPV6>
\tether ${MAC}`;
const HN0_TAIL = `\tmedia: Ethernet autoselect (10Gbase-T <full-duplex>)
\tstatus: active
\tnd6 options=23<PERFORMNUD,ACCEPT_RTADV,AUTO_LINKLOCAL>`;
const vfBlock = (name: string) => `${name}: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=7e8ef3b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,JUMBO_MTU,VLAN_HWCSUM,TSO4,TSO6,LRO>
\tether ${MAC}
\thwaddr 00:0d:3a:00:00:99
\tmedia: Ethernet autoselect <full-duplex,rxpause,txpause>
\tstatus: active
\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>`;
const LO0 = `lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384
\toptions=680003<RXCSUM,TXCSUM,LINKSTATE,RXCSUM_IPV6,TXCSUM_IPV6>
\tinet 127.0.0.1 netmask 0xff000000
\tinet6 ::1 prefixlen 128
\tinet6 fe80::1%lo0 prefixlen 64 scopeid 0x2
\tgroups: lo
\tnd6 options=21<PERFORMNUD,AUTO_LINKLOCAL>`;
const HN0_LL = `\tinet6 fe80::215:5dff:feaa:bb01%hn0 prefixlen 64 scopeid 0x1`;
const HN0_V4 = `\tinet 10.0.0.5 netmask 0xffffff00 broadcast 10.0.0.255`;
const HN0_V6 = `\tinet6 2001:db8::5 prefixlen 64`;

/** Before VF_UP, IPv4 only: hn0 holds 10.0.0.5/24, the VF mce0 is up without addresses, no lagg. */
export const IFCONFIG_NO_LAGG = [`${HN0_HEAD}\n${HN0_V4}\n${HN0_LL}\n${HN0_TAIL}`, vfBlock('mce0'), LO0, ''].join('\n');

/** Before VF_UP, dual stack: hn0 holds 10.0.0.5/24 and 2001:db8::5/64. */
export const IFCONFIG_NO_LAGG_V6 = [`${HN0_HEAD}\n${HN0_V4}\n${HN0_LL}\n${HN0_V6}\n${HN0_TAIL}`, vfBlock('mce0'), LO0, ''].join('\n');

const lagg0 = (ports: string, addrs: string, description = 'hvguest-vf:hn0') => `lagg0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
${description ? `\tdescription: ${description}\n` : ''}\toptions=48001b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,LINKSTATE,TXCSUM_IPV6>
\tether ${MAC}
${addrs}\tlaggproto failover lagghash l2,l3,l4
${ports}\tgroups: lagg
\tmedia: Ethernet autoselect
\tstatus: active
\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>`;
const LAGG_ADDRS = `\tinet 10.0.0.5 netmask 0xffffff00 broadcast 10.0.0.255
\tinet6 fe80::215:5dff:feaa:bb01%lagg0 prefixlen 64 scopeid 0x4
\tinet6 2001:db8::5 prefixlen 64
`;

/**
 * After `vf up hn0`: lagg0 (ours) has hn0 and mce0 as ports, mce0 active
 * (hn reports link down while the VF carries traffic), all addresses but
 * hn0's link-local on lagg0. hn0, mce0 and lagg0 share the MAC.
 */
export const IFCONFIG_LAGG = [
  `${HN0_HEAD}\n${HN0_LL}\n${HN0_TAIL}`,
  vfBlock('mce0'),
  LO0,
  lagg0('\tlaggport: hn0 flags=1<MASTER>\n\tlaggport: mce0 flags=4<ACTIVE>\n', LAGG_ADDRS),
  '',
].join('\n');

/** After a live migration: the VF came back as mce1; lagg0 still has hn0 only (lagg(4) drops a detached port). */
export const IFCONFIG_LAGG_VF_BACK = [
  `${HN0_HEAD}\n${HN0_LL}\n${HN0_TAIL}`,
  vfBlock('mce1'),
  LO0,
  lagg0('\tlaggport: hn0 flags=5<MASTER,ACTIVE>\n', LAGG_ADDRS),
  '',
].join('\n');

/** The administrator's own lagg0 (no description, ports em0 and em1) next to hn0 and its VF. */
export const IFCONFIG_FOREIGN_LAGG0 = [
  `${HN0_HEAD}\n${HN0_V4}\n${HN0_LL}\n${HN0_TAIL}`,
  vfBlock('mce0'),
  lagg0('\tlaggport: em0 flags=5<MASTER,ACTIVE>\n\tlaggport: em1 flags=0<>\n', '\tinet 192.168.7.2 netmask 0xffffff00 broadcast 192.168.7.255\n', ''),
  '',
].join('\n');

/** sysctl(8) answers: `-n` prints the bare value; an unknown OID is status 1 on stderr. */
export const SYSCTL_UNKNOWN = (oid: string): Partial<RunResult> => ({ code: 1, stdout: '', stderr: `sysctl: unknown oid '${oid}'\n` });

/** The rc shell's answer (rcconf.ts RC_PROGRAM format) for one configuration. */
export const rcOutput = (o: { delay?: string; dhcp?: boolean; sync?: boolean; ipv4?: string; ipv6?: string; gw?: string; gw6?: string }): string =>
  [
    `hyperv_vf_delay=${o.delay ?? ''}`,
    `dhcp=${o.dhcp || o.sync ? 1 : 0}`,
    `syncdhcp=${o.sync ? 1 : 0}`,
    `ipv4=${o.ipv4 ?? ''}`,
    `ipv6=${o.ipv6 ?? ''}`,
    `defaultrouter=${o.gw ?? ''}`,
    `ipv6_defaultrouter=${o.gw6 ?? ''}`,
    '',
  ].join('\n');

const ok = (p: Partial<RunResult> = {}): RunResult => ({ code: 0, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false, ms: 1, ...p });

/**
 * The command as a test writes it: program and argv joined by spaces, with
 * the rc shell's constant program abbreviated to `<rc>`.
 */
export function commandKey(file: string, args: readonly string[]): string {
  const shown = file === VF_PATHS.sh && args[0] === '-c' ? ['-c', '<rc>', ...args.slice(2)] : args;
  return [file, ...shown].join(' ');
}

export type Table = Record<string, Partial<RunResult> | ((n: number) => Partial<RunResult>)>;

/** A Runner answering from `table` (by commandKey); unknown commands succeed silently (mutations). */
export function fakeRunner(table: Table) {
  const calls: string[] = [];
  const counts = new Map<string, number>();
  const run: Runner = async (file, args) => {
    const key = commandKey(file, args);
    calls.push(key);
    const n = counts.get(key) ?? 0;
    counts.set(key, n + 1);
    const e = table[key];
    return ok(typeof e === 'function' ? e(n) : e);
  };
  return { run, calls };
}

export interface FakeSystem {
  deps: VfDeps;
  calls: string[];
  sleeps: number[];
  logs: { level: string; obj: unknown; msg: unknown }[];
}

/** VfDeps over fakeRunner, with files and executables from maps. */
export function fakeSystem(table: Table, files: Record<string, string> = {}, executables: string[] = []): FakeSystem {
  const { run, calls } = fakeRunner(table);
  const sleeps: number[] = [];
  const logs: FakeSystem['logs'] = [];
  const rec = (level: string) => vi.fn((obj: unknown, msg?: unknown) => void logs.push({ level, obj, msg }));
  const log = { info: rec('info'), warn: rec('warn'), error: rec('error'), debug: rec('debug') } as unknown as VfLog;
  const deps: VfDeps = {
    run,
    log,
    paths: VF_PATHS,
    readFile: (p) => files[p],
    isExecutable: (p) => executables.includes(p),
    sleep: async (ms) => void sleeps.push(ms),
    self: ['/usr/local/bin/node', '/usr/local/lib/node_modules/hvguest/bin/hvctl'],
  };
  return { deps, calls, sleeps, logs };
}

/** Commands that change the system (anything but sysctl reads, ifconfig -a and the rc shell). */
export const mutations = (calls: readonly string[]): string[] =>
  calls.filter((c) => !c.startsWith('/sbin/sysctl -n ') && c !== '/sbin/ifconfig -a' && !c.startsWith('/bin/sh -c <rc>'));
