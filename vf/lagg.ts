/**
 * Which lagg(4) carries an hn: the one that has it as a port, else the
 * lagg with hn's unit number (hyperv_vfup's naming). A laggN that exists
 * without hn as a port and without our ownership mark belongs to someone
 * else and is never touched (pitfalls F34): a new lagg with the next free
 * unit is created instead.
 */
import type { IfconfigBlock } from '../kvp/net-links.js';

/** The description `vf up` puts on the laggs it creates: ownership, visible in ifconfig and gone with the lagg. */
export const ownerMark = (hn: string): string => `hvguest-vf:${hn}`;

export interface LaggChoice {
  /** The lagg to use; undefined: create one with the next free unit (`ifconfig lagg create`). */
  name: string | undefined;
  exists: boolean;
  /** Created by `vf up` for this hn (description is ownerMark). */
  owned: boolean;
  ports: string[];
  /** laggport with the ACTIVE flag, "" when none. */
  active: string;
  /** An existing laggN that is not ours and was left alone. */
  foreign?: string;
}

/** Pick the lagg for hn (unit = hn's unit) from parsed `ifconfig -a`. */
export function chooseLagg(blocks: readonly IfconfigBlock[], hn: string, unit: string): LaggChoice {
  const info = (b: IfconfigBlock): LaggChoice => ({
    name: b.name,
    exists: true,
    owned: b.description === ownerMark(hn),
    ports: b.laggports.map((p) => p.name),
    active: b.laggports.find((p) => p.flags.includes('ACTIVE'))?.name ?? '',
  });
  const holder = blocks.find((b) => b.laggports.some((p) => p.name === hn));
  if (holder) return info(holder);
  const preferred = `lagg${unit}`;
  const b = blocks.find((x) => x.name === preferred);
  if (!b) return { name: preferred, exists: false, owned: false, ports: [], active: '' };
  if (b.description === ownerMark(hn)) return info(b);
  return { name: undefined, exists: false, owned: false, ports: [], active: '', foreign: preferred };
}
