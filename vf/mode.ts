/**
 * Which VF mode the kernel runs (vf.md section 1): transparent (hn(4)
 * steers traffic itself, the default) or non-transparent (a failover lagg
 * built by `vf up` does). Kernels older than the transparent mode have no
 * hw.hn.vf_transparent and are non-transparent.
 */
import { sysctlValue, type VfDeps } from './system.js';

export interface VfMode {
  transparent: boolean;
  /** hw.hn.vf_transparent exists; false on old kernels (and when hn(4) is not loaded). */
  knob: boolean;
}

/** Read hw.hn.vf_transparent: non-zero is transparent; missing or unparsable counts as 0, as hyperv_vfattach does. */
export async function detectMode(d: VfDeps): Promise<VfMode> {
  const v = await sysctlValue(d, 'hw.hn.vf_transparent');
  if (v === undefined) return { transparent: false, knob: false };
  const n = Number.parseInt(v, 10);
  return { transparent: Number.isFinite(n) && n !== 0, knob: true };
}
