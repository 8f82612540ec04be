/**
 * `hvctl vss status [--json] [--state-file PATH] [--flavor F]`: whether the
 * VSS daemon holds file systems frozen, which, since when, and whether the
 * daemon that froze them is still alive. Reads the daemon's state file.
 * Exit status: 0 not frozen, 0 frozen (the answer is in the output), 2 usage error.
 */
import { Command, Option } from 'commander';
import { FLAVORS, type Flavor } from '../common/wire/constants.js';
import { VSS_DEFAULTS, runningFlavor } from '../vss/defaults.js';
import { readState } from '../vss/state.js';

export interface VssIo {
  writeOut(text: string): void;
  writeErr(text: string): void;
  setExitCode(code: number): void;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

export function vssCommand(io: VssIo): Command {
  const vss = new Command('vss').description('the VSS (backup) daemon');
  vss
    .command('status')
    .description('frozen or not, what is frozen, since when')
    .option('--json', 'one JSON object')
    .option('--state-file <PATH>', `the daemon's state file (default: ${VSS_DEFAULTS.freebsd.stateFile} on FreeBSD, ${VSS_DEFAULTS.linux.stateFile} on Linux)`)
    .addOption(new Option('--flavor <FLAVOR>', 'which defaults to use').choices([...FLAVORS]).default(runningFlavor()))
    .action((o: { json?: boolean; stateFile?: string; flavor: Flavor }) => {
      const path = o.stateFile ?? VSS_DEFAULTS[o.flavor].stateFile;
      const s = readState(path);
      const status = s
        ? { frozen: true, mounts: s.mounts, since: s.since, pid: s.pid, daemonAlive: alive(s.pid), dryRun: s.dryRun ?? false, stateFile: path }
        : { frozen: false, mounts: [] as string[], stateFile: path };
      if (o.json) io.writeOut(`${JSON.stringify(status)}\n`);
      else if (!s) io.writeOut('not frozen\n');
      else {
        const who = `pid ${s.pid}${alive(s.pid) ? '' : ', no longer running: the next daemon start thaws them'}`;
        io.writeOut(`${s.dryRun ? 'dry run: pretending frozen' : 'frozen'} since ${s.since} (${who})\n${s.mounts.map((m) => `  ${m}\n`).join('')}`);
      }
      io.setExitCode(0);
    });
  return vss;
}
