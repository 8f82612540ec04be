import { describe, expect, it } from 'vitest';
import {
  daemonCommand,
  EX_USAGE,
  InvalidArgumentError,
  parseArgs,
  parseDuration,
  parseDurationArg,
  parseIntArg,
  programCommand,
  runMain,
  type DaemonOpts,
  type MainIo,
  type ParseResult,
} from './cli.js';

const kvp = () => daemonCommand('hv_kvp_daemon', 'Hyper-V KVP daemon');

function failure<O>(r: ParseResult<O>): { exitCode: number; stdout: string; stderr: string } {
  if (r.ok) throw new Error(`expected a failed parse, got ${JSON.stringify(r.opts)}`);
  return r;
}

function opts(argv: string[]): DaemonOpts {
  const r = parseArgs<DaemonOpts>(kvp(), argv);
  if (!r.ok) throw new Error(`parse failed: ${r.stderr}`);
  return r.opts;
}

describe('daemon flags', () => {
  it('defaults to daemon mode at info level', () => {
    expect(opts([])).toEqual({ foreground: false, debug: false });
  });

  it.each([
    [['-n'], { foreground: true, debug: false }],
    [['--foreground'], { foreground: true, debug: false }],
    [['--no-daemon'], { foreground: true, debug: false }],
    [['-d'], { foreground: false, debug: true }],
    [['--debug'], { foreground: false, debug: true }],
    [['-nd'], { foreground: true, debug: true }],
    [['-d', '-n'], { foreground: true, debug: true }],
  ])('%j', (argv, want) => {
    expect(opts(argv)).toEqual(want);
  });

  it('starts from the defaults again when one Command parses twice', () => {
    const cmd = kvp();
    expect(parseArgs(cmd, ['-n', '-d'])).toMatchObject({ ok: true, opts: { foreground: true, debug: true } });
    expect(parseArgs(cmd, [])).toMatchObject({ ok: true, opts: { foreground: false, debug: false } });
  });
});

describe('help', () => {
  it.each([['-h'], ['--help']])('%s prints usage to stdout and exits 0', (flag) => {
    const r = failure(parseArgs(kvp(), [flag]));
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Usage: hv_kvp_daemon \[options\]\n/);
    expect(r.stdout).toContain('Hyper-V KVP daemon');
    for (const o of ['-n, --foreground', '-d, --debug', '-h, --help']) expect(r.stdout).toContain(o);
  });

  it('keeps the Linux --no-daemon spelling out of the help and prints no boolean defaults', () => {
    const { stdout } = failure(parseArgs(kvp(), ['-h']));
    expect(stdout).not.toContain('--no-daemon');
    expect(stdout).not.toContain('default');
  });
});

describe('usage errors', () => {
  it.each([
    [['-x'], "unknown option '-x'"],
    [['--bogus'], "unknown option '--bogus'"],
    [['extra'], 'too many arguments'],
  ])('%j exits 64 with the error and the usage on stderr', (argv, message) => {
    const r = failure(parseArgs(kvp(), argv));
    expect(r.exitCode).toBe(EX_USAGE);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('Usage: hv_kvp_daemon [options]');
  });

  it('names the option whose value is bad', () => {
    const cmd = programCommand('hvctl', 'admin tool')
      .option('-p, --pool <n>', 'pool number', parseIntArg('--pool', 0, 4))
      .option('-t, --timeout <duration>', 'how long to wait', parseDurationArg('--timeout', 1, 60_000));
    const bad = failure(parseArgs(cmd, ['--pool', '7']));
    expect(bad.exitCode).toBe(EX_USAGE);
    expect(bad.stderr).toContain("--pool must be an integer from 0 to 4, got '7'");
    const slow = failure(parseArgs(cmd, ['-t', 'soon']));
    expect(slow.exitCode).toBe(EX_USAGE);
    expect(slow.stderr).toContain("--timeout must be a duration like 250ms");
    const missing = failure(parseArgs(cmd, ['--pool']));
    expect(missing.stderr).toContain("option '-p, --pool <n>' argument missing");
    expect(parseArgs(cmd, ['-p', '3', '-t', '2s'])).toMatchObject({ ok: true, opts: { pool: 3, timeout: 2000 } });
  });

  it('reports subcommand help and errors the same way, without exiting', () => {
    const cmd = programCommand('hvctl', 'admin tool');
    cmd.command('get').description('read one record').argument('<key>').option('-p, --pool <n>', 'pool', parseIntArg('--pool', 0, 4));
    const help = failure(parseArgs(cmd, ['get', '-h']));
    expect(help).toMatchObject({ exitCode: 0, stderr: '' });
    expect(help.stdout).toContain('Usage: hvctl get [options] <key>');
    const unknown = failure(parseArgs(cmd, ['get', '-z', 'k']));
    expect(unknown.exitCode).toBe(EX_USAGE);
    expect(unknown.stderr).toContain("unknown option '-z'");
    expect(unknown.stderr).toContain('Usage: hvctl get');
    expect(failure(parseArgs(cmd, ['get', '-p', '5', 'k'])).stderr).toContain('--pool must be an integer from 0 to 4');
    expect(failure(parseArgs(cmd, ['get'])).stderr).toContain("missing required argument 'key'");
  });

  it('lets errors that are not usage errors through', () => {
    const cmd = programCommand('hvctl', 'admin tool').option('--boom <x>', 'throws', () => {
      throw new TypeError('bug');
    });
    expect(() => parseArgs(cmd, ['--boom', '1'])).toThrow(TypeError);
  });
});

describe('parseIntArg', () => {
  const pool = parseIntArg('--pool', 0, 4);

  it('accepts decimal integers within the range', () => {
    expect([pool('0'), pool('4'), pool('+2'), pool(' 3 ')]).toEqual([0, 4, 2, 3]);
    expect(parseIntArg('--n', -5, 5)('-5')).toBe(-5);
  });

  it.each(['5', '-1', '', 'x', '1.5', '0x2', '2e0', '1 2', '99999999999999999999'])('rejects %j naming the option', (v) => {
    expect(() => pool(v)).toThrow(InvalidArgumentError);
    expect(() => pool(v)).toThrow(`--pool must be an integer from 0 to 4, got '${v}'`);
  });
});

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['5s', 5000],
    ['2', 2000],
    ['1.5s', 1500],
    ['0.5', 500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['0', 0],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 's', '-1s', '5 sec', '5S', '1d', 'ms5', '.5s', '1e3'])('rejects %j naming the option', (text) => {
    expect(() => parseDuration(text, '--timeout')).toThrow(InvalidArgumentError);
    expect(() => parseDuration(text, '--timeout')).toThrow(/^--timeout must be a duration/);
  });

  it('parseDurationArg enforces its bounds', () => {
    const t = parseDurationArg('--timeout', 100, 10_000);
    expect(t('100ms')).toBe(100);
    expect(() => t('99ms')).toThrow("--timeout must be from 100ms to 10000ms, got '99ms'");
    expect(() => t('11s')).toThrow(InvalidArgumentError);
  });
});

describe('runMain', () => {
  function fakeIo() {
    const seen: { err: string; codes: number[]; exits: number[] } = { err: '', codes: [], exits: [] };
    const io: MainIo = {
      writeErr: (t) => void (seen.err += t),
      setExitCode: (c) => void seen.codes.push(c),
      exit: (c) => void seen.exits.push(c),
    };
    return { seen, io };
  }

  it('turns the result into the exit status without exiting', async () => {
    const a = fakeIo();
    await runMain('hvctl', async () => 3, a.io);
    expect(a.seen).toEqual({ err: '', codes: [3], exits: [] });
    const b = fakeIo();
    await runMain('hvctl', () => undefined, b.io);
    expect(b.seen).toEqual({ err: '', codes: [0], exits: [] });
  });

  it('prints NAME: message and exits 1 on an uncaught error', async () => {
    const a = fakeIo();
    await runMain(
      'hv_kvp_daemon',
      async () => {
        throw new Error('open /dev/hv_kvp_dev: ENOENT');
      },
      a.io,
    );
    expect(a.seen).toEqual({ err: 'hv_kvp_daemon: open /dev/hv_kvp_dev: ENOENT\n', codes: [1], exits: [1] });
    const b = fakeIo();
    await runMain(
      'hvsim',
      () => {
        throw 'not an Error';
      },
      b.io,
    );
    expect(b.seen.err).toBe('hvsim: not an Error\n');
    expect(b.seen.exits).toEqual([1]);
  });
});
