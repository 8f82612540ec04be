/**
 * Linux IF.nmconnection: a NetworkManager keyfile in the Mar 2024 layout of
 * the C daemon (spec/kvp.md 8.2 step 4; pitfall L20): [connection]
 * interface-name, [ethernet] mac-address, then an [ipv4] and an [ipv6]
 * section, each with addressN=ip/plen for the items of its family,
 * method, gateway and dns.
 *
 * Two things follow nm-settings-keyfile(5) rather than the C code:
 * - dns is a GKeyFile list, "a;b;" (NetworkManager splits on ";" and
 *   inet_pton()s each item, so the C daemon's "a,b" is one invalid server);
 * - gateway is the first gateway of the family (the property holds one
 *   address; "a,b" would make the whole profile invalid). Further gateways
 *   are still in ifcfg-IF.
 * "type=ethernet" is written so the profile does not depend on
 * NetworkManager guessing the type from the [ethernet] section. Gateway and
 * DNS are left out when the family's method is "disabled", which
 * NetworkManager refuses in combination with them.
 */
import { CONFIG_HEADER } from './ifcfg-atomic.js';
import type { IpFamily, ValidSetIp } from './ip-validate.js';

/** Keyfile name for an interface. */
export const keyfileName = (ifName: string): string => `${ifName}.nmconnection`;

function section(req: ValidSetIp, family: IpFamily): string[] {
  const addrs = req.addresses.filter((a) => a.family === family);
  const lines = [`[ipv${family}]`];
  addrs.forEach((a, i) => lines.push(`address${i + 1}=${a.text}/${a.prefix}`));
  // dhcp_enabled is an IPv4 flag; IPv6 without addresses falls back to SLAAC/DHCPv6 ("auto").
  const method = family === 4 ? (req.dhcp ? 'auto' : addrs.length ? 'manual' : 'disabled') : addrs.length ? 'manual' : 'auto';
  lines.push(`method=${method}`);
  if (method === 'disabled') return lines;
  const gw = req.gateways.find((g) => g.family === family);
  if (gw) lines.push(`gateway=${gw.text}`);
  const dns = req.dns.filter((d) => d.family === family);
  if (dns.length) lines.push(`dns=${dns.map((d) => `${d.text};`).join('')}`);
  return lines;
}

/** Text of IF.nmconnection for a validated request; `mac` is written upper-case like the C daemon. */
export function keyfileText(req: ValidSetIp, ifName: string, mac: string): string {
  const blocks = [
    ['[connection]', 'type=ethernet', `interface-name=${ifName}`],
    ['[ethernet]', `mac-address=${mac.toUpperCase()}`],
    section(req, 4),
    section(req, 6),
  ];
  return CONFIG_HEADER + blocks.map((b) => `\n${b.join('\n')}\n`).join('');
}
