/**
 * node:child_process, loaded on first use. Loading it also loads net,
 * dgram and the stream modules, a few milliseconds of every start, while a
 * daemon spawns only on rare paths (helpers, hooks, the freeze guard,
 * detaching).
 */
import type * as ChildProcessModule from 'node:child_process';
import { createRequire } from 'node:module';

let loaded: typeof ChildProcessModule | undefined;

export function childProcess(): typeof ChildProcessModule {
  loaded ??= createRequire(import.meta.url)('node:child_process') as typeof ChildProcessModule;
  return loaded;
}
