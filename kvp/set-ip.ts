/**
 * SET_IP_INFO (op 5, IP injection; spec/kvp.md section 8): validate the
 * host's request, find the interface, write the config file(s) the
 * platform's hv_set_ifconfig expects, run it, and report its real result
 * (pitfall F29: the FreeBSD C daemon always answered success).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IpContext, SetIpRequest } from './types.js';
import type { RunResult } from '../common/os/run.js';
import type { Logger } from '../common/log.js';
import { HV_E_FAIL, HV_GUID_NOTFOUND, HV_INVALIDARG, HV_S_OK, type Flavor } from '../common/wire/constants.js';
import { isIfName, isMac, normalizeGuid, show, validateSetIp, type ValidSetIp } from './ip-validate.js';
import { writeConfigFiles, type ConfigFile } from './ifcfg-atomic.js';
import { IP_DATA_FILE, ipDataText } from './ifcfg-ip-data.js';
import { sysconfigFileName, sysconfigText } from './ifcfg-sysconfig.js';
import { keyfileName, keyfileText } from './ifcfg-keyfile.js';

/** One network interface as the system describes it. */
export interface NetInterface {
  name: string;
  /** Colon-separated MAC text, any case. */
  mac?: string;
  /** VMBus instance GUID of the synthetic NIC (braces and case as the system prints them). */
  vmbusId?: string;
}

/** The facts SET_IP_INFO needs from the machine; injectable for tests and the simulator. */
export interface IpSys {
  interfaces(): Promise<NetInterface[]>;
}

/** IpContext plus the optional seams of IP injection. */
export interface SetIpContext extends IpContext {
  /** Interface facts; default: /sys/class/net on Linux, sysctl dev.hn + ifconfig -a on FreeBSD. */
  sys?: IpSys;
  /** Helper time limit (ms); default HELPER_TIMEOUT_MS of the flavor (below the kernel deadline). */
  helperTimeoutMs?: number;
  /** Extra helper environment (tests point the helper at a fake root with it). */
  helperEnv?: Record<string, string>;
  /** Helper output and timing go here at debug level; the caller logs the outcome. */
  log?: Logger;
}

export interface SetIpResult {
  status: number;
  /** One line for the log: what was done or why not. */
  detail: string;
}

/** The helper's file name inside the helper directory (same on both flavors). */
export const SET_IFCONFIG = 'hv_set_ifconfig';
/**
 * hv_set_ifconfig must finish before the kernel gives up on the request
 * (FreeBSD 5 s, Linux 30 s; spec/devices.md), or the host never learns the
 * real outcome (pitfalls F29, P3) and the daemon's late reply is refused.
 */
export const HELPER_TIMEOUT_MS: Record<Flavor, number> = { freebsd: 4_000, linux: 25_000 };
const HELPER_MAX_OUTPUT = 16 * 1024;

/** Interfaces from a Linux sysfs net directory: name, address, device/device_id (VMBus instance GUID). */
export function sysfsInterfaces(netDir = '/sys/class/net'): IpSys {
  const read = (p: string): string | undefined => {
    try {
      return readFileSync(p, 'utf8').slice(0, 256).trim();
    } catch {
      return undefined;
    }
  };
  return {
    interfaces: async () =>
      readdirSync(netDir)
        .filter(isIfName)
        .map((name) => ({ name, mac: read(join(netDir, name, 'address')), vmbusId: read(join(netDir, name, 'device', 'device_id')) })),
  };
}

/** Ether addresses per interface from `ifconfig -a` output. */
export function parseIfconfigEther(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const head = /^([^\s:]+): flags=/.exec(line);
    if (head) current = head[1];
    const ether = /^\s+ether\s+([0-9a-fA-F:]+)/.exec(line);
    if (ether && current && !out.has(current)) out.set(current, ether[1]!);
  }
  return out;
}

/** VMBus instance GUID per hn unit from `sysctl dev.hn` output (the deviceid= of %pnpinfo). */
export function parseHnPnpinfo(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of text.matchAll(/^dev\.hn\.(\d+)\.%pnpinfo: .*\bdeviceid=(\S+)/gm)) out.set(Number(m[1]), m[2]!);
  return out;
}

/** FreeBSD interface facts; unit N of hn(4) is assumed to be named hnN (a renamed interface has no GUID here). */
export function freebsdInterfaces(ctx: Pick<IpContext, 'run'>): IpSys {
  return {
    interfaces: async () => {
      const [ifc, hn] = await Promise.all([ctx.run('/sbin/ifconfig', ['-a']), ctx.run('/sbin/sysctl', ['dev.hn'])]);
      const ethers = parseIfconfigEther(ifc.stdout);
      const guids = parseHnPnpinfo(hn.stdout);
      const list: NetInterface[] = [...ethers].map(([name, mac]) => ({ name, mac }));
      for (const [unit, vmbusId] of guids) {
        const name = `hn${unit}`;
        const found = list.find((i) => i.name === name);
        if (found) found.vmbusId = vmbusId;
        else list.push({ name, vmbusId });
      }
      return list.filter((i) => isIfName(i.name));
    },
  };
}

/** Pick the interface the request names: by VMBus GUID (case-insensitive, braces optional; pitfall F8) or by name. */
function resolve(v: ValidSetIp, list: NetInterface[]): SetIpResult | NetInterface {
  const a = v.adapter;
  if (a.kind === 'guid') {
    const hit = list.find((i) => i.vmbusId !== undefined && normalizeGuid(i.vmbusId) === a.guid);
    return hit ?? { status: HV_GUID_NOTFOUND, detail: `adapter_id ${a.guid}: no network interface has this VMBus instance id` };
  }
  return list.find((i) => i.name === a.name) ?? { status: HV_E_FAIL, detail: `adapter_id ${show(a.name)}: no such interface` };
}

/** The helper's last non-blank line (stderr first), for the detail. */
function lastLine(r: RunResult): string {
  const last = (t: string) => t.split('\n').filter((l) => l.trim() !== '').pop();
  const l = last(r.stderr) ?? last(r.stdout);
  return l ? `: ${show(l.trim(), 160)}` : '';
}

/** Map the helper's run to a reply: only a clean, in-time exit 0 is success. */
export function helperOutcome(r: RunResult, helper: string, timeoutMs: number, what: string): SetIpResult {
  if (r.error) return { status: HV_E_FAIL, detail: `${helper}: could not run (${r.error})` };
  if (r.timedOut) return { status: HV_E_FAIL, detail: `${helper}: no result within ${timeoutMs} ms; killed` };
  if (r.truncated) return { status: HV_E_FAIL, detail: `${helper}: output over ${HELPER_MAX_OUTPUT} bytes; killed` };
  if (r.code === null) return { status: HV_E_FAIL, detail: `${helper}: killed by ${r.signal ?? 'a signal'}` };
  if (r.code !== 0) return { status: HV_E_FAIL, detail: `${helper}: exit status ${r.code}${lastLine(r)}` };
  return { status: HV_S_OK, detail: `${what}: configured by ${helper}` };
}

/** Handle one SET_IP_INFO request; never throws. Nothing is written or run unless every field is valid. */
export async function setIpInfo(req: SetIpRequest, ctx: SetIpContext): Promise<SetIpResult> {
  const v = validateSetIp(req, ctx.flavor);
  if (!v.ok) return { status: ctx.flavor === 'linux' ? HV_INVALIDARG : HV_E_FAIL, detail: `invalid request: ${v.detail}` };
  let list: NetInterface[];
  try {
    list = await (ctx.sys ?? (ctx.flavor === 'linux' ? sysfsInterfaces() : freebsdInterfaces(ctx))).interfaces();
  } catch (e) {
    return { status: HV_E_FAIL, detail: `list network interfaces: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
  }
  const nic = resolve(v.value, list.filter((i) => isIfName(i.name)));
  if ('status' in nic) return nic;
  const mac = nic.mac ?? '';
  if (!isMac(mac)) return { status: HV_E_FAIL, detail: `${nic.name}: no usable MAC address (${show(mac)})` };

  let files: ConfigFile[];
  let paths: string[];
  try {
    files =
      ctx.flavor === 'freebsd'
        ? [{ name: IP_DATA_FILE, text: ipDataText(v.value, nic.name, mac) }]
        : [
            { name: sysconfigFileName(nic.name), text: sysconfigText(v.value, nic.name, mac) },
            { name: keyfileName(nic.name), text: keyfileText(v.value, nic.name, mac) },
          ];
  } catch (e) {
    return { status: HV_E_FAIL, detail: `build config for ${nic.name}: ${(e as Error).message}` };
  }
  try {
    paths = writeConfigFiles(ctx.configDir, files);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { status: HV_E_FAIL, detail: `write ${files.map((f) => f.name).join(', ')} in ${ctx.configDir}: ${err.code ?? err.message}` };
  }

  const helper = join(ctx.helperDir, SET_IFCONFIG);
  const timeoutMs = ctx.helperTimeoutMs ?? HELPER_TIMEOUT_MS[ctx.flavor];
  let r: RunResult;
  try {
    r = await ctx.run(helper, paths, { timeoutMs, maxOutput: HELPER_MAX_OUTPUT, ...(ctx.helperEnv ? { env: ctx.helperEnv } : {}) });
  } catch (e) {
    return { status: HV_E_FAIL, detail: `${helper}: could not run (${String(e)})` };
  }
  ctx.log?.debug({ op: 'set_ip_info', ifname: nic.name, code: r.code, ms: r.ms, stdout: r.stdout, stderr: r.stderr }, 'hv_set_ifconfig finished');
  return helperOutcome(r, helper, timeoutMs, `${nic.name} (${mac.toUpperCase()})`);
}
