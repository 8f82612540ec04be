/**
 * hv_kvp_daemon: answers the Hyper-V host's Key-Value Pair requests. The
 * composition root: reads argv, wires the device, pool store, intrinsics
 * and IP functions into the shared daemon loop, handles signals, exits.
 */
import { Option } from 'commander';
import type { Logger } from 'pino';
import { EX_USAGE, daemonCommand, parseArgs, reportParseFailure } from '../common/cli.js';
import {
  EX_CANTCREAT,
  EX_NOPERM,
  EX_OK,
  EX_TEMPFAIL,
  EX_UNAVAILABLE,
  StartupError,
  deviceStartupFailure,
  isDetachedChild,
  reportStartup,
  runDaemonMain,
  stopSignal,
  writePidfile,
} from '../common/daemon.js';
import { ffiDeviceFactory } from '../common/device/ffi-device.js';
import { runProgram } from '../common/os/run.js';
import { kvpProtocol } from '../common/serve/kvp.js';
import { serve } from '../common/serve/loop.js';
import type { Flavor } from '../common/wire/constants.js';
import { KVP_DEFAULTS, runningFlavor } from './defaults.js';
import { createKvpHandler } from './handlers.js';
import { createIntrinsics } from './intrinsics.js';
import { getIpInfo } from './ip-info.js';
import { openPoolStore } from './pool-store.js';
import { setIpInfo, sysfsInterfaces } from './set-ip.js';

const NAME = 'hv_kvp_daemon';

interface Opts {
  foreground: boolean;
  debug: boolean;
  flavor: Flavor;
  device?: string;
  poolDir?: string;
  helperDir?: string;
  configDir?: string;
  pidfile?: string;
  sysfsNet?: string;
}

/** "X on FreeBSD, Y on Linux" for a default path. */
const both = (k: keyof typeof KVP_DEFAULTS.linux) => `${KVP_DEFAULTS.freebsd[k]} on FreeBSD, ${KVP_DEFAULTS.linux[k]} on Linux`;

function command() {
  const f = runningFlavor();
  return daemonCommand(NAME, "Answer the Hyper-V host's Key-Value Pair (Data Exchange) requests.")
    .addOption(new Option('--flavor <FLAVOR>', 'kernel interface to speak (default: the running OS)').choices(['freebsd', 'linux']).default(f))
    .option('--device <PATH>', `the KVP device node (default: ${both('device')})`)
    .option('--pool-dir <DIR>', `pool files .kvp_pool_0..4 (default: ${both('poolDir')})`)
    .option('--helper-dir <DIR>', `helper scripts hv_get_dns_info, hv_get_dhcp_info, hv_set_ifconfig (default: ${both('helperDir')})`)
    .option('--config-dir <DIR>', `where IP injection writes its config files (default: ${both('configDir')})`)
    .option('--pidfile <PATH>', `pidfile when detached (default: ${both('pidfile')})`)
    .option('--sysfs-net <DIR>', 'Linux: where IP injection looks up network interfaces by VMBus id (default: /sys/class/net; for containers and tests)')
    .addHelpText(
      'after',
      `
Without -n the daemon detaches; the command returns 0 once the daemon has
registered with the device. Logs go to syslog when detached, to stderr with -n.
Exit status: 0 stopped by SIGTERM/SIGINT/SIGHUP; ${EX_USAGE} usage error;
${EX_UNAVAILABLE} no KVP device (driver not loaded, or not a Hyper-V guest);
${EX_CANTCREAT} pool directory or pidfile cannot be created, or the pool directory
is world-writable (refused); ${EX_TEMPFAIL} another
instance is running; ${EX_NOPERM} permission denied (run as root); 1 other errors.`,
    );
}


async function runDaemon(o: Opts, log: Logger): Promise<number> {
  const paths = { ...KVP_DEFAULTS[o.flavor] };
  const device = o.device ?? paths.device;
  const removePidfile = isDetachedChild() ? writePidfile(o.pidfile ?? paths.pidfile) : () => {};
  const stop = stopSignal((sig) => log.info({ op: 'stop', signal: sig }, 'stopping'));
  let store: ReturnType<typeof openPoolStore> | undefined;
  try {
    try {
      store = openPoolStore({ dir: o.poolDir ?? paths.poolDir, flavor: o.flavor, log });
    } catch (e) {
      throw new StartupError(`cannot open the pools in ${o.poolDir ?? paths.poolDir}: ${e instanceof Error ? e.message : String(e)}`, EX_CANTCREAT);
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
    let version: string | undefined;
    const ipCtx = { flavor: o.flavor, helperDir: o.helperDir ?? paths.helperDir, configDir: o.configDir ?? paths.configDir, run: runProgram };
    const handler = createKvpHandler({
      flavor: o.flavor,
      store,
      intrinsics: createIntrinsics({ flavor: o.flavor, version: () => version }),
      getIpInfo: (req) => getIpInfo(req, { ...ipCtx, log }),
      setIpInfo: (req) => setIpInfo(req, { ...ipCtx, log, ...(o.sysfsNet ? { sys: sysfsInterfaces(o.sysfsNet) } : {}) }),
      log,
      debug: o.debug,
    });
    let reported = false;
    const end = await serve({
      device: ffiDeviceFactory({ path: device, flavor: o.flavor, service: 'kvp' }),
      protocol: kvpProtocol(o.flavor),
      handler,
      log,
      signal: stop.signal,
      onRegistered: (reg) => {
        version = reg.version ?? version;
        if (!reported) {
          reported = true;
          reportStartup({ ok: true });
        }
      },
    });
    if (end.reason === 'fatal') throw deviceStartupFailure(end.error, 'KVP');
    return EX_OK;
  } finally {
    stop.off();
    store?.close();
    removePidfile();
  }
}

/** Run hv_kvp_daemon with argv (without node and script); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs<Opts>(command(), argv);
  if (!parsed.ok) return reportParseFailure(parsed);
  const o = parsed.opts;
  return runDaemonMain(NAME, o, (log) => runDaemon(o, log));
}
