/**
 * The platform helper scripts GET_IP_INFO asks for DNS servers and the DHCP
 * state (kvp.md section 7, helper contracts):
 *
 *   hv_get_dns_info [IF]      one server address per line
 *   hv_get_dhcp_info IF...    first line "Enabled" or "Disabled"
 *
 * FreeBSD's daemon runs them as `sh <path>` (they need not be executable)
 * and passes no argument to the DNS helper; Linux's runs the path itself
 * (distro helpers may be bash scripts) and passes the interface to both.
 * Each runs once per request (pitfalls L6, F28), through the Runner: argv
 * only, absolute paths, a timeout.
 */
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { RunResult, Runner } from '../common/os/run.js';
import type { Flavor } from '../common/wire/constants.js';

export const DNS_HELPER = 'hv_get_dns_info';
export const DHCP_HELPER = 'hv_get_dhcp_info';

/** Non-empty trimmed lines; tolerates a missing final newline and CRLF (F23). */
export function helperLines(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

async function runHelper(run: Runner, flavor: Flavor, helperDir: string, name: string, args: string[], timeoutMs: number): Promise<RunResult> {
  const path = join(helperDir, name);
  const r = flavor === 'freebsd' ? await run('/bin/sh', [path, ...args], { timeoutMs }) : await run(path, args, { timeoutMs });
  if (r.error || r.timedOut) throw new Error(`${path}: ${r.error ?? `timed out after ${timeoutMs} ms`}`);
  // Like the C daemons, a status is not a verdict: output is used if there is any.
  if (r.code !== 0 && r.stdout.trim() === '') throw new Error(`${path}: status ${r.code ?? r.signal}: ${r.stderr.trim().slice(0, 200)}`);
  return r;
}

/**
 * DNS servers from hv_get_dns_info, one per output line, as the helper
 * printed them; lines that are not an IP address (a broken resolv.conf,
 * binary noise) never reach the host. Throws, naming a sample, when output
 * had lines but none was an address, so the caller logs it.
 */
export async function dnsServers(run: Runner, flavor: Flavor, helperDir: string, ifname: string, timeoutMs: number): Promise<string[]> {
  const r = await runHelper(run, flavor, helperDir, DNS_HELPER, flavor === 'linux' ? [ifname] : [], timeoutMs);
  const lines = helperLines(r.stdout);
  const addrs = lines.filter((l) => isIP(l) !== 0);
  if (addrs.length === 0 && lines.length > 0) throw new Error(`${join(helperDir, DNS_HELPER)}: no address in its output (first line ${JSON.stringify(lines[0]!.slice(0, 60))})`);
  return addrs;
}

/**
 * DHCP state from hv_get_dhcp_info: true when the first output line starts
 * with "Enabled" (the C daemons' test). `ifnames` is the interface asked
 * about, then (FreeBSD lagg) the synthetic interface whose rc.conf entry
 * the lagg inherited; helpers that take one name read only the first.
 */
export async function dhcpEnabled(run: Runner, flavor: Flavor, helperDir: string, ifnames: string[], timeoutMs: number): Promise<boolean> {
  const r = await runHelper(run, flavor, helperDir, DHCP_HELPER, ifnames, timeoutMs);
  return r.stdout.split('\n')[0]!.startsWith('Enabled');
}
