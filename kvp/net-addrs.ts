/**
 * Interface addresses as os.networkInterfaces() reports them (getifaddrs
 * through libuv, on both systems), flattened into one list in the order
 * the OS gave them, with the text forms the KVP strings use.
 *
 * libuv lists only interfaces that are up and running, and never an
 * interface without an address; callers that must know every interface
 * (MAC matching) read the link list separately (net-links.ts).
 */
import type { NetworkInterfaceInfo } from 'node:os';

/** One address of one interface. */
export interface IfAddr {
  /** Interface name; Linux address labels ("eth0:1") are folded into their device ("eth0"). */
  iface: string;
  family: 4 | 6;
  /** Text form without a scope suffix ("fe80::1", never "fe80::1%eth0"). */
  address: string;
  /** Dotted mask for IPv4, "ffff:ffff:ffff:ffff::" style for IPv6. */
  netmask: string;
  prefixLen: number;
  /** Loopback (IFF_LOOPBACK). */
  loopback: boolean;
  /** Lower-case colon MAC libuv attached to the address ("00:00:00:00:00:00" when none). */
  mac: string;
}

/** The shape of os.networkInterfaces(). */
export type InterfaceTable = NodeJS.Dict<NetworkInterfaceInfo[]>;

/** Number of one bits in a mask, IPv4 dotted or IPv6 text (the C daemons' popcount). */
export function prefixFromMask(mask: string): number {
  let bits = 0;
  if (mask.includes('.')) {
    for (const part of mask.split('.')) bits += popcount(Number(part) & 0xff);
    return bits;
  }
  for (const group of expand6(mask)) bits += popcount(group);
  return bits;
}

function popcount(n: number): number {
  let c = 0;
  for (let v = n; v; v &= v - 1) c++;
  return c;
}

/** The eight 16-bit groups of an IPv6 address text. */
function expand6(addr: string): number[] {
  const [head = '', tail] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...zeros, ...t].map((g) => parseInt(g, 16) || 0);
}

/** fe80::/10. */
export const isLinkLocal6 = (address: string): boolean => /^fe[89ab][0-9a-f]:/i.test(address);

/** Flatten os.networkInterfaces() output, keeping the OS order. */
export function flattenInterfaces(table: InterfaceTable): IfAddr[] {
  const out: IfAddr[] = [];
  for (const [name, entries] of Object.entries(table)) {
    // Linux reports addresses with a label under the label; the device is
    // the part before ":" (Linux device names cannot contain ":").
    const iface = name.split(':')[0]!;
    for (const e of entries ?? []) {
      // Node 18.0-18.3 reported family as a number; accept both.
      const fam = (e.family as string | number) === 4 || e.family === 'IPv4' ? 4 : 6;
      out.push({
        iface,
        family: fam,
        address: e.address.split('%')[0]!,
        netmask: e.netmask,
        prefixLen: prefixFromMask(e.netmask),
        loopback: e.internal,
        mac: e.mac.toLowerCase(),
      });
    }
  }
  return out;
}
