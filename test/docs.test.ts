/**
 * `--help`, the README and the man pages must agree (STYLE: the C originals
 * drifted here more than anywhere):
 * - every command and every long option the programs print in their help is
 *   documented in the README, and every hvsim command the README shows
 *   exists;
 * - for every program of package.json "bin", its page build/man/NAME.1 or
 *   NAME.8 shows every command (SYNOPSIS .Cm lines) and every flag (.Fl in
 *   SYNOPSIS or OPTIONS) of its help and of each subcommand's help, and
 *   nothing the program lacks. New programs are covered by adding them to
 *   "bin".
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EX_USAGE } from '../common/cli.js';
import * as daemon from '../common/daemon.js';
import { ROOT, bin, run } from './lib/procs.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const programs = Object.keys(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).bin as Record<string, string>);

/** Subcommand names, long options (without --) and every flag as written (-n, --foreground) in one help text. */
function parseHelp(text: string): { commands: string[]; options: string[]; flags: string[] } {
  const section = (name: string) => {
    const m = new RegExp(`^${name}:\\n((?:  .*\\n?)*)`, 'm').exec(text);
    return m ? m[1]! : '';
  };
  const commands = [...section('Commands').matchAll(/^ {2}(\w+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  const options = [...section('Options').matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!).filter((o) => o !== 'help');
  // Flags start an option line: "  -n, --foreground  ..." or "  --device <PATH>  ...".
  const flags = [...section('Options').matchAll(/^ {2}(-\w)?(?:, )?(--[a-z][a-z-]*)?/gm)].flatMap((m) => [m[1], m[2]]).filter((f): f is string => !!f);
  return { commands, options, flags };
}

async function help(program: string, ...path: string[]) {
  const r = await run(bin(program), [...path, '--help']);
  expect(r.code, r.stderr).toBe(0);
  return parseHelp(r.stdout);
}

/** Every command path of a program (leaves only) and the union of the flags of all its help texts. */
async function helpTree(program: string): Promise<{ leaves: string[]; flags: Set<string> }> {
  const leaves: string[] = [];
  const flags = new Set<string>();
  const visit = async (path: string[]): Promise<void> => {
    const h = await help(program, ...path);
    h.flags.forEach((f) => flags.add(f));
    if (h.commands.length === 0) {
      if (path.length) leaves.push(path.join(' '));
      return;
    }
    await Promise.all(h.commands.map((c) => visit([...path, c])));
  };
  await visit([]);
  return { leaves: leaves.sort(), flags };
}

/** One mdoc section's source lines (.Sh NAME up to the next .Sh). */
function manSection(page: string, name: string): string {
  const m = new RegExp(`^\\.Sh ${name}\\n([\\s\\S]*?)(?=^\\.Sh |(?![\\s\\S]))`, 'm').exec(page);
  return m ? m[1]! : '';
}

/** Flags an mdoc text shows: "Fl -pool" is --pool, "Fl dhn" is -d -h -n. */
function manFlags(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/\bFl\s+([^\s]+)/g)) {
    const w = m[1]!;
    if (/^-[a-z][a-z-]*$/.test(w)) out.add(`-${w}`);
    else if (/^[A-Za-z0-9]+$/.test(w)) for (const c of w) out.add(`-${c}`);
  }
  return out;
}

/** Command paths of the SYNOPSIS .Cm lines: ".Cm kvp get | delete" is "kvp get" and "kvp delete". */
function manCommands(synopsis: string): string[] {
  const out: string[] = [];
  for (const m of synopsis.matchAll(/^\.Cm (.+)$/gm)) {
    const w = m[1]!.trim().split(/\s+/);
    const bar = w.indexOf('|');
    if (bar < 0) out.push(w.join(' '));
    else {
      const prefix = w.slice(0, bar - 1);
      for (const alt of w.slice(bar - 1).filter((x) => x !== '|')) out.push([...prefix, alt].join(' '));
    }
  }
  return [...new Set(out)].sort();
}

describe('help and README agree', () => {
  it('hvsim: every command and option in --help is in the README, and the README shows no command hvsim lacks', async () => {
    const top = await help('hvsim');
    for (const o of top.options) expect(readme).toContain(`--${o}`);
    const shown = new Set<string>();
    for (const c of top.commands) {
      const sub = await help('hvsim', c);
      for (const o of sub.options) expect(readme, `hvsim ${c} --${o}`).toContain(`--${o}`);
      if (sub.commands.length === 0) {
        expect(readme, `hvsim ${c}`).toMatch(new RegExp(`hvsim (--dir DIR )?(serve|[\\w|]*\\b${c}\\b)`));
        shown.add(c);
      }
      for (const s of sub.commands) {
        expect(readme, `hvsim ${c} ${s}`).toMatch(new RegExp(`${c} (\\w+\\|)*${s}\\b`));
        for (const o of (await help('hvsim', c, s)).options) expect(readme, `hvsim ${c} ${s} --${o}`).toContain(`--${o}`);
      }
    }
    // The other way round: each `hvsim --dir DIR X` line of the README names a real command.
    for (const m of readme.matchAll(/hvsim --dir DIR ([\w|]+)/g)) {
      for (const c of m[1]!.split('|')) expect(top.commands, `README shows hvsim ${c}`).toContain(c);
    }
  });

  it('hvctl: every subcommand and option in --help is in the README', async () => {
    for (const group of (await help('hvctl')).commands) {
      for (const sub of (await help('hvctl', group)).commands) {
        const h = await help('hvctl', group, sub);
        expect(readme).toMatch(new RegExp(`hvctl ${group} (\\w+\\|)*${sub}\\b`));
        for (const o of h.options) expect(readme, `hvctl ${group} ${sub} --${o}`).toContain(`--${o}`);
      }
    }
  });

  for (const [daemon, next] of [
    ['hv_kvp_daemon', '### hv_vss_daemon'],
    ['hv_vss_daemon', '### hvguestd'],
    ['hvguestd', '### hvctl kvp'],
  ] as const) {
    it(`${daemon}: every option in -h is in its README section`, async () => {
      const r = await run(bin(daemon), ['-h']);
      const section = readme.slice(readme.indexOf(`### ${daemon}`), readme.indexOf(next));
      for (const o of parseHelp(r.stdout).options) expect(section, `${daemon} --${o}`).toMatch(new RegExp(`--${o}\\b`));
      for (const flag of ['-n', '-d', '-h']) expect(section).toContain(flag);
    });
  }
});

describe('help and man pages agree (every program of package.json "bin")', () => {
  it('the page readers see what they should (they are not no-ops)', () => {
    expect([...manFlags('.Op Fl dhn\n.It Fl n , Fl -foreground\n.Op Fl -pool Ar pool\n')].sort()).toEqual(['--foreground', '--pool', '-d', '-h', '-n']);
    expect(manCommands('.Cm kvp get | delete\n.Cm serve\n.Cm status | stop\n')).toEqual(['kvp delete', 'kvp get', 'serve', 'status', 'stop']);
    expect(parseHelp('Options:\n  -n, --foreground    x\n  --device <PATH>     y\n                      (more) --not-a-flag\n').flags).toEqual(['-n', '--foreground', '--device']);
  });

  for (const program of programs) {
    it(`${program}: build/man/${program}.[18] shows every command and flag of its help, and none it lacks`, async () => {
      const pages = ['1', '8'].map((s) => join(ROOT, 'build/man', `${program}.${s}`)).filter((p) => existsSync(p));
      expect(pages, `build/man/${program}.1 or .8`).toHaveLength(1);
      const page = readFileSync(pages[0]!, 'utf8');
      const synopsis = manSection(page, 'SYNOPSIS');
      const documented = manFlags(synopsis + manSection(page, 'OPTIONS'));
      const { leaves, flags } = await helpTree(program);
      expect(flags.size, `${program} --help lists options`).toBeGreaterThan(0);
      expect([...flags].filter((f) => !documented.has(f)), `flags of ${program} missing from its page`).toEqual([]);
      expect([...documented].filter((f) => !flags.has(f)), `flags on the page that ${program} does not have`).toEqual([]);
      expect(manCommands(synopsis), `${program} commands in SYNOPSIS`).toEqual(leaves);
    });
  }
});

describe('exit statuses: help, man page and code agree (the daemons)', () => {
  // Every status the shared daemon code can end with, for either daemon: the
  // sysexits codes of common/daemon.ts (70 also from a detach that times out,
  // 73 from an uncreatable pidfile), usage errors, and 1 for the rest.
  const codes = [...new Set([...Object.entries(daemon).filter(([k]) => /^EX_/.test(k)).map(([, v]) => v as number), EX_USAGE, 1])].sort((a, b) => a - b);

  /** The numbers that start the items of "Exit status: 0 stopped ...; 64 usage error; ...". */
  const helpCodes = (text: string) => {
    const m = /Exit status:([\s\S]*)$/.exec(text);
    return m ? m[1]!.split(';').map((x) => Number(/^\s*(\d+)\s/.exec(x)?.[1])).sort((a, b) => a - b) : [];
  };
  const manCodes = (page: string) => [...manSection(page, 'EXIT STATUS').matchAll(/^\.It (\d+)$/gm)].map((m) => Number(m[1])).sort((a, b) => a - b);

  it('the readers see what they should (they are not no-ops)', () => {
    expect(codes).toEqual(expect.arrayContaining([0, 1, 64, 69, 70, 73, 75, 77]));
    expect(helpCodes('x\nExit status: 0 ok; 64 usage error;\n73 pidfile; 1 other errors.')).toEqual([0, 1, 64, 73]);
    expect(manCodes('.Sh EXIT STATUS\n.Bl -tag\n.It 0\nok.\n.It 75\nbusy.\n.El\n.Sh EXAMPLES\n.It 9\n')).toEqual([0, 75]);
  });

  for (const program of ['hv_kvp_daemon', 'hv_vss_daemon']) {
    it(`${program}: -h and EXIT STATUS of its page list exactly the statuses it can exit with`, async () => {
      const r = await run(bin(program), ['-h']);
      expect(r.code, r.stderr).toBe(0);
      expect(helpCodes(r.stdout), `${program} -h`).toEqual(codes);
      expect(manCodes(readFileSync(join(ROOT, 'build/man', `${program}.8`), 'utf8')), `build/man/${program}.8`).toEqual(codes);
    });
  }
});
