/** Where the VSS daemon finds things by default, per flavor. */
import type { Flavor } from '../common/wire/constants.js';

export interface VssPaths {
  device: string;
  pidfile: string;
  /** What is frozen, for startup thaw and `hvctl vss status`; on a memory file system, never one that may be frozen. */
  stateFile: string;
  hooksDir: string;
  /** syslog ident of the C daemon. */
  ident: string;
}

export const VSS_DEFAULTS: Record<Flavor, VssPaths> = {
  freebsd: {
    device: '/dev/hv_fsvss_dev',
    pidfile: '/var/run/hv_vss_daemon.pid',
    stateFile: '/var/run/hv_vss_daemon.state',
    hooksDir: '/usr/local/etc/hyperv/vss.d',
    ident: 'HV_VSS',
  },
  linux: {
    device: '/dev/vmbus/hv_vss',
    pidfile: '/run/hv_vss_daemon.pid',
    stateFile: '/run/hv_vss_daemon.state',
    hooksDir: '/etc/hyperv/vss.d',
    ident: 'Hyper-V VSS',
  },
};

/**
 * Default watchdog: how long the daemon keeps file systems frozen without a
 * THAW. The host commits its snapshot within seconds; FreeBSD's kernel gives
 * the whole request chain 15 s, Linux waits 30 s for a THAW reply. 10 s stays
 * below both and far above a normal commit.
 */
export const DEFAULT_FREEZE_TIMEOUT_S = 10;
/**
 * Per-hook timeout. Hooks run inside the host's request: FreeBSD gives the
 * whole chain 15 s and Linux 30 s per request, so one slow hook at 30 s
 * would make the reply late (the host then sees failure). 5 s leaves room
 * for a couple of hooks and the freeze itself.
 */
export const DEFAULT_HOOK_TIMEOUT_S = 5;
/** FreeBSD: a FREEZE that took longer than this was answered too late for the 15 s kernel deadline (pitfall F15). */
export const FREEBSD_REPLY_DEADLINE_MS = 14_000;

/** The flavor of the running OS. */
export const runningFlavor = (): Flavor => (process.platform === 'freebsd' ? 'freebsd' : 'linux');
