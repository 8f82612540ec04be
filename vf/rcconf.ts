/**
 * The rc configuration of one interface, read by the system's own rc
 * machinery: /bin/sh sources rc.subr and network.subr, loads the netif
 * and network configuration (rc.conf, rc.conf.local, rc.conf.d as at
 * boot) and prints what dhcpif, syncdhcpif and ifconfig_getargs answer.
 * The shell program is a constant; the interface name travels as a
 * positional parameter, never inside the program text.
 */
import { IFNAME_RE, must, VfError, type VfDeps } from './system.js';

/** What `vf` needs from rc.conf for one interface. */
export interface IfRcConfig {
  /** hyperv_vf_delay as written ("" when unset). */
  vfDelay: string;
  /** dhcpif: ifconfig_IF says DHCP, SYNCDHCP or NOSYNCDHCP. */
  dhcp: boolean;
  /** syncdhcpif: dhclient runs in the foreground. */
  syncdhcp: boolean;
  /** ifconfig_getargs IF: the static ifconfig arguments, DHCP keywords removed ("" when none). */
  ipv4: string;
  /** ifconfig_getargs IF ipv6: ifconfig_IF_ipv6 ("" when none). */
  ipv6: string;
  /** defaultrouter and ipv6_defaultrouter ("" or "NO" when unset). */
  defaultrouter: string;
  ipv6Defaultrouter: string;
}

/**
 * The rc shell program. Output format (parsed by parseRcOutput): one
 * `key=value` line per field, values on one line (ifconfig_getargs and
 * echo collapse whitespace). rc.subr and network.subr expect plain sh:
 * no -e, no -u.
 */
export const RC_PROGRAM = `rc_subr=$1; network_subr=$2; ifn=$3
case $ifn in '' | *[!A-Za-z0-9_.]*) echo "bad interface name" >&2; exit 64 ;; esac
. "$rc_subr" || exit 70
. "$network_subr" || exit 70
load_rc_config netif
load_rc_config network
echo "hyperv_vf_delay=\${hyperv_vf_delay-}"
if dhcpif "$ifn"; then echo "dhcp=1"; else echo "dhcp=0"; fi
if syncdhcpif "$ifn"; then echo "syncdhcp=1"; else echo "syncdhcp=0"; fi
echo "ipv4=$(ifconfig_getargs "$ifn")"
echo "ipv6=$(ifconfig_getargs "$ifn" ipv6)"
echo "defaultrouter=\${defaultrouter-}"
echo "ipv6_defaultrouter=\${ipv6_defaultrouter-}"
`;

/** argv for the rc shell: `/bin/sh -c PROGRAM hvguest-rc RC_SUBR NETWORK_SUBR IFNAME`. */
export function rcArgs(d: VfDeps, ifname: string): string[] {
  return ['-c', RC_PROGRAM, 'hvguest-rc', d.paths.rcSubr, d.paths.networkSubr, ifname];
}

/** Parse the rc shell's key=value lines; unknown keys are ignored. */
export function parseRcOutput(text: string): IfRcConfig {
  const v = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) v.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return {
    vfDelay: v.get('hyperv_vf_delay') ?? '',
    dhcp: v.get('dhcp') === '1',
    syncdhcp: v.get('syncdhcp') === '1',
    ipv4: v.get('ipv4') ?? '',
    ipv6: v.get('ipv6') ?? '',
    defaultrouter: v.get('defaultrouter') ?? '',
    ipv6Defaultrouter: v.get('ipv6_defaultrouter') ?? '',
  };
}

/** Read one interface's rc configuration through the rc system. */
export async function readRcConfig(d: VfDeps, ifname: string): Promise<IfRcConfig> {
  if (!IFNAME_RE.test(ifname)) throw new VfError(`not an interface name: ${JSON.stringify(ifname)}`, 'EINVAL');
  const r = await must(d, d.paths.sh, rcArgs(d, ifname), 10_000);
  return parseRcOutput(r.stdout);
}

/** hyperv_vf_delay in seconds: default 2, at least 2 (vf.md section 7). */
export function vfDelaySeconds(text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : 2;
  return Math.max(2, Math.min(n, 3600));
}
