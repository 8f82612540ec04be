/**
 * Linux ifcfg-IF (initscripts style), as the C daemon writes it to
 * /var/lib/hyperv (spec/kvp.md 8.2 step 3), so distribution helpers that
 * read it keep working. Numbering follows the C code exactly:
 * IPADDR0.., NETMASK0.. per IPv4 item; IPV6ADDR, IPV6ADDR_1.. and
 * IPV6NETMASK, IPV6NETMASK_1.. per IPv6 item; GATEWAY, GATEWAY1..;
 * IPV6_DEFAULTGW, IPV6_DEFAULTGW_1..; DNS1.. shared by both families.
 * IPv6 addresses are written fully expanded. Values are validated
 * addresses and names only, so the file is safe to source.
 */
import { CONFIG_HEADER } from './ifcfg-atomic.js';
import { expandIPv6, prefixToMask, type IpAddr, type ValidSetIp } from './ip-validate.js';

/** ifcfg file name for an interface. */
export const sysconfigFileName = (ifName: string): string => `ifcfg-${ifName}`;

/** Counter-suffixed key names per family, as the C process_ip_string() builds them. */
class Numbering {
  private v4 = 0;
  private v6 = 0;
  constructor(
    private readonly v4Key: (n: number) => string,
    private readonly v6Key: (n: number) => string,
  ) {}
  next(family: 4 | 6): string {
    return family === 4 ? this.v4Key(this.v4++) : this.v6Key(this.v6++);
  }
}

const v6Suffixed = (base: string) => (n: number) => (n === 0 ? base : `${base}_${n}`);
const addrText = (a: IpAddr): string => (a.family === 4 ? a.text : expandIPv6(a.text));

/** Text of ifcfg-IF for a validated request; `mac` is written upper-case like the C daemon. */
export function sysconfigText(req: ValidSetIp, ifName: string, mac: string): string {
  const lines = [`HWADDR=${mac.toUpperCase()}`, `DEVICE=${ifName}`, `BOOTPROTO=${req.dhcp ? 'dhcp' : 'none'}`];
  const ip = new Numbering((n) => `IPADDR${n}`, v6Suffixed('IPV6ADDR'));
  for (const a of req.addresses) lines.push(`${ip.next(a.family)}=${addrText(a)}`);
  const mask = new Numbering((n) => `NETMASK${n}`, v6Suffixed('IPV6NETMASK'));
  for (const a of req.addresses) lines.push(`${mask.next(a.family)}=${a.family === 4 ? prefixToMask(a.prefix) : a.prefix}`);
  // The first IPv4 gateway has no number (GATEWAY, then GATEWAY1): C's "i == 0" special case.
  const gw = new Numbering((n) => (n === 0 ? 'GATEWAY' : `GATEWAY${n}`), v6Suffixed('IPV6_DEFAULTGW'));
  for (const g of req.gateways) lines.push(`${gw.next(g.family)}=${addrText(g)}`);
  req.dns.forEach((d, i) => lines.push(`DNS${i + 1}=${addrText(d)}`));
  return CONFIG_HEADER + lines.map((l) => `${l}\n`).join('');
}
