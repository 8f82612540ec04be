/**
 * hv_vss_daemon: answers the Hyper-V host's backup (VSS) requests by
 * freezing and thawing file systems. The composition root: reads argv,
 * runs the VSS service (vss/service.ts) as the only service of the daemon,
 * exits.
 */
import { Option } from 'commander';
import { EX_USAGE, daemonCommand, parseArgs, reportParseFailure } from '../common/cli.js';
import { EX_CANTCREAT, EX_NOPERM, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, runDaemonMain } from '../common/daemon.js';
import { runDaemonServices } from '../common/service.js';
import { runningFlavor, VSS_DEFAULTS } from './defaults.js';
import { createVssService, vssDefaults, vssOptions, vssSafetyText, type VssServiceOpts } from './service.js';

const NAME = 'hv_vss_daemon';

interface Opts extends VssServiceOpts {
  foreground: boolean;
  debug: boolean;
  pidfile?: string;
}


function command() {
  const cmd = daemonCommand(NAME, "Answer the Hyper-V host's backup (VSS) requests: freeze and thaw file systems for consistent snapshots.")
    .addOption(new Option('--flavor <FLAVOR>', 'kernel interface to speak (default: the running OS)').choices(['freebsd', 'linux']).default(runningFlavor()));
  const [device, ...rest] = vssOptions('');
  cmd.addOption(device!);
  cmd.option('--pidfile <PATH>', `pidfile when detached (default: ${VSS_DEFAULTS.freebsd.pidfile} on FreeBSD, ${VSS_DEFAULTS.linux.pidfile} on Linux)`);
  for (const opt of rest) cmd.addOption(opt);
  return cmd.addHelpText(
    'after',
    `
Without -n the daemon detaches; the command returns 0 once the daemon has
registered with the device. Logs go to syslog when detached, to stderr with -n;
between freeze and thaw they are held in memory and written after the thaw.
${vssSafetyText('')}
Exit status: 0 stopped by SIGTERM/SIGINT/SIGHUP; ${EX_USAGE} usage error;
${EX_UNAVAILABLE} no VSS device (driver not loaded, or not a Hyper-V guest);
${EX_CANTCREAT} pidfile cannot be created; ${EX_TEMPFAIL} another instance is running;
${EX_NOPERM} permission denied (run as root); ${EX_SOFTWARE} internal error (also: the
detached daemon did not report); 1 other errors.`,
  );
}

/** Run hv_vss_daemon with argv (without node and script); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs<Opts>(command(), argv);
  if (!parsed.ok) return reportParseFailure(parsed);
  const o: Opts = vssDefaults(parsed.opts);
  return runDaemonMain(
    NAME,
    o,
    (log) => runDaemonServices([createVssService(o, log)], log, o.pidfile ?? VSS_DEFAULTS[o.flavor].pidfile),
    VSS_DEFAULTS[o.flavor].ident,
  );
}
