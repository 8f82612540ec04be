/**
 * The Auto pool (pool 2): ten computed keys the host reads with ENUMERATE,
 * index 0 upward (kvp.md section 6). Formats follow each flavor's C daemon
 * where hosts and tools may parse them, and fix the pitfalls:
 *
 * - FullyQualifiedDomainName is looked up again after a short cache, with a
 *   timeout, and falls back to the hostname, never to an error text (L5, F25).
 * - IntegrationServicesVersion: Linux reports the kernel's registration reply
 *   ("3.1", "Unknown version" before it); FreeBSD, whose kernel sends none,
 *   reports "hvguest <package version>" instead of the C daemon's constant
 *   "BSD Pre-Release version" (F26).
 * - NetworkAddressIPv4/IPv6 are read fresh on every request, loopback
 *   excluded on both flavors (F24; the FreeBSD C daemon listed lo0), IPv6
 *   link-local included on Linux as its C daemon does and excluded on
 *   FreeBSD unless `linkLocal` asks (F24). FreeBSD ends each item with ";",
 *   Linux joins with ";". A long list is cut after a whole item.
 * - OS values are computed once (they change only with a reboot); FreeBSD
 *   fills OSMajorVersion/OSMinorVersion from the release (F26).
 * - No value exceeds 2047 UTF-8 bytes or the 1022 UTF-16 units the kernel
 *   passes on (F7).
 */
import { readFileSync, existsSync } from 'node:fs';
import { hostname, networkInterfaces, machine, release, type as osType } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../common/log.js';
import { runProgram } from '../common/os/run.js';
import type { Flavor } from '../common/wire/constants.js';
import { flattenInterfaces, isLinkLocal6, type InterfaceTable } from './net-addrs.js';
import { createFqdn, getentLookup, type CanonicalNameLookup } from './net-fqdn.js';
import { fitList, fitText, VALUE_LIMIT, type ListStyle } from './net-lists.js';
import { osInfo, type OsFacts, type OsInfo } from './os-info.js';
import type { Intrinsics } from './types.js';

/** The Auto-pool keys in ENUMERATE index order. */
export const INTRINSIC_KEYS = [
  'FullyQualifiedDomainName',
  'IntegrationServicesVersion',
  'NetworkAddressIPv4',
  'NetworkAddressIPv6',
  'OSBuildNumber',
  'OSName',
  'OSMajorVersion',
  'OSMinorVersion',
  'OSVersion',
  'ProcessorArchitecture',
] as const;

export type IntrinsicKey = (typeof INTRINSIC_KEYS)[number];

/** System facts the intrinsic values come from; each one replaceable in tests. */
export interface IntrinsicsSys {
  hostname(): string;
  networkInterfaces(): InterfaceTable;
  /** The interface's index (Linux /sys/class/net/IF/ifindex), or undefined when unknown. */
  ifIndex(name: string): number | undefined;
  osFacts(): OsFacts;
  canonicalName: CanonicalNameLookup;
  /** hvguest's own version (package.json). */
  packageVersion(): string;
  now(): number;
}

export interface IntrinsicsOptions {
  flavor: Flavor;
  /** Linux: the version string of the kernel's registration reply, undefined before it. */
  version?: () => string | undefined;
  sys?: Partial<IntrinsicsSys>;
  /** List IPv6 link-local addresses; default true on Linux, false on FreeBSD. */
  linkLocal?: boolean;
  /** FQDN cache lifetime (default 30 s) and lookup timeout (default 2 s). */
  fqdnTtlMs?: number;
  fqdnTimeoutMs?: number;
  log?: Pick<Logger, 'debug' | 'warn'>;
}

/** Linux's C daemon answers this until the kernel's registration reply arrives. */
export const UNKNOWN_VERSION = 'Unknown version';

/** The ten Auto-pool values for one flavor; `at(i)` for i outside 0..9 is undefined; never rejects. */
export function createIntrinsics(opts: IntrinsicsOptions): Intrinsics {
  const { flavor } = opts;
  const sys: IntrinsicsSys = { ...defaultSys(), ...opts.sys };
  const linkLocal = opts.linkLocal ?? flavor === 'linux';
  const style: ListStyle = flavor === 'freebsd' ? 'terminated' : 'joined';
  let warned = false;
  const fqdn = createFqdn({
    hostname: sys.hostname,
    lookup: sys.canonicalName,
    ttlMs: opts.fqdnTtlMs,
    timeoutMs: opts.fqdnTimeoutMs,
    now: sys.now,
    onFallback: (host, reason) => {
      // Once at warn, then debug: the host polls every few seconds.
      (warned ? opts.log?.debug : opts.log?.warn)?.call(opts.log, { op: 'enumerate', pool: 2, key: 'FullyQualifiedDomainName', host, reason }, 'no canonical name; reporting the hostname');
      warned = true;
    },
  });
  let os: OsInfo | undefined;
  const osValue = (k: keyof OsInfo) => () => (os ??= osInfo(flavor, sys.osFacts()))[k];

  const addresses = (family: 4 | 6) => () => {
    const found = flattenInterfaces(sys.networkInterfaces()).filter((a) => a.family === family && !a.loopback && (linkLocal || !isLinkLocal6(a.address)));
    const items = byInterfaceIndex(found, sys.ifIndex).map((a) => a.address);
    const { text, dropped } = fitList(items, style, VALUE_LIMIT);
    if (dropped) opts.log?.debug({ op: 'enumerate', pool: 2, key: `NetworkAddressIPv${family}`, dropped }, 'address list cut to fit the value field');
    return text;
  };

  const values: Record<IntrinsicKey, () => string | Promise<string>> = {
    FullyQualifiedDomainName: fqdn,
    IntegrationServicesVersion: () =>
      flavor === 'freebsd' ? `hvguest ${sys.packageVersion()}` : (opts.version?.() ?? UNKNOWN_VERSION),
    NetworkAddressIPv4: addresses(4),
    NetworkAddressIPv6: addresses(6),
    OSBuildNumber: osValue('osBuildNumber'),
    OSName: osValue('osName'),
    OSMajorVersion: osValue('osMajorVersion'),
    OSMinorVersion: osValue('osMinorVersion'),
    OSVersion: osValue('osVersion'),
    ProcessorArchitecture: osValue('processorArchitecture'),
  };

  return {
    async at(index) {
      const key = Number.isInteger(index) ? INTRINSIC_KEYS[index] : undefined;
      if (key === undefined) return undefined;
      try {
        return { key, value: fitText(await values[key](), VALUE_LIMIT) };
      } catch (e) {
        // An unreadable fact is an empty value, not a failed ENUMERATE walk.
        opts.log?.warn({ op: 'enumerate', pool: 2, key, err: e instanceof Error ? e.message : String(e) }, 'intrinsic value unavailable');
        return { key, value: '' };
      }
    },
  };
}

/**
 * `addrs` in the order the kernel dumps one family's addresses, which is
 * the order getifaddrs() and the C daemons list them in: by interface
 * index, and within an interface as given. os.networkInterfaces() instead
 * groups them by interface in order of first appearance across both
 * families, so an interface with only IPv6 addresses would come after all
 * interfaces that have IPv4 ones. A stable sort; interfaces without a known
 * index keep their place after the known ones.
 */
export function byInterfaceIndex<T extends { iface: string }>(addrs: readonly T[], ifIndex: (name: string) => number | undefined): T[] {
  const cache = new Map<string, number>();
  const key = (name: string) => {
    let k = cache.get(name);
    if (k === undefined) cache.set(name, (k = ifIndex(name) ?? Number.MAX_SAFE_INTEGER));
    return k;
  };
  return [...addrs].sort((a, b) => key(a.iface) - key(b.iface));
}

/** Linux: /sys/class/net/NAME/ifindex; undefined elsewhere or when unreadable. */
function sysfsIfIndex(name: string): number | undefined {
  if (process.platform !== 'linux' || name.includes('/') || name === '.' || name === '..') return undefined;
  const n = Number(readText(`/sys/class/net/${name}/ifindex`)?.trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** The real system, for one flavor. */
function defaultSys(): IntrinsicsSys {
  const getent = ['/usr/bin/getent', '/bin/getent'].find((p) => existsSync(p)) ?? '/usr/bin/getent';
  return {
    hostname,
    networkInterfaces,
    ifIndex: sysfsIfIndex,
    osFacts: () => ({ sysname: osType(), release: release(), machine: machine(), readFile: readText }),
    // getent's dialect is the running system's, whatever flavor is spoken.
    canonicalName: getentLookup(runProgram, process.platform === 'freebsd' ? 'freebsd' : 'linux', getent),
    packageVersion: hvguestVersion,
    now: Date.now,
  };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

let pkgVersion: string | undefined;

/** hvguest's version from the nearest package.json named "hvguest" (source tree or dist/). */
export function hvguestVersion(): string {
  if (pkgVersion !== undefined) return pkgVersion;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const text = readText(join(dir, 'package.json'));
    if (text !== undefined) {
      try {
        const pkg = JSON.parse(text) as { name?: string; version?: string };
        if (pkg.name === 'hvguest' && pkg.version) return (pkgVersion = pkg.version);
      } catch {
        // not JSON: keep looking upward
      }
    }
    dir = dirname(dir);
  }
  return (pkgVersion = 'unknown');
}
