#!/usr/bin/env node
// Runs every benchmark in this folder in turn (`--quick` is passed on: the
// CI smoke mode), shows each one's own output, and ends with ONE table of
// the figures they reported (BENCH-ROW lines, see lib.js), each measured
// against its baseline in the same run. A full run also writes that table
// to docs/benchmarks.md with the date, commit and machine; --quick never
// writes (pass --write to force it). Exits 1 when a benchmark failed to
// run; a missed target is reported in the table, not as a failure.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT, fmt, program, quick, stageInstall } from './lib.js';

const here = import.meta.dirname;
const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith('--'));
const files = readdirSync(here)
  .filter((n) => n.endsWith('.js') && n !== 'run.js' && n !== 'lib.js')
  .filter((n) => only.length === 0 || only.some((o) => n.startsWith(o)))
  .sort();
// Measure what an installed system runs: the bundle staged as `make install DESTDIR=...` puts it.
const staged = process.env.HVGUEST_BENCH_BUNDLE === undefined ? stageInstall() : undefined;
if (staged?.dir) {
  process.env.HVGUEST_BENCH_BUNDLE = staged.dir;
  process.env.HVGUEST_BENCH_BUNDLE_LABEL = 'bundle/ staged by make install (DESTDIR)';
} else if (staged) console.log(`measuring without a staged install: ${staged.why}`);
process.on('exit', () => staged?.remove?.());
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]]) process.on(sig, () => process.exit(code));
const load0 = loadavg()[0];
const t0 = Date.now();
const rows = [];
const failed = [];
for (const f of files) {
  console.log(`\n== ${f}`);
  const started = Date.now();
  const code = await new Promise((resolve) => {
    const c = spawn(process.execPath, [join(here, f), ...args.filter((a) => a.startsWith('--'))], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    c.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('BENCH-ROW ')) rows.push({ bench: f.replace(/\.js$/, ''), ...JSON.parse(line.slice(10)) });
        else process.stdout.write(`${line}\n`);
      }
    });
    c.on('exit', (code, sig) => resolve(code ?? sig));
  });
  console.log(`(${f}: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  if (code !== 0) failed.push(`${f} (${code})`);
}
const load1 = loadavg()[0];

const verdict = (r) => (r.ok === true ? 'met' : r.ok === false ? 'MISSED' : '-');
const header = ['figure', 'ours', 'baseline (same run)', 'ratio', 'target', 'result'];
const table = rows.map((r) => [r.figure, r.ours ?? '', r.base ?? '', r.ratio === undefined ? '' : `${fmt(r.ratio, 2)}x`, r.target ?? '', verdict(r) + (r.note ? ` (${r.note})` : '')]);
const md = [`| ${header.join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`, ...table.map((c) => `| ${c.map((x) => String(x).replace(/\|/g, '\\|')).join(' | ')} |`)].join('\n');

console.log(`\n== summary (${rows.length} figures, ${((Date.now() - t0) / 1000).toFixed(0)} s${quick ? ', quick mode' : ''})`);
const widths = header.map((h, i) => Math.min(60, Math.max(h.length, ...table.map((c) => String(c[i]).length))));
const line = (c) => c.map((x, i) => String(x).padEnd(widths[i])).join('  ');
console.log(line(header));
for (const c of table) console.log(line(c));
if (failed.length) console.log(`\nbenchmarks that failed to run: ${failed.join(', ')}`);

if (!quick || args.includes('--write')) {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  const cpu = cpus();
  const loaded = Math.max(load0, load1) > cpu.length * 0.5;
  // How each figure is taken and what the misses mean: kept by hand next to the benchmarks.
  const notes = readFileSync(join(here, 'NOTES.md'), 'utf8').trim();
  const doc = `# Benchmarks

Written by \`npm run bench\` (sources in test/bench/; \`npm run bench -- --quick\` is
the CI smoke run and writes nothing). Every ratio compares two figures taken
side by side in the same run, so a busy machine moves both.

- date: ${new Date().toISOString()}
- commit: ${commit}
- machine: ${cpu.length} x ${cpu[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, Node ${process.version}
- load average (1 min) at start / end: ${load0.toFixed(2)} / ${load1.toFixed(2)}${loaded ? ' — **a loaded machine: absolute figures are noisy, ratios less so**' : ''}
- build of the daemons measured: ${program('hvguestd').build}
- mode: ${quick ? 'quick (smoke) figures' : 'full'}${failed.length ? `\n- benchmarks that failed to run: ${failed.join(', ')}` : ''}

${md}

${notes}
`;
  writeFileSync(join(ROOT, 'docs/benchmarks.md'), doc);
  console.log('\nwrote docs/benchmarks.md');
}
process.exitCode = failed.length ? 1 : 0;
