'use strict';
// Starts one bundled hvguest program (NAME.js in this directory) with V8's
// code cache: NAME.js.cache, written by the bundler (build/mk/bundle.js)
// next to the program, holds the bytecode V8 compiled for it, so a start
// does not parse and compile the whole bundle again. The cache is only a
// shortcut: when it is missing, belongs to other source bytes (its first 32
// bytes are the SHA-256 of NAME.js) or V8 refuses it (another Node.js or V8
// version, other V8 flags), the program is compiled from source as usual.
// Nothing is ever written here at run time.
//
//   node load.js NAME [ARGS...]            run NAME's main(ARGS)
//   require('./load.js').run(NAME, ARGS)   the same, from a launcher
//   node load.js --make-cache NAME...      (the bundler) write NAME.js.cache
//
// HVGUEST_CODE_CACHE=off ignores the cache. `node load.js --cache-state
// NAME` prints what a start would do with it: used, rejected (by V8),
// stale (made for other source bytes), missing or off.
const { createHash } = require('node:crypto');
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const HASH_BYTES = 32;

/** Compile and evaluate NAME.js as a CommonJS module; returns its exports, the compiled script and what became of the cache. */
function load(name, useCache = process.env.HVGUEST_CODE_CACHE !== 'off') {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw Object.assign(new Error(`not a program name: ${JSON.stringify(name)}`), { loadName: true });
  const file = join(__dirname, `${name}.js`);
  const source = readFileSync(file);
  const hash = createHash('sha256').update(source).digest();
  let cachedData;
  let state = useCache ? 'missing' : 'off';
  if (useCache) {
    try {
      const c = readFileSync(`${file}.cache`);
      if (c.length > HASH_BYTES && c.subarray(0, HASH_BYTES).equals(hash)) cachedData = c.subarray(HASH_BYTES);
      else state = 'stale';
    } catch {
      // No cache (or unreadable): compile from source.
    }
  }
  const script = new Script(Module.wrap(source.toString('utf8')), { filename: file, cachedData });
  if (cachedData) state = script.cachedDataRejected ? 'rejected' : 'used';
  const mod = { exports: {}, filename: file, id: file, loaded: false };
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, dirname(file));
  mod.loaded = true;
  return { exports: mod.exports, script, hash, file, state };
}

/** Run program NAME with ARGS; sets process.exitCode from main()'s result. */
function run(name, args) {
  let m;
  try {
    const l = load(name);
    m = l.exports;
    if (typeof m.main !== 'function') throw Object.assign(new Error(`${l.file} has no main()`), { loadName: true });
  } catch (e) {
    // A failure of the program's own top-level code keeps its stack; a bad name or a missing file needs none.
    const detail = e instanceof Error ? (e.code === 'ENOENT' || e.loadName ? e.message : e.stack) : String(e);
    process.stderr.write(`${name}: cannot load the program (${detail})\n`);
    process.exitCode = 70;
    return;
  }
  Promise.resolve(m.main(args)).then(
    (code) => {
      if (typeof code === 'number') process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`${name}: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 70;
    },
  );
}

/** Write NAME.js.cache for each NAME: evaluate the module (defining, not running, the program) and keep what V8 compiled. */
function makeCache(names) {
  for (const name of names) {
    const l = load(name, false);
    const data = l.script.createCachedData();
    const tmp = `${l.file}.cache.tmp${process.pid}`;
    writeFileSync(tmp, Buffer.concat([l.hash, data]), { mode: 0o644 });
    renameSync(tmp, `${l.file}.cache`);
  }
}

module.exports = { run, load };

if (require.main === module) {
  const [first, ...rest] = process.argv.slice(2);
  if (first === '--make-cache') makeCache(rest);
  else if (first === '--cache-state') for (const name of rest) process.stdout.write(`${name} ${load(name).state}\n`);
  else if (first) run(first, rest);
  else {
    process.stderr.write('usage: node load.js NAME [ARGS...] | --make-cache NAME... | --cache-state NAME...\n');
    process.exitCode = 64;
  }
}
