/**
 * hvguestd: the KVP and VSS services in one process, for guests where the
 * memory of two Node processes matters. The composition root: reads argv,
 * builds the enabled services with their options spelled --kvp-* and
 * --vss-*, runs them side by side (common/service.ts), exits.
 *
 * One process means one thread: a KVP pool write that met a frozen file
 * system would block the thread that has to answer THAW. The services
 * share a freeze gate (common/freeze-gate.ts): each KVP request runs
 * inside it, and a freeze waits for the request in flight and holds later
 * ones until the thaw. The gate opens with the thaw itself, before the
 * THAW reply and the thaw hooks that follow it: once the file systems run
 * again a KVP write is safe, and the hooks run in child processes, so KVP
 * need not wait for the applications (a slow hook would otherwise stall
 * KVP for up to the hook timeout per hook). The VSS safety nets are those
 * of hv_vss_daemon: watchdog, guard process, HVGUEST_FREEZE_ALLOW, thaw on
 * every exit path.
 */
import { Option } from 'commander';
import { EX_USAGE, daemonCommand, parseArgs, reportParseFailure } from '../common/cli.js';
import { EX_CANTCREAT, EX_NOPERM, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, runDaemonMain } from '../common/daemon.js';
import { createFreezeGate } from '../common/freeze-gate.js';
import { runDaemonServices, unprefixed, type Service } from '../common/service.js';
import type { Flavor } from '../common/wire/constants.js';
import { runningFlavor } from '../kvp/defaults.js';
import { createKvpService, kvpOptions, type KvpServiceOpts } from '../kvp/service.js';
import { createVssService, vssDefaults, vssOptions, vssSafetyText, type VssServiceOpts } from '../vss/service.js';

const NAME = 'hvguestd';

/** Where hvguestd keeps its pidfile when detached. */
export const GUESTD_PIDFILE: Record<Flavor, string> = { freebsd: '/var/run/hvguestd.pid', linux: '/run/hvguestd.pid' };

interface Opts {
  foreground: boolean;
  debug: boolean;
  flavor: Flavor;
  pidfile?: string;
  kvp: boolean;
  vss: boolean;
  [k: string]: unknown;
}

function command() {
  const cmd = daemonCommand(NAME, "Answer the Hyper-V host's Key-Value Pair and backup (VSS) requests from one process.")
    .addOption(new Option('--flavor <FLAVOR>', 'kernel interface to speak (default: the running OS)').choices(['freebsd', 'linux']).default(runningFlavor()))
    .option('--pidfile <PATH>', `pidfile when detached (default: ${GUESTD_PIDFILE.freebsd} on FreeBSD, ${GUESTD_PIDFILE.linux} on Linux)`)
    .option('--no-kvp', 'do not serve KVP (Data Exchange)')
    .option('--no-vss', 'do not serve VSS (backup)');
  for (const opt of [...kvpOptions('kvp-'), ...vssOptions('vss-')]) cmd.addOption(opt);
  return cmd.addHelpText(
    'after',
    `
Each --kvp-* and --vss-* option is the hv_kvp_daemon or hv_vss_daemon option
of the same name without the prefix. A KVP request that arrives while file
systems are frozen waits for the thaw (not for the thaw hooks, which run
after it).
Without -n the daemon detaches; the command returns 0 once every enabled
service has registered with its device. Logs go to syslog when detached, to
stderr with -n; between freeze and thaw they are held in memory.
${vssSafetyText('vss-')}
Exit status: 0 stopped by SIGTERM/SIGINT/SIGHUP; ${EX_USAGE} usage error (also
both services disabled); ${EX_UNAVAILABLE} a device is missing (driver not loaded, or
not a Hyper-V guest); ${EX_CANTCREAT} pool directory or pidfile cannot be created, or the pool
directory is world-writable (refused);
${EX_TEMPFAIL} another instance is running; ${EX_NOPERM} permission denied (run as
root); ${EX_SOFTWARE} internal error; 1 other errors.`,
  );
}

/** Run hvguestd with argv (without node and script); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const cmd = command();
  const parsed = parseArgs<Opts>(cmd, argv);
  if (!parsed.ok) return reportParseFailure(parsed);
  const o = parsed.opts;
  if (!o.kvp && !o.vss) {
    return reportParseFailure({ exitCode: EX_USAGE, stdout: '', stderr: `${NAME}: --no-kvp and --no-vss together leave nothing to serve\n` });
  }
  const kvpOpts: KvpServiceOpts = { ...(unprefixed(o, 'kvp-') as Partial<KvpServiceOpts>), flavor: o.flavor, debug: o.debug };
  const vssOpts: VssServiceOpts = vssDefaults({ ...(unprefixed(o, 'vss-') as Partial<VssServiceOpts>), flavor: o.flavor }) as VssServiceOpts;
  return runDaemonMain(NAME, o, (log) => {
    const gate = o.kvp && o.vss ? createFreezeGate() : undefined;
    const services: Service[] = [];
    if (o.kvp) services.push(createKvpService(kvpOpts, log.child({ service: 'kvp' }), gate));
    if (o.vss) services.push(createVssService(vssOpts, log.child({ service: 'vss' }), gate));
    return runDaemonServices(services, log, o.pidfile ?? GUESTD_PIDFILE[o.flavor]);
  });
}
