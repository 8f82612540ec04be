#!/usr/bin/env node
/**
 * Writes the results table of docs/reliability.md from the rows the
 * reliability suite appended to .reliability/results.jsonl (see
 * test/reliability/lib.ts). Only the rows of full runs are used unless
 * --short is given. The table goes between the two marker comments; the
 * rest of the page is written by hand.
 *
 *   node build/reliability-doc.js [--short] [--in FILE] [--doc FILE]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const input = arg('--in', join(ROOT, '.reliability', 'results.jsonl'));
const doc = arg('--doc', join(ROOT, 'docs', 'reliability.md'));
const want = process.argv.includes('--short') ? 'short' : 'full';
const START = '<!-- results:start -->';
const END = '<!-- results:end -->';

let rows;
try {
  rows = readFileSync(input, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((r) => r.run === want);
} catch (e) {
  console.error(`reliability-doc: cannot read ${input}: ${e.message}`);
  process.exit(1);
}
if (rows.length === 0) {
  console.error(`reliability-doc: no ${want}-run rows in ${input}`);
  process.exit(1);
}
// The last row per test wins (a test re-run replaces its earlier figures).
const byTest = new Map();
for (const r of rows) byTest.set(r.test, r);
const list = [...byTest.values()].sort((a, b) => a.item - b.item || a.test.localeCompare(b.test));

const git = (...a) => {
  try {
    return execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
};
// Rows name the commit they ran on (test/reliability/lib.ts; "+" = with uncommitted changes); older rows fall back to HEAD now.
const head = git('rev-parse', '--short=12', 'HEAD');
const commits = new Map();
for (const r of byTest.values()) commits.set(r.commit ?? `${head} (rendering time)`, (commits.get(r.commit ?? `${head} (rendering time)`) ?? 0) + 1);
const times = list.map((r) => r.at).sort();
const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

const table = [
  `Run: ${want}, ${times[0]} to ${times[times.length - 1]}, ${list.length} results; commit ${[...commits].map(([c, n]) => `${c} (${n} rows)`).join(', ')}.`,
  '',
  '| # | Test | Load | Faults injected | Result |',
  '|---|---|---|---|---|',
  ...list.map((r) => `| ${r.item} | ${cell(r.test)} | ${cell(r.load)} | ${cell(r.faults)} | ${cell(r.result)} |`),
].join('\n');

const text = readFileSync(doc, 'utf8');
const a = text.indexOf(START);
const b = text.indexOf(END);
if (a < 0 || b < a) {
  console.error(`reliability-doc: ${doc} has no ${START} ... ${END} markers`);
  process.exit(1);
}
writeFileSync(doc, `${text.slice(0, a + START.length)}\n${table}\n${text.slice(b)}`);
console.log(`reliability-doc: ${list.length} results written to ${doc}`);
