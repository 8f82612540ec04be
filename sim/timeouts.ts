/**
 * Kernel timeouts per flavor (spec/devices.md sections 1-3), overridable
 * through SimulatorOptions.timeouts.
 */
import type { Flavor } from '../common/wire/constants.js';
import type { SimTimeouts } from './host-api.js';

/** Kernel timeouts in ms by flavor, before SimulatorOptions.timeouts overrides. */
export const DEFAULT_TIMEOUTS: Record<Flavor, SimTimeouts> = {
  // hv_kvp.c tsleep(5 * hz); hv_snapshot.c TIMEOUT_LIMIT 15 s for the whole app + daemon chain.
  freebsd: { kvp: 5_000, vss: 15_000, vssFreeze: 15_000 },
  // HV_UTIL_TIMEOUT 30 s; VSS_FREEZE_TIMEOUT 15 * 60 s.
  linux: { kvp: 30_000, vss: 30_000, vssFreeze: 900_000 },
};

/** The flavor's defaults with the caller's overrides applied. */
export function resolveTimeouts(flavor: Flavor, over?: Partial<SimTimeouts>): SimTimeouts {
  return { ...DEFAULT_TIMEOUTS[flavor], ...over };
}

/** How long the host waits for an answer once the kernel took its packet: the kernel timeout plus 5 s. */
export const HOST_GRACE_MS = 5_000;
