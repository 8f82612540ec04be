/**
 * `--help` and the README must agree (STYLE: the C originals drifted here
 * more than anywhere): every command and every long option the programs
 * print in their help is documented in the README, and every hvsim command
 * the README shows exists.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, bin, run } from './lib/procs.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const hvctlMan = readFileSync(join(ROOT, 'build/man/hvctl.8'), 'utf8');
const hvguestdMan = readFileSync(join(ROOT, 'build/man/hvguestd.8'), 'utf8');

/** Subcommand names and long options listed in one help text. */
function parseHelp(text: string): { commands: string[]; options: string[] } {
  const section = (name: string) => {
    const m = new RegExp(`^${name}:\\n((?:  .*\\n?)*)`, 'm').exec(text);
    return m ? m[1]! : '';
  };
  const commands = [...section('Commands').matchAll(/^ {2}(\w+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  const options = [...section('Options').matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!).filter((o) => o !== 'help');
  return { commands, options };
}

async function help(program: string, ...path: string[]) {
  const r = await run(bin(program), [...path, '--help']);
  expect(r.code, r.stderr).toBe(0);
  return parseHelp(r.stdout);
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

  it('hvctl.8: the man page documents every subcommand and option of hvctl', async () => {
    for (const group of (await help('hvctl')).commands) {
      for (const sub of (await help('hvctl', group)).commands) {
        // mdoc: ".Cm kvp list" or ".Cm kvp get | delete"
        expect(hvctlMan, `hvctl.8: ${group} ${sub}`).toMatch(new RegExp(`^\\.Cm ${group} ([\\w|]+ )*\\|? ?${sub}\\b|^\\.Cm ${group} (\\w+ \\| )*${sub}\\b`, 'm'));
        for (const o of (await help('hvctl', group, sub)).options) expect(hvctlMan, `hvctl.8: ${group} ${sub} --${o}`).toContain(`Fl -${o}`);
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

  it('hvguestd.8: the man page has the mdoc sections and documents every option of hvguestd -h', async () => {
    for (const sh of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'FILES', 'EXIT STATUS', 'EXAMPLES', 'SEE ALSO', 'HISTORY']) expect(hvguestdMan).toMatch(new RegExp(`^\\.Sh ${sh}$`, 'm'));
    const r = await run(bin('hvguestd'), ['-h']);
    const options = parseHelp(r.stdout).options;
    expect(options.length).toBeGreaterThan(15);
    for (const o of options) {
      expect(hvguestdMan, `hvguestd.8 --${o}`).toContain(`Fl -${o}`);
      expect(hvguestdMan, `hvguestd.8 --${o} in OPTIONS`).toMatch(new RegExp(`^\\.It Fl -${o}\\b|^\\.It Fl \\w , Fl -${o}\\b`, 'm'));
    }
    for (const f of ['n', 'd', 'h']) expect(hvguestdMan).toMatch(new RegExp(`^\\.It Fl ${f} , Fl -`, 'm'));
  });
});
