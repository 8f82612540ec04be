/**
 * `vf up HNIF`, devd's action on HYPERV_NIC_VF/VF_UP (vf.md section 6):
 * make sure a failover lagg(4) with hn and its VF as ports carries hn's
 * IPv4 and IPv6 configuration.
 *
 * Idempotent: when the lagg exists only missing ports are added (the VF
 * comes back after a live migration); a second run changes nothing.
 * Races end quietly: hn or its VF gone before we run is outcome 'gone' or
 * 'detached', not an error.
 */
import { succeeded } from '../common/os/run.js';
import { parseIfconfigBlocks, type IfconfigBlock } from '../kvp/net-links.js';
import { isLinkLocal6 } from '../kvp/net-addrs.js';
import { chooseLagg, ownerMark } from './lagg.js';
import { detectMode } from './mode.js';
import { readRcConfig, type IfRcConfig } from './rcconf.js';
import { describeFailure, fillPath, HN_RE, ifconfigAll, must, sysctlValue, VfError, type VfDeps } from './system.js';

export type UpOutcome = 'override' | 'transparent' | 'gone' | 'detached' | 'created' | 'port-added' | 'unchanged';

export interface UpResult {
  outcome: UpOutcome;
  lagg?: string;
  vf?: string;
  /** Exit status of the override hook. */
  code?: number;
}

/** Run the VF-up flow for hnN; throws VfError when a command it needs fails. */
export async function vfUp(d: VfDeps, hn: string): Promise<UpResult> {
  const m = HN_RE.exec(hn);
  if (!m) throw new VfError(`not an hn(4) interface: ${JSON.stringify(hn)}`, 'EINVAL');
  const unit = m[1]!;
  const done = (res: UpResult, msg: string): UpResult => {
    d.log.info({ op: 'vf-up', iface: hn, ...res }, msg);
    return res;
  };

  // The administrator's per-interface hook replaces the whole flow (hyperv_vfup.<hnX>).
  for (const t of d.paths.upOverrides) {
    const hook = fillPath(t, hn);
    if (!d.isExecutable(hook)) continue;
    const r = await d.run(hook, [hn], { timeoutMs: 120_000 });
    if (r.error || r.timedOut) d.log.error({ op: 'vf-up', iface: hn, hook }, describeFailure(hook, [hn], r));
    return done({ outcome: 'override', code: r.code ?? 1 }, `ran override ${hook}`);
  }

  if ((await detectMode(d)).transparent) return done({ outcome: 'transparent' }, 'transparent VF mode: no lagg needed');

  const vf = await sysctlValue(d, `dev.hn.${unit}.vf`);
  if (vf === undefined) return done({ outcome: 'gone' }, `${hn}: no such device`);
  if (vf === '') return done({ outcome: 'detached' }, `${hn}: VF was detached`);

  const blocks = parseIfconfigBlocks(await ifconfigAll(d));
  const hnBlock = blocks.find((b) => b.name === hn);
  if (!hnBlock) return done({ outcome: 'gone', vf }, `${hn}: no such interface`);
  if (!blocks.some((b) => b.name === vf)) return done({ outcome: 'detached', vf }, `${hn}: VF ${vf} was detached`);

  const lagg = chooseLagg(blocks, hn, unit);
  if (lagg.exists) {
    const missing = [hn, vf].filter((p) => !lagg.ports.includes(p));
    if (!missing.length) return done({ outcome: 'unchanged', lagg: lagg.name!, vf }, 'lagg already has hn and the VF');
    for (const p of missing) await must(d, d.paths.ifconfig, [lagg.name!, 'laggport', p]);
    return done({ outcome: 'port-added', lagg: lagg.name!, vf }, `added ${missing.join(', ')} to ${lagg.name}`);
  }

  if (lagg.foreign) d.log.warn({ op: 'vf-up', iface: hn, lagg: lagg.foreign }, `${lagg.foreign} exists and is not ours: using another unit`);
  const name = await createLagg(d, lagg.name);
  await must(d, d.paths.ifconfig, [name, 'description', ownerMark(hn)]);
  // hn first: it is the primary port; the failover protocol moves to the VF while hn reports link down.
  await must(d, d.paths.ifconfig, [name, 'laggproto', 'failover', 'laggport', hn, 'laggport', vf]);
  // The lagg, hn and the VF share one MAC and so one link-local address: DAD would flag it as a duplicate.
  await must(d, d.paths.ifconfig, [name, 'inet6', 'no_dad']);
  await moveConfig(d, hn, hnBlock, name);
  return done({ outcome: 'created', lagg: name, vf }, `${name} created with ${hn} and ${vf}; configuration moved`);
}

/** `ifconfig laggN create`, or `ifconfig lagg create` (prints the name) when laggN is taken by someone else. */
async function createLagg(d: VfDeps, name: string | undefined): Promise<string> {
  const args = [name ?? 'lagg', 'create'];
  const r = await d.run(d.paths.ifconfig, args, { timeoutMs: 10_000 });
  const made = name ?? r.stdout.trim();
  if (!succeeded(r) || !/^lagg\d+$/.test(made)) {
    throw new VfError(`${name ?? 'lagg'} creation failed: ${describeFailure(d.paths.ifconfig, args, r)}`, 'ELAGG');
  }
  return made;
}

const isSet = (v: string) => v !== '' && v.toUpperCase() !== 'NO';
const words = (v: string) => v.split(/\s+/).filter(Boolean);

/** Run a command whose failure is logged but does not stop the flow. */
async function tolerate(d: VfDeps, file: string, args: string[], timeoutMs = 10_000): Promise<void> {
  const r = await d.run(file, args, { timeoutMs });
  if (!succeeded(r)) d.log.warn({ op: 'vf-up' }, describeFailure(file, args, r));
}

/** Stop hn's dhclient (its pid file, newest path first). */
async function stopDhclient(d: VfDeps, hn: string): Promise<void> {
  for (const t of d.paths.dhclientPidfiles) {
    const text = d.readFile(fillPath(t, hn));
    const pid = text?.trim();
    if (!pid || !/^\d+$/.test(pid) || pid === '0' || pid === '1') continue;
    await tolerate(d, d.paths.kill, ['-TERM', pid]);
    return;
  }
}

/**
 * Move hn's IPv4 and IPv6 configuration to the lagg. rc.conf decides what
 * the lagg gets (DHCP, SYNCDHCP, static ifconfig_hnN / ifconfig_hnN_ipv6);
 * addresses hn holds that rc.conf does not describe (set at run time)
 * move as they are. hn keeps only its link-local address.
 */
async function moveConfig(d: VfDeps, hn: string, hnBlock: IfconfigBlock, lagg: string): Promise<void> {
  await stopDhclient(d, hn);
  const rc: IfRcConfig = await readRcConfig(d, hn);
  const v6 = hnBlock.inet6.filter((a) => !isLinkLocal6(a.address));
  for (const a of hnBlock.inet) await must(d, d.paths.ifconfig, [hn, 'inet', a.address, '-alias']);
  for (const a of v6) await must(d, d.paths.ifconfig, [hn, 'inet6', a.address, '-alias']);
  await must(d, d.paths.ifconfig, [lagg, 'up']);

  if (rc.dhcp) {
    // SYNCDHCP: wait for the lease as the boot does; otherwise dhclient backgrounds at once.
    if (rc.syncdhcp) await tolerate(d, d.paths.dhclient, [lagg], 60_000);
    else await tolerate(d, d.paths.dhclient, ['-b', lagg]);
  } else {
    if (rc.ipv4) await must(d, d.paths.ifconfig, [lagg, ...words(rc.ipv4)]);
    else for (const a of hnBlock.inet) await must(d, d.paths.ifconfig, [lagg, 'inet', a.address, ...(a.netmask ? ['netmask', a.netmask] : []), 'alias']);
    if (isSet(rc.defaultrouter)) await tolerate(d, d.paths.route, ['-n', 'add', '-inet', 'default', rc.defaultrouter]);
  }

  if (rc.ipv6) {
    await must(d, d.paths.ifconfig, [lagg, ...words(rc.ipv6)]);
    if (words(rc.ipv6).includes('accept_rtadv')) await tolerate(d, d.paths.rtsol, [lagg]);
  } else {
    for (const a of v6) await must(d, d.paths.ifconfig, [lagg, 'inet6', a.address, 'prefixlen', String(a.prefixlen || 64), 'alias']);
  }
  if (isSet(rc.ipv6Defaultrouter)) await tolerate(d, d.paths.route, ['-n', 'add', '-inet6', 'default', rc.ipv6Defaultrouter]);
}
