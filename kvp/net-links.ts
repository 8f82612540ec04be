/**
 * Every network interface with its MAC, including those without an
 * address or not running (which os.networkInterfaces() omits), and the
 * choice of one interface for a GET_IP_INFO MAC.
 *
 * Several interfaces can share one MAC: on Linux an SR-IOV VF enslaved to
 * its netvsc interface, a bond or bridge and its ports; on FreeBSD hn(4),
 * its VF and the lagg(4) that carries hn's configuration in non-transparent
 * VF mode (vf.md). The answer must describe the interface that holds the
 * IP configuration (pitfalls L18): see chooseAdapter.
 */
import { basename } from 'node:path';
import type { Flavor } from '../common/wire/constants.js';
import { isLinkLocal6, type IfAddr } from './net-addrs.js';

/** One interface as the link layer sees it. */
export interface Link {
  name: string;
  /** Lower-case, colon-separated. */
  mac: string;
  /** A lagg, bond or bridge: exists to carry its ports' configuration. */
  aggregate: boolean;
  /** The Hyper-V synthetic NIC: FreeBSD hn(4), Linux hv_netvsc. */
  synthetic: boolean;
  /** Enslaved to another interface (lagg/bond/bridge port, Linux netvsc VF). */
  port: boolean;
}

const NO_MAC = '00:00:00:00:00:00';

/** Read-only view of /sys/class/net, replaceable in tests. */
export interface SysfsReader {
  readdir(path: string): string[];
  readFile(path: string): string | undefined;
  readlink(path: string): string | undefined;
  exists(path: string): boolean;
}

/** Links from Linux sysfs: /sys/class/net/IF/address and the master/bonding/bridge/driver entries. */
export function linuxLinks(fs: SysfsReader, root = '/sys/class/net'): Link[] {
  const links: Link[] = [];
  for (const name of fs.readdir(root)) {
    const dir = `${root}/${name}`;
    const mac = normalizeMac(fs.readFile(`${dir}/address`) ?? '');
    // Loopback, tunnels and non-Ethernet links have no usable MAC.
    if (!mac || mac === NO_MAC) continue;
    const driver = fs.readlink(`${dir}/device/driver`);
    links.push({
      name,
      mac,
      aggregate: fs.exists(`${dir}/bonding`) || fs.exists(`${dir}/bridge`),
      synthetic: driver !== undefined && basename(driver) === 'hv_netvsc',
      port: fs.exists(`${dir}/master`),
    });
  }
  return links;
}

/** One lagg port line: `laggport: IF flags=5<MASTER,ACTIVE>`. */
export interface LaggPort {
  name: string;
  /** Upper-case flag names: MASTER, ACTIVE, COLLECTING, DISTRIBUTING... */
  flags: string[];
}

/** Everything hvguest reads from one interface block of FreeBSD `ifconfig -a`. */
export interface IfconfigBlock {
  name: string;
  /** Interface flags from the first line (UP, RUNNING, ...). */
  flags: string[];
  /** Lower-case, colon-separated; "" when the block has no ether line. */
  mac: string;
  groups: string[];
  /** The `description:` line, "" when none. */
  description: string;
  /** `laggproto failover ...`: the protocol word, "" for non-laggs. */
  laggproto: string;
  laggports: LaggPort[];
  /** IPv4 addresses with the netmask as printed (0xffffff00). */
  inet: { address: string; netmask: string }[];
  /** IPv6 addresses without the %scope suffix. */
  inet6: { address: string; prefixlen: number }[];
}

const flagList = (text: string | undefined): string[] => (text ? text.split(',').filter(Boolean) : []);

/**
 * FreeBSD `ifconfig -a` text, a block per interface starting
 * "name: flags=NNNN<A,B> ...", indented lines after it ("ether MAC",
 * "inet A netmask M", "inet6 A%scope prefixlen P", "groups: ...",
 * "laggproto P", "laggport: IF flags=N<...>", "description: text").
 */
export function parseIfconfigBlocks(text: string): IfconfigBlock[] {
  const blocks: IfconfigBlock[] = [];
  for (const line of text.split('\n')) {
    const head = /^(\S+?): flags=[0-9a-f]*(?:<([^>]*)>)?/.exec(line);
    if (head) {
      blocks.push({ name: head[1]!, flags: flagList(head[2]), mac: '', groups: [], description: '', laggproto: '', laggports: [], inet: [], inet6: [] });
      continue;
    }
    const b = blocks[blocks.length - 1];
    if (!b) continue;
    const words = line.trim().split(/\s+/);
    const at = (k: string) => words[words.indexOf(k) + 1] ?? '';
    if (words[0] === 'ether' && words[1]) b.mac = normalizeMac(words[1]);
    else if (words[0] === 'groups:') b.groups.push(...words.slice(1));
    else if (words[0] === 'description:') b.description = line.trim().slice('description:'.length).trim();
    else if (words[0] === 'laggproto' && words[1]) b.laggproto = words[1];
    else if (words[0] === 'laggport:' && words[1]) b.laggports.push({ name: words[1], flags: flagList(/<([^>]*)>/.exec(line)?.[1]) });
    else if (words[0] === 'inet' && words[1]) b.inet.push({ address: words[1], netmask: words.includes('netmask') ? at('netmask') : '' });
    else if (words[0] === 'inet6' && words[1]) b.inet6.push({ address: words[1].replace(/%.*$/, ''), prefixlen: Number(at('prefixlen')) || 0 });
  }
  return blocks;
}

/** Links from FreeBSD `ifconfig -a` text (see parseIfconfigBlocks); interfaces without an ether address are left out. */
export function parseIfconfig(text: string): Link[] {
  const blocks = parseIfconfigBlocks(text);
  const ports = new Set(blocks.flatMap((b) => b.laggports.map((p) => p.name)));
  return blocks
    .filter((b) => b.mac)
    .map((b) => ({
      name: b.name,
      mac: b.mac,
      aggregate: b.groups.includes('lagg') || b.laggports.length > 0,
      synthetic: /^hn\d+$/.test(b.name),
      port: ports.has(b.name),
    }));
}

/** Links known only from the addresses libuv reported (fallback when the full list is unavailable). */
export function linksFromAddrs(addrs: readonly IfAddr[], flavor: Flavor): Link[] {
  const seen = new Map<string, Link>();
  for (const a of addrs) {
    if (seen.has(a.iface) || a.loopback || a.mac === NO_MAC) continue;
    seen.set(a.iface, {
      name: a.iface,
      mac: a.mac,
      aggregate: flavor === 'freebsd' ? /^lagg\d+$/.test(a.iface) : /^(bond|br)\d/.test(a.iface),
      synthetic: flavor === 'freebsd' && /^hn\d+$/.test(a.iface),
      port: false,
    });
  }
  return [...seen.values()];
}

/** "00:15:5D:0A:0B:0C" or "00-15-5d-..." → "00:15:5d:0a:0b:0c"; anything that is not six hex pairs → "". */
export function normalizeMac(text: string): string {
  const m = text.trim().toLowerCase().replace(/-/g, ':');
  return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(m) ? m : '';
}

/** 2: a global address; 1: only link-local; 0: no address. */
function configLevel(name: string, addrs: readonly IfAddr[]): number {
  const own = addrs.filter((a) => a.iface === name && !a.loopback);
  if (own.some((a) => a.family === 4 || !isLinkLocal6(a.address))) return 2;
  return own.length ? 1 : 0;
}

/** The interfaces with this MAC, best first, and the reasons for the order. */
export interface AdapterChoice {
  chosen: Link;
  /** Every interface with the MAC, in preference order (chosen first). */
  candidates: Link[];
}

/**
 * The interface that answers for `mac` (exact, case-insensitive match; the
 * FreeBSD C daemon's prefix match let "" match the first NIC). Among
 * interfaces sharing the MAC, prefer the one holding IP configuration
 * (global address over link-local only over none), then an aggregate
 * (lagg/bond/bridge: it exists to carry the configuration), then the
 * synthetic NIC over a VF, then a non-port; ties keep the OS order.
 */
export function chooseAdapter(mac: string, links: readonly Link[], addrs: readonly IfAddr[]): AdapterChoice | undefined {
  const want = normalizeMac(mac);
  if (!want) return undefined;
  const score = (l: Link) => [configLevel(l.name, addrs), +l.aggregate, +l.synthetic, +!l.port];
  const candidates = links
    .filter((l) => l.mac === want)
    .map((l, i) => ({ l, s: score(l), i }))
    .sort((a, b) => compareScores(b.s, a.s) || a.i - b.i)
    .map((x) => x.l);
  return candidates.length ? { chosen: candidates[0]!, candidates } : undefined;
}

function compareScores(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
