/**
 * The KVP service: the pool store, intrinsics and IP functions wired into
 * the shared serve loop on the KVP device. hv_kvp_daemon runs it alone,
 * hvguestd beside VSS; both take its options from kvpOptions().
 */
import { Option } from 'commander';
import type { Logger } from 'pino';
import { EX_CANTCREAT, StartupError, deviceStartupFailure } from '../common/daemon.js';
import { ffiDeviceFactory } from '../common/device/ffi-device.js';
import type { FreezeGate } from '../common/freeze-gate.js';
import { runProgram } from '../common/os/run.js';
import type { Service } from '../common/service.js';
import { kvpProtocol } from '../common/serve/kvp.js';
import { serve } from '../common/serve/loop.js';
import type { Flavor } from '../common/wire/constants.js';
import { KVP_DEFAULTS } from './defaults.js';
import { createKvpHandler } from './handlers.js';
import { createIntrinsics } from './intrinsics.js';
import { openPoolStore } from './pool-store.js';

/** What the KVP service reads from the command line. */
export interface KvpServiceOpts {
  flavor: Flavor;
  debug: boolean;
  device?: string;
  poolDir?: string;
  helperDir?: string;
  configDir?: string;
  sysfsNet?: string;
}

/** "X on FreeBSD, Y on Linux" for a default path. */
const both = (k: keyof typeof KVP_DEFAULTS.linux) => `${KVP_DEFAULTS.freebsd[k]} on FreeBSD, ${KVP_DEFAULTS.linux[k]} on Linux`;

/** The KVP service's options, each long name preceded by `prefix` ('' for hv_kvp_daemon, 'kvp-' for hvguestd). */
export function kvpOptions(prefix: string): Option[] {
  const p = prefix;
  return [
    new Option(`--${p}device <PATH>`, `the KVP device node (default: ${both('device')})`),
    new Option(`--${p}pool-dir <DIR>`, `pool files .kvp_pool_0..4 (default: ${both('poolDir')})`),
    new Option(`--${p}helper-dir <DIR>`, `helper scripts hv_get_dns_info, hv_get_dhcp_info, hv_set_ifconfig (default: ${both('helperDir')})`),
    new Option(`--${p}config-dir <DIR>`, `where IP injection writes its config files (default: ${both('configDir')})`),
    new Option(`--${p}sysfs-net <DIR>`, 'Linux: where IP injection looks up network interfaces by VMBus id (default: /sys/class/net; for containers and tests)'),
  ];
}

/**
 * The KVP service. With `gate`, every request runs inside it, so that a
 * freeze by a VSS service of the same process never meets a pool write.
 */
export function createKvpService(o: KvpServiceOpts, log: Logger, gate?: FreezeGate): Service {
  const paths = KVP_DEFAULTS[o.flavor];
  return {
    name: 'kvp',
    async run(signal, onReady) {
      const poolDir = o.poolDir ?? paths.poolDir;
      let store: ReturnType<typeof openPoolStore>;
      try {
        store = openPoolStore({ dir: poolDir, flavor: o.flavor, log });
      } catch (e) {
        throw new StartupError(`cannot open the pools in ${poolDir}: ${e instanceof Error ? e.message : String(e)}`, EX_CANTCREAT);
      }
      // Load every pool before registering, so no request after a start pays for reading a large pool
      // (the FreeBSD kernel gives a request 5 s), and report their sizes (pitfall P23).
      for (let pool = 0; pool < 5; pool++) {
        try {
          const i = store.info(pool);
          log.info({ op: 'open', pool, records: i.records, bytes: i.bytes, ...(i.unusable ? { unusable: i.unusable } : {}) }, 'pool loaded');
        } catch (e) {
          log.error({ op: 'open', pool }, `pool ${pool} unusable: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      try {
        let version: string | undefined;
        const ipCtx = { flavor: o.flavor, helperDir: o.helperDir ?? paths.helperDir, configDir: o.configDir ?? paths.configDir, run: runProgram };
        const handler = createKvpHandler({
          flavor: o.flavor,
          store,
          intrinsics: createIntrinsics({ flavor: o.flavor, version: () => version }),
          // IP information is rare (the host asks per adapter, now and then): its modules load on first use,
          // which keeps start-up time and idle memory down.
          getIpInfo: async (req) => (await import('./ip-info.js')).getIpInfo(req, { ...ipCtx, log }),
          setIpInfo: async (req) => {
            const m = await import('./set-ip.js');
            return m.setIpInfo(req, { ...ipCtx, log, ...(o.sysfsNet ? { sys: m.sysfsInterfaces(o.sysfsNet) } : {}) });
          },
          log,
          debug: o.debug,
        });
        let reported = false;
        const end = await serve({
          device: ffiDeviceFactory({ path: o.device ?? paths.device, flavor: o.flavor, service: 'kvp' }),
          protocol: kvpProtocol(o.flavor),
          handler: gate ? (m) => gate.during(() => handler(m)) : handler,
          log,
          signal,
          onRegistered: (reg) => {
            version = reg.version ?? version;
            if (!reported) {
              reported = true;
              onReady();
            }
          },
        });
        if (end.reason === 'fatal') throw deviceStartupFailure(end.error, 'KVP');
      } finally {
        store.close();
      }
    },
  };
}
