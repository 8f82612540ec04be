/**
 * GET_IP_INFO (op 4): the addresses, masks, gateways, DNS servers and DHCP
 * state of the interface whose MAC the host names (kvp.md section 7).
 *
 * Differences from the C daemons, all deliberate:
 * - exact MAC match (FreeBSD matched a prefix), exact interface names (both
 *   matched name prefixes: "hn1" took "hn10"'s addresses, F22/L6);
 * - with several interfaces on one MAC, the one holding the configuration
 *   answers (net-links.ts chooseAdapter; L18, vf.md), and the log says which;
 * - gateways of that interface only, from the routing table (L6, L19, F19);
 * - routes, DNS and DHCP gathered once per request, not once per address (L6, F28);
 * - lists cut after a whole item when a field is full, instead of failing
 *   the request (FreeBSD) or cutting mid-item (the kernel).
 *
 * Formats per flavor (wire.md section 6): FreeBSD ends every item of every
 * list with ";"; Linux joins ip_addr and sub_net with ";" and ends each
 * gateway and DNS item with ";". IPv4 masks are dotted, IPv6 ones "/N".
 * The host's addr_family is ignored and both families are reported, as both
 * C daemons do; addr_family in the answer has a bit per family found.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Logger } from '../common/log.js';
import { ADDR_FAMILY_IPV4, ADDR_FAMILY_IPV6, type Flavor } from '../common/wire/constants.js';
import { flattenInterfaces, type IfAddr, type InterfaceTable } from './net-addrs.js';
import { dhcpEnabled, dnsServers } from './net-helpers.js';
import { chooseAdapter, linksFromAddrs, linuxLinks, parseIfconfig, type Link, type SysfsReader } from './net-links.js';
import { fitList, fittingCount, GATEWAY_LIMIT, IP_LIST_LIMIT, renderList, type ListStyle } from './net-lists.js';
import { freebsdGateways, linuxGateways } from './net-routes.js';
import type { IpContext, IpInfo, IpInfoRequest } from './types.js';

/** System facts GET_IP_INFO reads besides the programs it runs through ctx.run. */
export interface IpInfoSys {
  networkInterfaces(): InterfaceTable;
  /** Linux /sys/class/net. */
  sysfs: SysfsReader;
  /** Absolute path of iproute2's `ip` (Linux). */
  ipPath: string;
  /** FreeBSD programs. */
  ifconfigPath: string;
  netstatPath: string;
}

export interface IpInfoOptions extends IpContext {
  sys?: Partial<IpInfoSys>;
  log?: Pick<Logger, 'debug' | 'info' | 'warn'>;
  /** Per program run; default 1500 ms so a whole request stays inside FreeBSD's 5 s deadline. */
  timeoutMs?: number;
}

/** Answer GET_IP_INFO for the interface with `req.adapterId` as MAC; `{error}` when no interface has it. Never throws. */
export async function getIpInfo(req: IpInfoRequest, ctx: IpInfoOptions): Promise<IpInfo | { error: string }> {
  try {
    return await answer(req, ctx);
  } catch (e) {
    return { error: `get_ip_info ${JSON.stringify(req.adapterId)}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

async function answer(req: IpInfoRequest, ctx: IpInfoOptions): Promise<IpInfo | { error: string }> {
  const sys: IpInfoSys = { ...defaultSys(), ...ctx.sys };
  const timeoutMs = ctx.timeoutMs ?? 1500;
  const { flavor, log } = ctx;
  const op = 'get_ip_info';

  const addrs = flattenInterfaces(sys.networkInterfaces());
  const links = await listLinks(ctx, sys, addrs, timeoutMs);
  const choice = chooseAdapter(req.adapterId, links, addrs);
  if (!choice) return { error: `no interface has MAC ${JSON.stringify(req.adapterId)}` };
  const { chosen, candidates } = choice;
  const others = candidates.slice(1).map((l) => l.name);
  (others.length ? log?.info : log?.debug)?.call(log, { op, mac: req.adapterId, iface: chosen.name, others }, 'interface chosen for MAC');

  // IPv4 first, as getifaddrs lists them; libuv groups Linux label
  // addresses ("eth0:1") apart from their device. The sort is stable.
  const own = addrs.filter((a) => a.iface === chosen.name && !a.loopback).sort((a, b) => a.family - b.family);
  const [gateways, dns, dhcp] = await Promise.all([
    (flavor === 'linux'
      ? linuxGateways(ctx.run, sys.ipPath, chosen.name, timeoutMs)
      : freebsdGateways(ctx.run, chosen.name, timeoutMs, sys.netstatPath)
    ).catch(warnAnd(ctx, 'gateways', [] as string[])),
    dnsServers(ctx.run, flavor, ctx.helperDir, chosen.name, timeoutMs).catch(warnAnd(ctx, 'dns', [] as string[])),
    dhcpEnabled(ctx.run, flavor, ctx.helperDir, dhcpArgs(flavor, chosen, candidates), timeoutMs).catch(warnAnd(ctx, 'dhcp', false)),
  ]);
  return format(req, flavor, own, gateways, dns, dhcp, ctx);
}

/** Every interface with its MAC; the libuv view when the full list cannot be read. */
async function listLinks(ctx: IpInfoOptions, sys: IpInfoSys, addrs: IfAddr[], timeoutMs: number): Promise<Link[]> {
  try {
    let links: Link[];
    if (ctx.flavor === 'linux') links = linuxLinks(sys.sysfs);
    else {
      const r = await ctx.run(sys.ifconfigPath, ['-a'], { timeoutMs, maxOutput: 1024 * 1024 });
      if (r.code !== 0 || r.timedOut || r.error) throw new Error(`${sys.ifconfigPath} -a: ${r.error ?? (r.timedOut ? 'timed out' : `status ${r.code}`)}`);
      links = parseIfconfig(r.stdout);
    }
    // No /sys/class/net (some containers) or unparsable output.
    if (links.length === 0) throw new Error('no interface with a MAC in the link list');
    return links;
  } catch (e) {
    warnAnd(ctx, 'links', undefined)(e);
    return linksFromAddrs(addrs, ctx.flavor);
  }
}

/**
 * FreeBSD non-transparent VF mode moves hnX's configuration to a lagg but
 * rc.conf still names hnX (vf.md section 8), so the DHCP helper is asked
 * about the lagg and then the hn sharing its MAC; our helper answers
 * "Enabled" if any of them uses DHCP, the C one ignores arguments.
 */
function dhcpArgs(flavor: Flavor, chosen: Link, candidates: readonly Link[]): string[] {
  if (flavor !== 'freebsd' || !chosen.aggregate) return [chosen.name];
  return [chosen.name, ...candidates.filter((l) => l !== chosen && l.synthetic).map((l) => l.name)];
}

function format(req: IpInfoRequest, flavor: Flavor, own: IfAddr[], gateways: string[], dns: string[], dhcp: boolean, ctx: IpInfoOptions): IpInfo {
  const pairStyle: ListStyle = flavor === 'freebsd' ? 'terminated' : 'joined';
  const ips = own.map((a) => a.address);
  const masks = own.map((a) => (a.family === 4 ? a.netmask : `/${a.prefixLen}`));
  // ip_addr and sub_net are parallel lists: cut both at the same item.
  const n = Math.min(fittingCount(ips, pairStyle, IP_LIST_LIMIT), fittingCount(masks, pairStyle, IP_LIST_LIMIT));
  const gw = fitList(gateways, 'terminated', GATEWAY_LIMIT);
  const ns = fitList(dns, 'terminated', IP_LIST_LIMIT);
  const dropped = { addresses: ips.length - n, gateways: gw.dropped, dns: ns.dropped };
  if (dropped.addresses || dropped.gateways || dropped.dns) ctx.log?.warn({ op: 'get_ip_info', mac: req.adapterId, dropped }, 'lists cut to fit the GET_IP_INFO fields');
  const kept = own.slice(0, n);
  return {
    adapterId: req.adapterId,
    addrFamily: (kept.some((a) => a.family === 4) ? ADDR_FAMILY_IPV4 : 0) | (kept.some((a) => a.family === 6) ? ADDR_FAMILY_IPV6 : 0),
    dhcpEnabled: dhcp ? 1 : 0,
    ipAddr: renderList(ips.slice(0, n), pairStyle),
    subNet: renderList(masks.slice(0, n), pairStyle),
    gateWay: gw.text,
    dnsAddr: ns.text,
  };
}

/** A catch handler that logs the failed part of the request and yields `fallback`. */
function warnAnd<T>(ctx: IpInfoOptions, part: string, fallback: T): (e: unknown) => T {
  return (e) => {
    ctx.log?.warn({ op: 'get_ip_info', part, err: e instanceof Error ? e.message : String(e) }, 'GET_IP_INFO part unavailable; answering without it');
    return fallback;
  };
}

let ipPath: string | undefined;

function defaultSys(): IpInfoSys {
  return {
    networkInterfaces,
    sysfs: realSysfs,
    // Debian/Ubuntu /usr/sbin or /sbin, merged-/usr symlinks, Arch /usr/bin.
    ipPath: (ipPath ??= ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? '/sbin/ip'),
    ifconfigPath: '/sbin/ifconfig',
    netstatPath: '/usr/bin/netstat',
  };
}

const attempt = <T>(f: () => T): T | undefined => {
  try {
    return f();
  } catch {
    return undefined;
  }
};

/** The real /sys/class/net; names come from readdir, so no length limit (P22). */
const realSysfs: SysfsReader = {
  readdir: (p) => attempt(() => readdirSync(p)) ?? [],
  readFile: (p) => attempt(() => readFileSync(p, 'utf8')),
  readlink: (p) => attempt(() => readlinkSync(p)),
  exists: (p) => existsSync(p),
};
