// What the benchmarks share: the simulator in process on its socket
// transport, daemons started as real processes and timed to registration,
// /proc readings, statistics, and the result rows that run.js gathers into
// one table. Not a benchmark itself (run.js skips it).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const quick = process.argv.includes('--quick');
export const dist = (p) => import(join(ROOT, 'dist', p));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Result rows: one line `BENCH-ROW {json}` on stdout, which run.js takes
 * out of the output and puts into the summary table. Fields: figure (what),
 * ours and base (numbers with unit), ratio (ours / base), target (text),
 * ok (true, false, or undefined when there is no target), note.
 */
export function emit(row) {
  process.stdout.write(`BENCH-ROW ${JSON.stringify(row)}\n`);
}

export const quantile = (xs, q) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
export const median = (xs) => quantile(xs, 0.5);

/**
 * The bundled build to measure: HVGUEST_BENCH_BUNDLE=DIR when set (empty:
 * none), else bundle/hvguest of this checkout (what `make` builds) when it
 * is newer than dist/, else none.
 */
function bundleDir() {
  const env = process.env.HVGUEST_BENCH_BUNDLE;
  if (env !== undefined) return env || undefined;
  const own = join(ROOT, 'bundle/hvguest');
  try {
    return statSync(join(own, 'hvguestd.js')).mtimeMs >= statSync(join(ROOT, 'dist/guestd/main.js')).mtimeMs ? own : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Install the checkout's bundle (bundle/, as `make` leaves it) for this
 * machine into a staging directory, exactly as `make install DESTDIR=...`
 * does (launchers, load.js and code caches, the native freeze guard
 * compiled for the Linux layout), so the benchmarks measure what an
 * installed system runs. Returns { dir, remove }: the staged program
 * directory and its remover; or { why } when there is no fresh bundle of
 * this checkout to stage or the install fails.
 */
export function stageInstall() {
  const own = bundleDir();
  if (!own || own !== join(ROOT, 'bundle/hvguest')) return { why: own ? `HVGUEST_BENCH_BUNDLE=${own} given` : 'no bundle newer than dist/' };
  const dest = mkdtempSync(join(tmpdir(), 'hvguest-bench-install-'));
  const remove = () => rmSync(dest, { recursive: true, force: true });
  const layout = process.platform === 'freebsd' ? 'freebsd' : 'linux';
  try {
    const out = execFileSync('sh', [join(ROOT, 'build/mk/install.sh'), 'install'], { env: { ...process.env, DESTDIR: dest, LAYOUT: layout, PREFIX: '/usr' }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    // Say why the native freeze guard is missing when it is (the footprint rows then show the node guard only).
    for (const line of out.split('\n')) if (/freeze guard/.test(line)) console.log(`staged install: ${line}`);
  } catch (e) {
    remove();
    return { why: `staged install failed: ${String(e.stderr ?? e.message).trim().split('\n').pop()}` };
  }
  return { dir: join(dest, 'usr/lib/hvguest'), remove };
}

/** Where the daemon being measured looks for the native freeze guard (vss/guard.ts nativeGuardPath). */
export function nativeGuardPath() {
  const dir = bundleDir();
  return dir ? resolve(dir, 'hvguest-freeze-guard') : join(ROOT, 'dist/native/hvguest-freeze-guard');
}

/**
 * How a program is started: bin/NAME (the launcher over dist/), or with a
 * bundled build (bundleDir) `node DIR/load.js NAME`, which is what an
 * installed launcher runs (load.js compiles DIR/NAME.js with its V8 code
 * cache). Returns the node arguments and which build it is.
 */
export function program(name) {
  const dir = bundleDir();
  if (dir) {
    const loader = resolve(dir, 'load.js');
    if (!existsSync(loader) || !existsSync(resolve(dir, `${name}.js`))) throw new Error(`HVGUEST_BENCH_BUNDLE=${dir} has no load.js or no ${name}.js (run \`npm run build && node build/mk/bundle.js\`)`);
    return { args: [loader, name], build: process.env.HVGUEST_BENCH_BUNDLE_LABEL || `bundle ${dir}` };
  }
  return { args: [join(ROOT, 'bin', name)], build: 'dist/ (tsc output, not bundled)' };
}

/** For a bundled build: what each program's start does with its V8 code cache ({ NAME: used|rejected|stale|missing|off }); undefined for dist/. */
export function codeCacheState(names) {
  const dir = bundleDir();
  if (!dir) return undefined;
  const out = execFileSync(process.execPath, [resolve(dir, 'load.js'), '--cache-state', ...names], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ')));
}

/** The simulator of `flavor` in this process, serving its nodes as sockets in a fresh directory. */
export async function startSim(flavor = 'linux', opts = {}) {
  const { createSimulator } = await dist('sim/simulator.js');
  const { SocketServer } = await dist('sim/socket-server.js');
  const host = createSimulator({ flavor, ...opts });
  const dir = mkdtempSync(join(tmpdir(), 'hvguest-bench-'));
  const server = new SocketServer(join(dir, 'sim'), host.nodes);
  server.start();
  return {
    host,
    dir,
    node: (name) => join(dir, 'sim', name),
    async close() {
      await server.stop();
      host.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once `cond()` holds, checked every millisecond; rejects after `ms`. */
export async function until(cond, ms, what) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(1);
  }
}

/**
 * Start `argv` (node arguments; with `prefix`, e.g. nsenter, that command
 * runs node) and wait until the simulator `host` shows every service in
 * `services` registered. Returns the child, the milliseconds from spawn to
 * registration, and stop().
 */
export async function startDaemon(host, argv, services, env = {}, prefix = []) {
  const t0 = process.hrtime.bigint();
  const [cmd, ...rest] = [...prefix, process.execPath, ...argv];
  const child = spawn(cmd, rest, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => child.on('exit', (code, sig) => r(code ?? sig)));
  let gone;
  exited.then((c) => (gone = c));
  await until(() => gone !== undefined || services.every((s) => host.status()[s].registered), 20000, `${argv.join(' ')} to register`);
  if (gone !== undefined) throw new Error(`${argv.join(' ')} exited (${gone}) before registering: ${err}`);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return {
    child,
    pid: child.pid,
    ms,
    stderr: () => err,
    async stop() {
      if (gone === undefined) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** A bare node process that prints `ready` and then waits on a timer: the runtime's own baseline. */
export async function startBareNode() {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, ['-e', "process.stdout.write('ready\\n');setTimeout(()=>{},1e9)"], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => child.stdout.once('data', r));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const exited = new Promise((r) => child.on('exit', r));
  return {
    child,
    pid: child.pid,
    ms,
    async stop() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** RSS and its anonymous part of a process, in MiB, from /proc/PID/status. */
export function rss(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 };
}

/** Memory only `pid` uses (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup), in MiB: what ending it would free. */
export function privateMiB(pid) {
  const s = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return (kb('Private_Clean') + kb('Private_Dirty')) / 1024;
}

/** Process ids of `pid` and all its descendants (from /proc/PID/task/TID/children). */
export function processTree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tids) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) out.push(Number(c));
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return out;
}

/** rss() summed over `pid` and its descendants (the VSS daemon's freeze guard is a child process). */
export function treeRss(pid) {
  const all = processTree(pid).map((p) => ({ pid: p, ...rss(p) }));
  return { rss: all.reduce((a, x) => a + x.rss, 0), anon: all.reduce((a, x) => a + x.anon, 0), processes: all.length };
}

/** A pool file of `n` records `key<i>` = `value<i>` (2560 bytes each, the on-disk format). */
export function writePool(path, n, prefix = 'key') {
  const R = 2560;
  const buf = Buffer.alloc(n * R);
  for (let i = 0; i < n; i++) {
    buf.write(`${prefix}${i}`, i * R);
    buf.write(`value${i}`, i * R + 512);
  }
  writeFileSync(path, buf, { mode: 0o644 });
}

/** Does `cmd` run (`cmd args` exits 0 or 1)? */
export async function have(cmd, args = ['--version']) {
  return new Promise((r) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('error', () => r(false));
    c.on('exit', (code) => r(code === 0 || code === 1));
  });
}

export const fmt = (x, d = 1) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(d));
