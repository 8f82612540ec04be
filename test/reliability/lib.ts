/**
 * Shared by the reliability suite (issue #8): how big a run is, and where
 * each test leaves its figures for docs/reliability.md.
 *
 * `npm test` runs every item at a short size; `npm run test:reliability`
 * sets HVGUEST_RELIABILITY=full and runs the counts the issue asks for.
 * Each test appends one JSON line per result to
 * .reliability/results.jsonl (or $HVGUEST_RELIABILITY_OUT);
 * build/reliability-doc.js turns the lines of a full run into the table
 * in docs/reliability.md.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT } from '../lib/procs.js';

/** True in a full run (HVGUEST_RELIABILITY=full). */
export const FULL = process.env.HVGUEST_RELIABILITY === 'full';

/** The count for this run: `short` in `npm test`, `full` with HVGUEST_RELIABILITY=full. */
export const size = (short: number, full: number): number => (FULL ? full : short);

/** One row of the results table. */
export interface ResultRow {
  /** Item number of the issue (1-8) and a short name. */
  item: number;
  test: string;
  load: string;
  faults: string;
  result: string;
  /** Measured numbers worth keeping (ms, counts, KiB). */
  figures?: Record<string, number | string>;
}

const OUT = process.env.HVGUEST_RELIABILITY_OUT ?? join(ROOT, '.reliability', 'results.jsonl');

let commit: string | undefined;
/** The commit under test (with "+" when tracked files differ from it). */
function headCommit(): string {
  if (commit === undefined) {
    try {
      const git = (...a: string[]) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim();
      commit = git('rev-parse', '--short=12', 'HEAD') + (git('status', '--porcelain', '--untracked-files=no', '--', '.', ':!docs/reliability.md') ? '+' : '');
    } catch {
      commit = '?';
    }
  }
  return commit;
}

/** Append a result row (with the run size, time and commit) for the report. */
export function report(row: ResultRow): void {
  mkdirSync(dirname(OUT), { recursive: true });
  appendFileSync(OUT, JSON.stringify({ ...row, run: FULL ? 'full' : 'short', at: new Date().toISOString(), commit: headCommit() }) + '\n');
}

/** Percentile (0-100) of a list of numbers, nearest rank. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
