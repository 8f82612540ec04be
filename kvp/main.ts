/**
 * hv_kvp_daemon: answers the Hyper-V host's Key-Value Pair requests. The
 * composition root: reads argv, runs the KVP service (kvp/service.ts) as
 * the only service of the daemon, exits.
 */
import { Option } from 'commander';
import { EX_USAGE, daemonCommand, parseArgs, reportParseFailure } from '../common/cli.js';
import { EX_CANTCREAT, EX_NOPERM, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, runDaemonMain } from '../common/daemon.js';
import { runDaemonServices } from '../common/service.js';
import { KVP_DEFAULTS, runningFlavor } from './defaults.js';
import { createKvpService, kvpOptions, type KvpServiceOpts } from './service.js';

const NAME = 'hv_kvp_daemon';

interface Opts extends KvpServiceOpts {
  foreground: boolean;
  pidfile?: string;
}

function command() {
  const cmd = daemonCommand(NAME, "Answer the Hyper-V host's Key-Value Pair (Data Exchange) requests.")
    .addOption(new Option('--flavor <FLAVOR>', 'kernel interface to speak (default: the running OS)').choices(['freebsd', 'linux']).default(runningFlavor()));
  const [device, poolDir, helperDir, configDir, sysfsNet] = kvpOptions('');
  // Help order as before the service table existed: --pidfile between --config-dir and --sysfs-net.
  for (const opt of [device!, poolDir!, helperDir!, configDir!]) cmd.addOption(opt);
  cmd.option('--pidfile <PATH>', `pidfile when detached (default: ${KVP_DEFAULTS.freebsd.pidfile} on FreeBSD, ${KVP_DEFAULTS.linux.pidfile} on Linux)`);
  cmd.addOption(sysfsNet!);
  return cmd.addHelpText(
    'after',
    `
Without -n the daemon detaches; the command returns 0 once the daemon has
registered with the device. Logs go to syslog when detached, to stderr with -n.
Exit status: 0 stopped by SIGTERM/SIGINT/SIGHUP; ${EX_USAGE} usage error;
${EX_UNAVAILABLE} no KVP device (driver not loaded, or not a Hyper-V guest);
${EX_CANTCREAT} pool directory or pidfile cannot be created, or the pool directory
is world-writable (refused); ${EX_TEMPFAIL} another
instance is running; ${EX_NOPERM} permission denied (run as root);
${EX_SOFTWARE} internal error (also: the detached daemon did not report); 1 other errors.`,
  );
}

/** Run hv_kvp_daemon with argv (without node and script); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs<Opts>(command(), argv);
  if (!parsed.ok) return reportParseFailure(parsed);
  const o = parsed.opts;
  return runDaemonMain(NAME, o, (log) => runDaemonServices([createKvpService(o, log)], log, o.pidfile ?? KVP_DEFAULTS[o.flavor].pidfile));
}
