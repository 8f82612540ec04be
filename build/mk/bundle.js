#!/usr/bin/env node
// Bundle every program of package.json "bin" into one CommonJS file each,
// ready to install without node_modules:
//
//   bundle/hvguest/NAME.js          one per program (pino, commander inside)
//   bundle/hvguest/NAME.js.cache    V8's code cache for it (SHA-256 of
//                                   NAME.js, then the data), made by this
//                                   Node.js when the bundle is for this
//                                   machine (not with BUNDLE_CODE_CACHE=no);
//                                   a start with another Node.js compiles
//                                   from source (load.js)
//   bundle/hvguest/load.js          starts a program with its code cache
//                                   (the launchers call it)
//   bundle/hvguest/guard-main.js    helper scripts the programs start by path
//   bundle/hvguest/package.json     name, version ("type": "commonjs"; the
//                                   KVP daemon reads its version from here)
//   bundle/hvguest/THIRD-PARTY-LICENSES  the license text of every package
//                                   bundled into the programs (pino,
//                                   commander and theirs: MIT, which asks
//                                   for the notice in every copy)
//   bundle/hvguest/node_modules/koffi/index.cjs   koffi's loader, one file
//   bundle/hvguest/node_modules/@koromix/koffi-OS-CPU/   native binaries
//   bundle/programs                 "NAME DIR" per program, DIR sbin or bin
//
// CommonJS rather than ESM: V8's code cache can be used for a script, not for
// an ES module in Node 20, and a plain script skips the ESM loader (about a
// third of the start-up time, measured in test/bench/footprint.js).
// import.meta.url becomes the file URL of the bundle file itself.
//
// koffi is loaded at run time with createRequire(import.meta.url)('koffi'),
// so Node resolves it from node_modules/ next to the bundle, and koffi's own
// loader finds @koromix/koffi-OS-CPU beside it: the same lookup as in the
// checkout, no patched paths. Native packages come from node_modules when
// installed there, otherwise from `npm pack` (cached in .koffi-cache/).
//
// Environment: KOFFI_PLATFORMS="freebsd-x64 freebsd-ia32 ..." (default: this
// machine's); BUNDLE, the output directory (default bundle/);
// BUNDLE_CODE_CACHE=no, no NAME.js.cache. Run from the
// top of the tree after `npm run build`.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const out = resolve(root, process.env.BUNDLE || 'bundle');
const lib = join(out, 'hvguest');
const cache = join(root, '.koffi-cache');

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const runtimeDeps = new Set(Object.keys(pkg.dependencies ?? {}));

function fail(msg) {
  process.stderr.write(`bundle: ${msg}\n`);
  process.exit(1);
}

/** Daemons go to sbin/, tools an administrator or a test runs go to bin/. */
export const USER_TOOLS = new Set(['hvctl', 'hvsim']);

/** The compiled module behind each launcher in bin/ (their one `import('../dist/...')`). */
function programs() {
  const bins = pkg.bin ?? {};
  const list = [];
  for (const [name, launcher] of Object.entries(bins)) {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) fail(`package.json bin name ${JSON.stringify(name)} is not a plain file name`);
    const text = readFileSync(join(root, launcher), 'utf8');
    const m = /import\(\s*['"]\.\.\/(dist\/[^'"]+\.js)['"]\s*\)/.exec(text);
    if (!m) fail(`${launcher} (bin ${name}) has no import('../dist/....js') to bundle`);
    const entry = join(root, m[1]);
    if (!existsSync(entry)) fail(`${m[1]} (bin ${name}) is missing: run \`npm run build\` first`);
    list.push({ name, entry, dir: USER_TOOLS.has(name) ? 'bin' : 'sbin' });
  }
  if (list.length === 0) fail('package.json has no "bin" programs');
  return list;
}

// Our modules use import.meta.url (paths next to the program, createRequire);
// in the CommonJS bundle it is the bundle file's own URL. __hvguestLazy(id)
// stands for require(id) but loads the module at its first use (see
// LAZY_REQUIRES).
const banner = [
  "const __hvguestUrl = require('node:url').pathToFileURL(__filename).href;",
  'const __hvguestLazy = (id) => { let m; const get = () => (m ??= require(id)); return new Proxy(() => {}, { apply: (_, t, a) => Reflect.apply(get(), t, a), get: (_, k) => get()[k], has: (_, k) => k in get() }); };',
].join('\n');

/**
 * Requires in bundled dependencies that load a built-in module at start for
 * a path the daemons never or rarely take; each becomes a load on first use
 * (the module's behaviour is unchanged). Together they keep child_process,
 * net, dgram, worker_threads, assert and the stream modules out of a start
 * (about 5 ms; test/bench/footprint.js). Each text must occur exactly once
 * in its file, so a dependency update that changes it fails the build here
 * instead of silently loading eagerly again.
 */
const LAZY_REQUIRES = [
  // Only executable subcommands spawn; the programs have none.
  { file: 'commander/lib/command.js', from: "const childProcess = require('node:child_process');", to: "const childProcess = __hvguestLazy('node:child_process');" },
  // assert() runs in a few of sonic-boom's functions, not at load.
  { file: 'sonic-boom/index.js', from: "const assert = require('assert')", to: "const assert = __hvguestLazy('assert')" },
  // isMainThread is read only for an asynchronous destination (ours is synchronous).
  { file: 'pino/lib/tools.js', from: "const { isMainThread } = require('worker_threads')", to: "const workerThreads = __hvguestLazy('worker_threads')" },
  { file: 'pino/lib/tools.js', from: '!opts.sync && isMainThread', to: '!opts.sync && workerThreads.isMainThread' },
  // Transports (worker threads, thread-stream) load when a transport is asked for; the programs ask for none.
  { file: 'pino/lib/tools.js', from: "const transport = require('./transport')", to: "const transport = (...args) => require('./transport')(...args)" },
  { file: 'pino/pino.js', from: "module.exports.transport = require('./lib/transport')", to: "module.exports.transport = (...args) => require('./lib/transport')(...args)" },
];

const lazyRequires = {
  name: 'hvguest-lazy-requires',
  setup(b) {
    const byFile = new Map();
    for (const r of LAZY_REQUIRES) byFile.set(r.file, [...(byFile.get(r.file) ?? []), r]);
    const used = new Set();
    b.onLoad({ filter: /node_modules[\\/].*\.js$/ }, (args) => {
      const path = args.path.split('\\').join('/');
      const key = [...byFile.keys()].find((f) => path.endsWith(`/node_modules/${f}`));
      if (!key) return undefined;
      let text = readFileSync(args.path, 'utf8');
      for (const r of byFile.get(key)) {
        const n = text.split(r.from).length - 1;
        if (n !== 1) fail(`${key}: expected the text ${JSON.stringify(r.from)} once, found it ${n} times (dependency changed? update LAZY_REQUIRES in build/mk/bundle.js)`);
        text = text.replace(r.from, r.to);
        used.add(r);
      }
      return { contents: text, loader: 'js' };
    });
    b.onEnd((result) => {
      // A file bundled here must have had every one of its patches applied.
      const inputs = Object.keys(result.metafile?.inputs ?? {}).map((i) => i.split('\\').join('/'));
      for (const r of LAZY_REQUIRES) {
        if (!used.has(r) && inputs.some((i) => i.endsWith(`node_modules/${r.file}`))) fail(`${r.file} was bundled without its lazy-require patch`);
      }
    });
  },
};

/** Package name of a node_modules path, or undefined for our own files. */
function packageOf(file) {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file.split('\\').join('/'));
  return m?.[1];
}

/** node_modules/PKG (or node_modules/A/node_modules/PKG) of a bundled input, or undefined for our own files. */
function packageDirOf(file) {
  const f = file.split('\\').join('/');
  const i = f.lastIndexOf('node_modules/');
  if (i < 0) return undefined;
  const rest = f.slice(i + 'node_modules/'.length).split('/');
  return f.slice(0, i) + 'node_modules/' + rest.slice(0, rest[0].startsWith('@') ? 2 : 1).join('/');
}

/** Every package directory whose code went into a bundle. */
const bundledPackages = new Set();

/** One file with name, version, license and license text of each bundled package. */
function writeThirdPartyLicenses() {
  const parts = [];
  for (const dir of [...bundledPackages].sort()) {
    const abs = resolve(root, dir);
    const meta = JSON.parse(readFileSync(join(abs, 'package.json'), 'utf8'));
    const text = readdirSync(abs).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
    if (!text) fail(`${dir} (bundled) has no LICENSE file to ship with it`);
    parts.push(`${meta.name} ${meta.version} (${meta.license ?? 'license not declared'})\n\n${readFileSync(join(abs, text), 'utf8').trim()}\n`);
  }
  const sep = `\n${'-'.repeat(72)}\n\n`;
  writeFileSync(join(lib, 'THIRD-PARTY-LICENSES'), `Packages bundled into the hvguest programs in this directory, with their licenses.\n${sep}${parts.join(sep)}`);
  return parts.length;
}

/** Files a bundled module starts by path: `new URL('./x.js', import.meta.url)`. */
function sideEntries(inputs) {
  const found = new Map();
  for (const input of inputs) {
    if (packageOf(input)) continue;
    const abs = resolve(root, input);
    const text = readFileSync(abs, 'utf8');
    for (const m of text.matchAll(/new URL\(\s*['"]\.\/([^'"/]+\.js)['"]\s*,\s*import\.meta\.url\s*\)/g)) {
      const target = join(dirname(abs), m[1]);
      const prev = found.get(m[1]);
      if (prev && prev !== target) fail(`two different side files named ${m[1]}: ${prev} and ${target}`);
      if (!existsSync(target)) fail(`${relative(root, abs)} starts ${m[1]}, which is missing`);
      found.set(m[1], target);
    }
  }
  return found;
}

async function bundleCjs(entryPoints) {
  const r = await build({
    entryPoints,
    outdir: lib,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    banner: { js: banner },
    define: { 'import.meta.url': '__hvguestUrl', 'import.meta.dirname': '__dirname', 'import.meta.filename': '__filename' },
    plugins: [lazyRequires],
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
  });
  const inputs = Object.keys(r.metafile.inputs);
  for (const input of inputs) {
    const p = packageOf(input);
    if (p && !runtimeDeps.has(p) && !isRuntimeDepOfDep(p)) fail(`${input} would be bundled, but ${p} is not a runtime dependency`);
    const dir = packageDirOf(input);
    if (dir && r.metafile.outputs && Object.values(r.metafile.outputs).some((o) => (o.inputs[input]?.bytesInOutput ?? 0) > 0)) bundledPackages.add(dir);
  }
  return inputs;
}

/** Transitive runtime dependencies (pino's own dependencies) are fine; devDependencies are not. */
function isRuntimeDepOfDep(name) {
  const seen = new Set();
  const walk = (dep) => {
    if (seen.has(dep)) return false;
    seen.add(dep);
    const file = join(root, 'node_modules', dep, 'package.json');
    if (!existsSync(file)) return false;
    const deps = Object.keys(JSON.parse(readFileSync(file, 'utf8')).dependencies ?? {});
    return deps.includes(name) || deps.some(walk);
  };
  return [...runtimeDeps].some(walk);
}

/** koffi's CommonJS loader as one file; its native packages stay outside. */
async function bundleKoffi() {
  const kdir = join(root, 'node_modules', 'koffi');
  const kpkg = JSON.parse(readFileSync(join(kdir, 'package.json'), 'utf8'));
  const dest = join(lib, 'node_modules', 'koffi');
  await build({
    entryPoints: [join(kdir, 'index.cjs')],
    outfile: join(dest, 'index.cjs'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['@koromix/*'],
    logLevel: 'warning',
  });
  writeFileSync(
    join(dest, 'package.json'),
    JSON.stringify({ name: 'koffi', version: kpkg.version, license: kpkg.license, main: './index.cjs' }, null, 2) + '\n',
  );
  cpSync(join(kdir, 'LICENSE.txt'), join(dest, 'LICENSE.txt'));
  return kpkg.version;
}

/** The native package for one platform, from node_modules or from the registry. */
function koffiNative(platform, version) {
  if (!/^[a-z0-9]+-[a-z0-9]+$/.test(platform)) fail(`KOFFI_PLATFORMS entry ${JSON.stringify(platform)} is not OS-CPU (e.g. freebsd-x64)`);
  const name = `@koromix/koffi-${platform}`;
  const dest = join(lib, 'node_modules', name);
  const local = join(root, 'node_modules', name);
  const localVersion = existsSync(join(local, 'package.json')) ? JSON.parse(readFileSync(join(local, 'package.json'), 'utf8')).version : undefined;
  let src = local;
  if (localVersion !== version) {
    src = join(cache, `${platform}-${version}`);
    if (!existsSync(join(src, 'package.json'))) {
      // Fetched into a private directory and renamed into place, so two
      // builds at once (parallel tests) never see a half-extracted package.
      mkdirSync(cache, { recursive: true });
      const tmp = mkdtempSync(join(cache, `.fetch-${platform}-`));
      try {
        let tgz;
        try {
          tgz = execFileSync('npm', ['pack', '--silent', `${name}@${version}`, '--pack-destination', tmp], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
            .trim()
            .split('\n')
            .pop();
        } catch (e) {
          rmSync(tmp, { recursive: true, force: true });
          fail(`cannot fetch ${name}@${version} with npm pack (${e.message.split('\n')[0]}); is the npm registry reachable?`);
        }
        const pkgDir = join(tmp, 'package');
        mkdirSync(pkgDir);
        execFileSync('tar', ['-xzf', join(tmp, tgz), '-C', pkgDir, '--strip-components=1']);
        try {
          renameSync(pkgDir, src);
        } catch (e) {
          // Another build got there first: use its copy.
          if (!existsSync(join(src, 'package.json'))) throw e;
        }
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    }
  }
  // The loader (index.js), package.json and the binaries; not the README.
  mkdirSync(dest, { recursive: true });
  for (const entry of readdirSync(src, { withFileTypes: true })) {
    if (entry.isDirectory() || entry.name === 'index.js' || entry.name === 'package.json') cpSync(join(src, entry.name), join(dest, entry.name), { recursive: true });
  }
  if (!readdirSync(dest, { recursive: true }).some((f) => String(f).endsWith('.node'))) fail(`${name}@${version} has no .node binary`);
}

/** NAME.js.cache for each program, made by load.js with this Node.js (the one that will run them in the checkout and on the build machine). */
function makeCodeCache(names) {
  try {
    execFileSync(process.execPath, [join(lib, 'load.js'), '--make-cache', ...names], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (e) {
    fail(`cannot make the code cache: ${e.message.split('\n')[0]}`);
  }
}

function hostPlatform() {
  return `${process.platform}-${process.arch}`;
}

async function main() {
  const progs = programs();
  rmSync(out, { recursive: true, force: true });
  mkdirSync(lib, { recursive: true });

  let inputs = await bundleCjs(Object.fromEntries(progs.map((p) => [p.name, p.entry])));
  // Helper scripts started by path, and the scripts those start, each bundled alone.
  const done = new Set(progs.map((p) => `${p.name}.js`));
  for (;;) {
    const more = [...sideEntries(inputs)].filter(([file]) => !done.has(file));
    if (more.length === 0) break;
    for (const [file] of more) done.add(file);
    inputs = await bundleCjs(Object.fromEntries(more.map(([file, target]) => [basename(file, '.js'), target])));
  }

  writeThirdPartyLicenses();
  writeFileSync(
    join(lib, 'package.json'),
    JSON.stringify({ name: pkg.name, version: pkg.version, description: pkg.description, license: pkg.license, private: true, type: 'commonjs' }, null, 2) + '\n',
  );
  cpSync(join(root, 'build/mk/load.cjs'), join(lib, 'load.js'));
  const platforms = (process.env.KOFFI_PLATFORMS ?? '').split(/\s+/).filter(Boolean);
  // A code cache only helps the Node.js that made it: made when the bundle is for this machine,
  // not for another system's (the FreeBSD port's distfile: BUNDLE_CODE_CACHE=no, and V8's cache
  // bytes differ from run to run, which a reproducible distfile cannot have).
  const cache = process.env.BUNDLE_CODE_CACHE !== 'no' && (platforms.length === 0 || platforms.includes(hostPlatform()));
  if (cache) makeCodeCache(progs.map((p) => p.name));
  const version = await bundleKoffi();
  for (const p of platforms.length ? [...new Set(platforms)] : [hostPlatform()]) koffiNative(p, version);
  writeFileSync(join(out, 'programs'), progs.map((p) => `${p.name} ${p.dir}\n`).join(''));
  process.stdout.write(`bundle: ${progs.map((p) => p.name).join(' ')} + ${[...done].filter((f) => !progs.some((p) => `${p.name}.js` === f)).join(' ') || 'no helpers'} -> ${relative(root, lib)}/ (koffi ${platforms.join(' ') || hostPlatform()})\n`);
}

await main();
