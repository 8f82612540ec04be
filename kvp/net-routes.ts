/**
 * Default gateways of ONE interface, read structurally from the OS routing
 * table (pitfalls L6, L19, F19, F22): never all NICs' gateways, never a
 * grep for a name substring, never a column that can hold "ra".
 *
 * Linux: `ip -j -4|-6 route show default` (JSON, iproute2 >= 4.13), falling
 * back to `ip -o` text when -j is unknown. FreeBSD: `netstat -rn --libxo
 * json`, both families in one run.
 */
import { isIP } from 'node:net';
import type { RunResult, Runner } from '../common/os/run.js';

/** Gateways in the order IPv4 then IPv6, each as plain address text. */
export type GatewayList = string[];

const ok = (r: RunResult) => r.code === 0 && !r.timedOut && !r.truncated && !r.error;

/** A gateway address without a scope suffix, or undefined when it is not an address ("link#2"). */
function cleanGateway(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  const addr = text.split('%')[0]!;
  return isIP(addr) ? addr : undefined;
}

interface IpRouteHop {
  gateway?: string;
  via?: { family?: string; host?: string };
  dev?: string;
}
interface IpRoute extends IpRouteHop {
  dst?: string;
  nexthops?: IpRouteHop[];
}

/** Gateways of `ifname` in `ip -j route show` output: single routes and multipath next hops. */
export function parseIpRouteJson(text: string, ifname: string): GatewayList {
  const routes = JSON.parse(text) as unknown;
  if (!Array.isArray(routes)) throw new Error('ip route JSON is not an array');
  const out: GatewayList = [];
  for (const r of routes as IpRoute[]) {
    if (r?.dst !== 'default') continue;
    for (const hop of Array.isArray(r.nexthops) ? r.nexthops : [r]) {
      if (hop?.dev !== ifname) continue;
      // RTA_GATEWAY, or RTA_VIA for a gateway of the other family.
      const gw = cleanGateway(hop.gateway ?? hop.via?.host);
      if (gw) out.push(gw);
    }
  }
  return out;
}

/**
 * Gateways of `ifname` in `ip -o route show` text: "default via GW dev IF ..."
 * and multipath "default ... nexthop via GW dev IF weight 1 nexthop ...".
 */
export function parseIpRouteText(text: string, ifname: string): GatewayList {
  const out: GatewayList = [];
  for (const line of text.split('\n')) {
    const words = line.replace(/\\/g, ' ').trim().split(/\s+/);
    if (words[0] !== 'default') continue;
    let via: string | undefined;
    let dev: string | undefined;
    const flush = () => {
      const gw = cleanGateway(via);
      if (dev === ifname && gw) out.push(gw);
      via = dev = undefined;
    };
    for (let i = 1; i < words.length; i++) {
      const w = words[i];
      if (w === 'nexthop') flush();
      else if (w === 'via') {
        // "via inet6 fe80::1" names the family first.
        if (words[i + 1] === 'inet' || words[i + 1] === 'inet6') i++;
        via = words[++i];
      } else if (w === 'dev') dev = words[++i];
    }
    flush();
  }
  return out;
}

/** Linux: the interface's default gateways, IPv4 then IPv6. `ip` is the program's absolute path. */
export async function linuxGateways(run: Runner, ip: string, ifname: string, timeoutMs: number): Promise<GatewayList> {
  const family = async (flag: '-4' | '-6'): Promise<GatewayList> => {
    const j = await run(ip, ['-j', flag, 'route', 'show', 'default'], { timeoutMs });
    if (ok(j)) {
      try {
        return parseIpRouteJson(j.stdout, ifname);
      } catch {
        // old iproute2 may accept -j and print text; fall through
      }
    }
    const t = await run(ip, ['-o', flag, 'route', 'show', 'default'], { timeoutMs });
    if (!ok(t)) throw new Error(`${ip} ${flag} route show: ${t.error ?? (t.timedOut ? 'timed out' : `status ${t.code}`)}`);
    return parseIpRouteText(t.stdout, ifname);
  };
  const [v4, v6] = await Promise.all([family('-4'), family('-6')]);
  return [...v4, ...v6];
}

const DEFAULT_DST = new Set(['default', '0.0.0.0/0', '::/0']);

interface NetstatEntry {
  destination?: string;
  gateway?: string;
  'interface-name'?: string;
}

/** Gateways of `ifname` in `netstat -rn --libxo json` output, in table order (Internet, then Internet6). */
export function parseNetstatJson(text: string, ifname: string): GatewayList {
  const doc = JSON.parse(text) as {
    statistics?: { 'route-information'?: { 'route-table'?: { 'rt-family'?: { 'rt-entry'?: NetstatEntry[] }[] } } };
  };
  const families = doc.statistics?.['route-information']?.['route-table']?.['rt-family'];
  if (!Array.isArray(families)) throw new Error('netstat JSON has no route-table');
  const out: GatewayList = [];
  for (const fam of families) {
    for (const e of fam['rt-entry'] ?? []) {
      // netstat prints "default"; accept the CIDR spellings in case a version does not.
      if (!DEFAULT_DST.has(e.destination ?? '') || e['interface-name']?.trim() !== ifname) continue;
      const gw = cleanGateway(e.gateway);
      if (gw) out.push(gw);
    }
  }
  return out;
}

/** FreeBSD: the interface's default gateways from one `netstat -rn` run. */
export async function freebsdGateways(run: Runner, ifname: string, timeoutMs: number, netstat = '/usr/bin/netstat'): Promise<GatewayList> {
  const r = await run(netstat, ['-rn', '--libxo', 'json'], { timeoutMs, maxOutput: 1024 * 1024 });
  if (!ok(r)) throw new Error(`${netstat} -rn: ${r.error ?? (r.timedOut ? 'timed out' : `status ${r.code}`)}`);
  return parseNetstatJson(r.stdout, ifname);
}
