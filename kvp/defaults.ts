/** Where the KVP daemon finds things by default, per flavor (spec/kvp.md sections 1 and 7, spec/wire.md section 2). */
import type { Flavor } from '../common/wire/constants.js';

export interface KvpPaths {
  device: string;
  poolDir: string;
  /** Helper scripts: hv_get_dns_info, hv_get_dhcp_info, hv_set_ifconfig. */
  helperDir: string;
  /** Where SET_IP_INFO writes the files it hands to hv_set_ifconfig (never on the pool's own path: pitfall F16). */
  configDir: string;
  pidfile: string;
}

export const KVP_DEFAULTS: Record<Flavor, KvpPaths> = {
  freebsd: {
    device: '/dev/hv_kvp_dev',
    poolDir: '/var/db/hyperv/pool',
    helperDir: '/usr/local/libexec/hyperv',
    configDir: '/var/db/hyperv',
    pidfile: '/var/run/hv_kvp_daemon.pid',
  },
  linux: {
    device: '/dev/vmbus/hv_kvp',
    poolDir: '/var/lib/hyperv',
    helperDir: '/usr/libexec/hypervkvpd',
    configDir: '/var/lib/hyperv',
    pidfile: '/run/hv_kvp_daemon.pid',
  },
};

/** The flavor of the running OS. */
export const runningFlavor = (): Flavor => (process.platform === 'freebsd' ? 'freebsd' : 'linux');
