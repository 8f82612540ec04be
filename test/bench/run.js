#!/usr/bin/env node
// Runs every benchmark in this folder in turn; `--quick` is passed on (the CI smoke mode).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const here = import.meta.dirname;
let failed = 0;
for (const f of readdirSync(here).filter((n) => n.endsWith('.js') && n !== 'run.js').sort()) {
  console.log(`\n== ${f}`);
  const r = spawnSync(process.execPath, [join(here, f), ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
