/**
 * Command-line conventions shared by every program (commander 14).
 *
 * - The daemons take the C daemons' flags: -n stay in the foreground (also
 *   spelled --no-daemon, as on Linux), -d debug logging, -h help.
 * - -h prints help to stdout and exits 0; a usage error prints the message
 *   and the help to stderr and exits 64 (EX_USAGE from <sysexits.h>).
 * - Parsing never exits: parseArgs returns the outcome and main decides.
 */
import { writeSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

export { InvalidArgumentError } from 'commander';

/** <sysexits.h> EX_USAGE: the command was used incorrectly. */
export const EX_USAGE = 64;

/** Options every daemon has. */
export interface DaemonOpts {
  /** -n: stay in the foreground and log to stderr. */
  foreground: boolean;
  /** -d: log at debug level. */
  debug: boolean;
}

/** What parseArgs found: the options, or what to print and the exit status. */
export type ParseResult<O> =
  | { ok: true; opts: O; args: string[] }
  | { ok: false; exitCode: number; stdout: string; stderr: string };

/** A Command with the program's name and description, -h/--help, and usage errors reported through parseArgs. */
export function programCommand(name: string, description: string): Command {
  return new Command(name).description(description).helpOption('-h, --help', 'print this help and exit').showHelpAfterError();
}

/** programCommand plus the daemons' -n (--foreground, --no-daemon) and -d (--debug). */
export function daemonCommand(name: string, description: string): Command {
  return (
    programCommand(name, description)
      .option('-n, --foreground', 'stay in the foreground and log to stderr')
      .option('-d, --debug', 'log at debug level')
      .addOption(new Option('--no-daemon', 'same as -n (Linux spelling)').hideHelp().implies({ foreground: true }))
      // Defaults set as values, not in .option(), so that --help does not print "(default: false)".
      .setOptionValueWithSource('foreground', false, 'default')
      .setOptionValueWithSource('debug', false, 'default')
  );
}

/**
 * Parse `argv` (the user's arguments, without node and the script) with
 * `cmd`. Never writes and never exits: help and errors come back as text.
 */
export function parseArgs<O extends object = DaemonOpts>(cmd: Command, argv: readonly string[]): ParseResult<O> {
  let stdout = '';
  let stderr = '';
  const output = {
    writeOut: (s: string) => void (stdout += s),
    writeErr: (s: string) => void (stderr += s),
    // Fixed width and no colour: the same text in a terminal, a pipe and a test.
    getOutHelpWidth: () => 80,
    getErrHelpWidth: () => 80,
    getOutHasColors: () => false,
    getErrHasColors: () => false,
  };
  // Subcommands made before this call did not inherit these settings, and any of them may report the error.
  const configure = (c: Command): void => {
    c.exitOverride().configureOutput(output);
    c.commands.forEach(configure);
  };
  configure(cmd);
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    // Commander reports help and version with status 0 and every usage error with 1.
    return { ok: false, exitCode: e.exitCode === 0 ? 0 : EX_USAGE, stdout, stderr };
  }
  // A copy: opts() is commander's own record.
  const opts: Record<string, unknown> = { ...cmd.opts() };
  // --no-daemon leaves its own key behind; -n/--foreground is the one to read.
  if (cmd.options.some((o) => o.long === '--no-daemon')) delete opts.daemon;
  return { ok: true, opts: opts as O, args: [...cmd.args] };
}

/** Print a failed parse's text to stdout/stderr and return its exit status (for main). */
export function reportParseFailure(r: { exitCode: number; stdout: string; stderr: string }): number {
  if (r.stdout) writeSync(1, r.stdout);
  if (r.stderr) writeSync(2, r.stderr);
  return r.exitCode;
}

/** Integer parser for an option or argument: decimal, within [min, max], errors name the option. */
export function parseIntArg(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^[+-]?\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got '${value}'`);
    }
    return n;
  };
}

// Milliseconds per unit; a bare number is seconds, as in sleep(1) and the C daemons' timeouts.
const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, '': 1000, m: 60_000, h: 3_600_000 };

/** '250ms', '5s', '1.5m', '2h' or bare seconds ('2') to whole milliseconds; throws InvalidArgumentError naming `name`. */
export function parseDuration(text: string, name = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|)$/.exec(text.trim());
  const ms = m ? Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!) : NaN;
  if (!Number.isSafeInteger(ms)) {
    throw new InvalidArgumentError(`${name} must be a duration like 250ms, 5s, 2m or 1h (bare numbers are seconds), got '${text}'`);
  }
  return ms;
}

/** Duration parser for an option: parseDuration within [minMs, maxMs], errors name the option. */
export function parseDurationArg(name: string, minMs = 0, maxMs = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const ms = parseDuration(value, name);
    if (ms < minMs || ms > maxMs) throw new InvalidArgumentError(`${name} must be from ${minMs}ms to ${maxMs}ms, got '${value}'`);
    return ms;
  };
}

/** What runMain needs from the process; replaceable in tests. */
export interface MainIo {
  writeErr(text: string): void;
  setExitCode(code: number): void;
  exit(code: number): never | void;
}

const processIo: MainIo = {
  writeErr: (text) => void writeSync(2, text),
  setExitCode: (code) => void (process.exitCode = code),
  exit: (code) => process.exit(code),
};

/**
 * Run a program's main: its result (default 0) becomes process.exitCode and
 * the process ends when its work is done; an uncaught error prints
 * `NAME: message` to stderr and exits 1 at once, since open devices or
 * timers might otherwise keep a broken daemon alive.
 */
export async function runMain(name: string, fn: () => Promise<number | void> | number | void, io: MainIo = processIo): Promise<void> {
  try {
    io.setExitCode((await fn()) ?? 0);
  } catch (e) {
    io.writeErr(`${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    io.setExitCode(1);
    io.exit(1);
  }
}
