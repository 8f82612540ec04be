/**
 * FreeBSD's hv_set_ip_data: the KEY=VALUE file hv_set_ifconfig reads
 * (spec/kvp.md 8.1 step 3). Same keys in the same order as the C daemon,
 * but every value is validated and single-quoted, and the helper parses the
 * file line by line instead of sourcing it (pitfall F32). Lists are
 * normalised: ";"-joined without spaces or a trailing ";", IPv4 subnets as
 * dotted masks, IPv6 subnets as prefix lengths, so the helper never has to
 * guess a family.
 */
import { CONFIG_HEADER } from './ifcfg-atomic.js';
import { prefixToMask, type ValidSetIp } from './ip-validate.js';

/** The file name inside the config directory (the C daemon wrote /var/db/hypervhv_set_ip_data, pitfall F16). */
export const IP_DATA_FILE = 'hv_set_ip_data';

/** Values may only hold these characters; a single quote can never appear, so '...' needs no escaping. */
const SAFE_VALUE = /^[0-9A-Za-z.:;_-]*$/;

function line(key: string, value: string): string {
  if (!SAFE_VALUE.test(value)) throw new Error(`hv_set_ip_data: unsafe value for ${key}`);
  return `${key}='${value}'\n`;
}

/** Text of hv_set_ip_data for a validated request on interface `ifName` with MAC `mac` (written lowercase, as ether_ntoa does). */
export function ipDataText(req: ValidSetIp, ifName: string, mac: string): string {
  const subnets = req.addresses.map((a) => (a.family === 4 ? prefixToMask(a.prefix) : String(a.prefix)));
  return (
    CONFIG_HEADER +
    line('HWADDR', mac.toLowerCase()) +
    line('IF_NAME', ifName) +
    line('IP_ADDR', req.addresses.map((a) => a.text).join(';')) +
    line('SUBNET', subnets.join(';')) +
    line('GATEWAY', req.gateways.map((a) => a.text).join(';')) +
    line('DNS', req.dns.map((a) => a.text).join(';')) +
    line('DHCP', req.dhcp ? '1' : '0')
  );
}
