/**
 * `hvctl vf`: hn(4) SR-IOV VF failover on FreeBSD (spec/vf.md).
 *
 *   vf attach IFNAME [DELAY] [--syslog]   devd IFATTACH: bring a VF up DELAY s later (0: decide and schedule)
 *   vf up HNIF [--syslog]                 devd VF_UP: failover lagg of hn + VF carrying hn's configuration
 *   vf status [--json]                    each hn: mode, VF, lagg, active port, where the addresses live
 *
 * The devd wrappers hyperv_vfattach and hyperv_vfup run the first two with
 * --syslog. Exit status: 0 done or nothing to do (transparent mode, not a
 * VF, hn or VF already gone), 1 a system command failed, 2 usage error;
 * `vf up` with an override hook exits with the hook's status.
 */
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { createLogger } from '../common/log.js';
import { runProgram } from '../common/os/run.js';
import { vfAttach } from '../vf/attach.js';
import { formatStatus, vfStatus } from '../vf/status.js';
import { systemDeps, VfError, type VfDeps } from '../vf/system.js';
import { vfUp } from '../vf/up.js';

export const VF_EXIT_FAILED = 1;
export const VF_EXIT_USAGE = 2;

/** Where the command writes, and how it reaches the system; tests pass fakes. */
export interface VfIo {
  writeOut(text: string): void;
  writeErr(text: string): void;
  setExitCode(code: number): void;
  /** Dependencies for one run; `syslog` when the command was given --syslog. */
  deps?: (opts: { syslog: boolean }) => VfDeps;
}

const realDeps = ({ syslog }: { syslog: boolean }): VfDeps =>
  systemDeps(
    runProgram,
    createLogger({ name: 'hvctl', ident: 'hvctl-vf', sink: syslog ? 'syslog' : 'stderr' }),
    // daemon(8) needs absolute paths to re-run this very program.
    [process.execPath, resolve(process.argv[1] ?? 'hvctl')],
  );

function delayArg(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 3600) throw new InvalidArgumentError('expected seconds, 0-3600');
  return Number(text);
}

function rethrowAsUsage(err: CommanderError): never {
  if (err.exitCode === 1) throw new CommanderError(VF_EXIT_USAGE, err.code, err.message);
  throw err;
}

/** The `vf` command with attach/up/status, ready for hvctl's program.addCommand(). */
export function vfCommand(io: VfIo): Command {
  const deps = io.deps ?? realDeps;
  /** Run one flow; VfErrors become a message and exit 1 (2 for a bad interface name). */
  const guard = async (fn: () => Promise<number>): Promise<void> => {
    try {
      io.setExitCode(await fn());
    } catch (e) {
      if (!(e instanceof VfError)) throw e;
      io.writeErr(`vf: ${e.message}\n`);
      io.setExitCode(e.code === 'EINVAL' ? VF_EXIT_USAGE : VF_EXIT_FAILED);
    }
  };

  const attach = new Command('attach')
    .description('bring a newly attached VF up after hyperv_vf_delay seconds (devd IFATTACH; DELAY 0 schedules, >0 does it)')
    .argument('<ifname>', 'the interface that attached')
    .argument('[delay]', 'seconds to wait before `ifconfig IFNAME up`; 0 decides and runs itself detached', delayArg, 0)
    .option('--syslog', 'log to syslog instead of stderr (devd)')
    .action((ifname: string, delay: number, o: { syslog?: boolean }) =>
      guard(async () => {
        await vfAttach(deps({ syslog: o.syslog === true }), ifname, delay);
        return 0;
      }),
    );

  const up = new Command('up')
    .description('put hn and its VF in a failover lagg carrying hn\'s IPv4 and IPv6 configuration (devd VF_UP)')
    .argument('<hnif>', 'the hn(4) interface, e.g. hn0')
    .option('--syslog', 'log to syslog instead of stderr (devd)')
    .action((hn: string, o: { syslog?: boolean }) =>
      guard(async () => {
        const r = await vfUp(deps({ syslog: o.syslog === true }), hn);
        return r.outcome === 'override' ? (r.code ?? VF_EXIT_FAILED) : 0;
      }),
    );

  const status = new Command('status')
    .description('each hn: VF mode, paired VF, lagg, active port, where the addresses live')
    .option('--json', 'print a JSON array')
    .action((o: { json?: boolean }) =>
      guard(async () => {
        const rows = await vfStatus(deps({ syslog: false }));
        io.writeOut(o.json ? `${JSON.stringify(rows, null, 2)}\n` : formatStatus(rows));
        return 0;
      }),
    );

  const vf = new Command('vf').description('hn(4) SR-IOV VF failover (FreeBSD, non-transparent mode)');
  for (const c of [attach, up, status]) vf.addCommand(c);
  vf.addHelpText('after', '\nExit status: 0 done or nothing to do (also when hn or the VF is already gone), 1 a command failed, 2 usage error.');
  for (const c of [vf, attach, up, status]) c.exitOverride(rethrowAsUsage).configureOutput({ writeOut: io.writeOut, writeErr: io.writeErr });
  return vf;
}
