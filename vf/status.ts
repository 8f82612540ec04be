/**
 * `vf status`: for every hn(4), the VF mode, its paired VF, the lagg that
 * carries it, the lagg's active port, and which interfaces hold addresses
 * (read-only: sysctl and one `ifconfig -a`).
 */
import { parseIfconfigBlocks, type IfconfigBlock } from '../kvp/net-links.js';
import { isLinkLocal6 } from '../kvp/net-addrs.js';
import { chooseLagg } from './lagg.js';
import { detectMode } from './mode.js';
import { HN_RE, ifconfigAll, sysctlValue, type VfDeps } from './system.js';

export interface HnStatus {
  hn: string;
  mode: 'transparent' | 'non-transparent';
  /** hw.hn.vf_transparent exists (false: old kernel, counted as non-transparent). */
  modeKnob: boolean;
  /** dev.hn.N.vf: the paired VF, "" when none. */
  vf: string;
  /** The VF interface exists in ifconfig. */
  vfPresent: boolean;
  /** The lagg with hn as a port, null when none. */
  lagg: string | null;
  /** The lagg was created by `vf up` (description hvguest-vf:hnN). */
  laggOwned: boolean;
  laggPorts: string[];
  /** The port the failover lagg uses now, "" when none. */
  activePort: string;
  /** Addresses other than link-local, per interface among hn, the VF and the lagg. */
  addresses: Record<string, string[]>;
  /** Where the configuration lives: the interfaces with such addresses. */
  configuredOn: string[];
}

const globalAddrs = (b: IfconfigBlock | undefined): string[] =>
  b ? [...b.inet.map((a) => a.address), ...b.inet6.filter((a) => !isLinkLocal6(a.address)).map((a) => `${a.address}/${a.prefixlen}`)] : [];

/** Collect the status of every hn interface. */
export async function vfStatus(d: VfDeps): Promise<HnStatus[]> {
  const mode = await detectMode(d);
  const blocks = parseIfconfigBlocks(await ifconfigAll(d));
  const out: HnStatus[] = [];
  for (const b of blocks) {
    const m = HN_RE.exec(b.name);
    if (!m) continue;
    const vf = (await sysctlValue(d, `dev.hn.${m[1]}.vf`)) ?? '';
    const l = chooseLagg(blocks, b.name, m[1]!);
    const lagg = l.exists && l.ports.includes(b.name) ? l.name! : null;
    const addresses: Record<string, string[]> = {};
    for (const name of [b.name, vf, lagg]) {
      if (!name || name in addresses) continue;
      addresses[name] = globalAddrs(blocks.find((x) => x.name === name));
    }
    out.push({
      hn: b.name,
      mode: mode.transparent ? 'transparent' : 'non-transparent',
      modeKnob: mode.knob,
      vf,
      vfPresent: vf !== '' && blocks.some((x) => x.name === vf),
      lagg,
      laggOwned: lagg !== null && l.owned,
      laggPorts: lagg ? l.ports : [],
      activePort: lagg ? l.active : '',
      addresses,
      configuredOn: Object.keys(addresses).filter((k) => addresses[k]!.length > 0),
    });
  }
  return out;
}

/** One line per hn: `hn0 non-transparent vf=mce0 lagg=lagg0(ours) active=mce0 config=lagg0`. */
export function formatStatus(rows: readonly HnStatus[]): string {
  return rows
    .map((r) => {
      const mode = r.modeKnob ? r.mode : `${r.mode}(no hw.hn.vf_transparent)`;
      const vf = r.vf ? `${r.vf}${r.vfPresent ? '' : '(missing)'}` : '-';
      const lagg = r.lagg ? `${r.lagg}${r.laggOwned ? '(hvguest)' : '(foreign)'}` : '-';
      const addrs = r.configuredOn.map((i) => `${i}[${r.addresses[i]!.join(',')}]`).join(' ') || '-';
      return `${r.hn}\tmode=${mode}\tvf=${vf}\tlagg=${lagg}\tactive=${r.activePort || '-'}\tconfig=${addrs}\n`;
    })
    .join('');
}
