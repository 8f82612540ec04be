/**
 * `hvctl msg`: the pure decode/encode steps, then the commander wiring in
 * process with scripted stdin/stdout/stderr (no subprocess, no real exit).
 */
import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { setColorBlue } from '../test/lib/wire-vectors.js';
import { msgCommand, parseHexText, runDecode, runEncode, type MsgIo, type Outcome } from './msg.js';


function out(o: Outcome): string {
  if (!o.ok) throw new Error(o.error);
  return o.out;
}

function error(o: Outcome): string {
  if (o.ok) throw new Error(`expected an error, got ${o.out.slice(0, 200)}`);
  return o.error;
}

describe('parseHexText', () => {
  it('accepts upper and lower case and whitespace between digits', () => {
    expect([...(parseHexText('81 00\n00 0A') as Buffer)]).toEqual([0x81, 0, 0, 0x0a]);
  });
  it('names the bad digit and an odd count', () => {
    expect(parseHexText('81zz')).toBe('not hex: "z" at digit 3');
    expect(parseHexText('810')).toBe('not hex: odd number of digits (3)');
  });
});

describe('runDecode', () => {
  it('prints pretty JSON with a trailing newline', () => {
    const text = out(runDecode({ flavor: 'linux', service: 'vss', hex: '81000000' }, undefined));
    expect(text).toBe('{\n  "flavor": "linux",\n  "service": "vss",\n  "reply": false,\n  "handshake": 129\n}\n');
  });

  it('reads raw bytes from stdin when --hex is absent', () => {
    const j = JSON.parse(out(runDecode({ flavor: 'linux', service: 'kvp' }, setColorBlue('linux'))));
    expect(j).toMatchObject({ operation: 1, variant: 'kvp_set', body: { data: { key: 'Color', value: 'Blue' } } });
  });

  it('passes --reply and --op through (op as decimal or 0x hex)', () => {
    const b = setColorBlue('linux');
    b.writeUInt32LE(0x80004005, 0);
    for (const op of ['1', '0x1']) {
      const j = JSON.parse(out(runDecode({ flavor: 'linux', service: 'kvp', reply: true, op }, b)));
      expect(j).toMatchObject({ reply: true, status: 0x80004005, statusName: 'HV_E_FAIL', variant: 'kvp_set' });
    }
  });

  it('--variant forces a body variant', () => {
    const b = Buffer.alloc(7430);
    b[0] = 4;
    expect(JSON.parse(out(runDecode({ flavor: 'freebsd', service: 'kvp', variant: 'kvp_register' }, b))).variant).toBe('kvp_register');
  });

  it.each([
    [{ service: 'kvp', hex: '00' }, /--flavor is required/],
    [{ flavor: 'netbsd', service: 'kvp', hex: '00' }, /--flavor: unknown flavor "netbsd" \(expected freebsd or linux\)/],
    [{ flavor: 'linux', hex: '00' }, /--service is required/],
    [{ flavor: 'linux', service: 'fcopy', hex: '00' }, /--service: unknown service "fcopy"/],
    [{ flavor: 'linux', service: 'kvp', op: 'set', hex: '00' }, /--op: expected an integer 0\.\.255, got "set"/],
    [{ flavor: 'linux', service: 'kvp', op: '256', hex: '00' }, /--op: /],
    [{ flavor: 'linux', service: 'kvp', variant: 'kvp_x', hex: '00' }, /--variant: unknown variant "kvp_x"/],
    [{ flavor: 'linux', service: 'kvp', hex: 'xyz' }, /--hex: not hex: "x" at digit 1/],
    [{ flavor: 'linux', service: 'kvp', hex: '0000' }, /--hex: hv_kvp_msg \(linux\): 2 bytes, expected 7432/],
    [{ flavor: 'freebsd', service: 'vss', hex: '00'.repeat(12) }, /--hex: hv_vss_opt_msg: 12 bytes, expected 64/],
    [{ flavor: 'linux', service: 'vss', hex: '00'.repeat(64) }, /--hex: hv_vss_msg: 64 bytes, expected 12 \(or 4/],
  ])('%o -> %s', (args, message) => {
    expect(error(runDecode(args, undefined))).toMatch(message);
  });

  it('says when stdin was empty', () => {
    expect(error(runDecode({ flavor: 'freebsd', service: 'kvp' }, Buffer.alloc(0)))).toMatch(/^stdin: .*0 bytes, expected 7430 \(nothing on stdin/);
  });
});

describe('runEncode', () => {
  it('prints one line of lowercase hex', () => {
    expect(runEncode({}, '{"flavor":"linux","service":"vss","handshake":129}')).toEqual({ ok: true, out: '81000000\n' });
  });

  it('inverts runDecode', () => {
    const b = setColorBlue('linux');
    b[7431] = 0xab;
    const json = out(runDecode({ flavor: 'linux', service: 'kvp' }, b));
    expect(out(runEncode({ flavor: 'linux', service: 'kvp' }, json))).toBe(`${b.toString('hex')}\n`);
  });

  it('fills flavor, service and reply from the options when the JSON lacks them', () => {
    const hex = out(runEncode({ flavor: 'freebsd', service: 'kvp', reply: true }, '{"status": 2147942659}'));
    expect(hex.trim().length).toBe(7430 * 2);
    expect(hex.slice(0, 8)).toBe('03010780');
  });

  it.each([
    [{}, 'not json', /^stdin: not valid JSON: /],
    [{}, '[1,2]', /^stdin: expected one JSON object/],
    [{}, '{"service":"kvp","operation":0}', /^stdin: flavor: expected "freebsd" or "linux"/],
    [{ flavor: 'bsd' }, '{}', /^--flavor: unknown flavor "bsd"/],
    [{ flavor: 'freebsd' }, '{"flavor":"linux","service":"vss","handshake":129}', /^--flavor freebsd disagrees with the JSON's flavor "linux"/],
    [{ reply: true }, '{"flavor":"linux","service":"vss","reply":false,"operation":1}', /^--reply true disagrees/],
    [{}, '{"flavor":"linux","service":"kvp","operation":1,"body":{"data":{"key":"x","kye":1}}}', /^stdin: body\.data\.kye: not a field here/],
  ])('%o %s -> %s', (args, text, message) => {
    expect(error(runEncode(args, text))).toMatch(message);
  });
});

/** Scripted process streams; exit code recorded instead of set on the test runner's process. */
function fakeIo(stdin: Buffer | string = ''): MsgIo & { stdout: string; stderr: string; exitCode?: number; stdinReads: number } {
  const io = {
    stdout: '',
    stderr: '',
    exitCode: undefined as number | undefined,
    stdinReads: 0,
    readStdin: async () => {
      io.stdinReads++;
      return Buffer.from(stdin);
    },
    writeOut: (t: string) => {
      io.stdout += t;
    },
    writeErr: (t: string) => {
      io.stderr += t;
    },
    setExitCode: (c: number) => {
      io.exitCode = c;
    },
  };
  return io;
}

describe('msgCommand (commander, in process)', () => {
  it('decode --hex prints JSON, leaves the exit code alone and does not read stdin', async () => {
    const io = fakeIo();
    await msgCommand(io).parseAsync(['decode', '--flavor', 'linux', '--service', 'vss', '--hex', '0500000000000000' + '05000000'], { from: 'user' });
    expect(JSON.parse(io.stdout)).toEqual({ flavor: 'linux', service: 'vss', reply: false, operation: 5, operationName: 'freeze', flags: 5 });
    expect(io.stderr).toBe('');
    expect(io.exitCode).toBeUndefined();
    expect(io.stdinReads).toBe(0);
  });

  it('decode reads raw stdin, encode turns the JSON back into the same hex', async () => {
    const b = setColorBlue('linux');
    const dec = fakeIo(b);
    await msgCommand(dec).parseAsync(['decode', '--flavor', 'linux', '--service', 'kvp'], { from: 'user' });
    const enc = fakeIo(dec.stdout);
    await msgCommand(enc).parseAsync(['encode', '--flavor', 'linux', '--service', 'kvp'], { from: 'user' });
    expect(enc.stdout).toBe(`${b.toString('hex')}\n`);
    expect(enc.exitCode).toBeUndefined();
  });

  it('a wrong size goes to stderr with exit code 2 and nothing on stdout', async () => {
    const io = fakeIo();
    await msgCommand(io).parseAsync(['decode', '--flavor', 'freebsd', '--service', 'kvp', '--hex', '00'], { from: 'user' });
    expect(io.stdout).toBe('');
    expect(io.stderr).toBe('msg: --hex: hv_kvp_msg (freebsd): 1 bytes, expected 7430\n');
    expect(io.exitCode).toBe(2);
  });

  it('bad JSON on encode: exit code 2', async () => {
    const io = fakeIo('{');
    await msgCommand(io).parseAsync(['encode', '--flavor', 'linux', '--service', 'kvp'], { from: 'user' });
    expect(io.stderr).toMatch(/^msg: stdin: not valid JSON/);
    expect(io.exitCode).toBe(2);
  });

  it('commander usage errors are thrown as CommanderError with exit code 2, not exited', async () => {
    const io = fakeIo();
    const run = msgCommand(io).parseAsync(['decode', '--flavour', 'linux'], { from: 'user' });
    await expect(run).rejects.toBeInstanceOf(CommanderError);
    await expect(msgCommand(fakeIo()).parseAsync(['decode', '--flavour', 'linux'], { from: 'user' })).rejects.toMatchObject({ exitCode: 2 });
    expect(io.stderr).toMatch(/unknown option '--flavour'/);
  });

  it('--help is thrown with exit code 0 and prints the options', async () => {
    const io = fakeIo();
    await expect(msgCommand(io).parseAsync(['decode', '--help'], { from: 'user' })).rejects.toMatchObject({ exitCode: 0 });
    for (const opt of ['--flavor', '--service', '--reply', '--op', '--variant', '--hex']) expect(io.stdout).toContain(opt);
  });
});
