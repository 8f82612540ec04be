/**
 * `hvctl kvp`: read and change the KVP pool files with the daemon's own
 * store code and locks (kvp/pool-store.ts), so it is safe next to a
 * running daemon, cloud-init and the other writers.
 *
 *   kvp list   [--pool N|NAME] [--json] [--pool-dir DIR] [--flavor F]   (all pools by default)
 *   kvp get    KEY [--pool ...] [--json] ...                             (pool guest by default)
 *   kvp set    KEY VALUE [--pool ...] ...
 *   kvp delete KEY [--pool ...] ...
 *
 * get/set/delete default to the Guest pool (1): it is the pool guest
 * software publishes to the host, and the one hv_kvp_cmd writes. list and
 * get open the pools read-only (shared locks, nothing created, no root
 * needed when the directory is searchable); set and delete create the
 * directory and files as the daemon does.
 *
 * Exit status, as grep(1): 0 done, 1 key not found (get, delete), 2 usage
 * error or failure (the message says which). Only hvctl's main exits.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { FLAVORS, KVP_POOL_COUNT, KVP_POOL_GUEST, KVP_POOL_NAMES, parsePool, type Flavor } from '../common/wire/constants.js';
import { KVP_DEFAULTS, runningFlavor } from '../kvp/defaults.js';
import { PoolError } from '../kvp/pool-error.js';
import { POOL_KEY_SIZE, POOL_VALUE_SIZE } from '../kvp/pool-format.js';
import { openPoolStore, type FilePoolStore, type PoolStoreOptions } from '../kvp/pool-store.js';
import type { PoolRecord } from '../kvp/types.js';

/** Where the command writes; tests pass their own (and may replace how the store is opened). */
export interface KvpIo {
  writeOut(text: string): void;
  writeErr(text: string): void;
  setExitCode(code: number): void;
  openStore?: (opts: PoolStoreOptions) => FilePoolStore;
}

export const KVP_EXIT_NOT_FOUND = 1;
export const KVP_EXIT_ERROR = 2;

interface CommonOpts {
  pool?: number;
  json?: boolean;
  poolDir?: string;
  flavor?: Flavor;
}

const processIo: KvpIo = {
  writeOut: (t) => void process.stdout.write(t),
  writeErr: (t) => void process.stderr.write(t),
  setExitCode: (c) => {
    process.exitCode = c;
  },
};

function poolArg(text: string): number {
  const p = parsePool(text);
  if (p === undefined) throw new InvalidArgumentError(`expected 0-${KVP_POOL_COUNT - 1} or one of ${KVP_POOL_NAMES.join(', ')}`);
  return p;
}

/** One line per record; backslash, tab, CR and LF escaped so a line is always one record (--json gives the exact text). */
export function escapeText(s: string): string {
  return s.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!);
}

interface Row {
  pool: number;
  key: string;
  value: string;
}

const row = (pool: number, r: PoolRecord): Row => ({ pool, key: r.key.toString('utf8'), value: r.value.toString('utf8') });

function render(rows: Row[], json: boolean, withPool: boolean): string {
  if (json) return `${JSON.stringify(rows)}\n`;
  return rows.map((r) => `${withPool ? `${r.pool}\t` : ''}${escapeText(r.key)}\t${escapeText(r.value)}\n`).join('');
}

/** Check a key or value against its field; returns an error text or undefined. */
function fieldError(name: string, text: string, size: number): string | undefined {
  const n = Buffer.byteLength(text, 'utf8');
  if (text.includes('\0')) return `${name} must not contain NUL`;
  if (n > size - 1) return `${name} is ${n} bytes of UTF-8, at most ${size - 1} fit the record`;
  return undefined;
}

/** Commander reports usage errors with exit code 1; this command uses 2 (grep's convention). */
function rethrowAsUsage(err: CommanderError): never {
  if (err.exitCode === 1) throw new CommanderError(KVP_EXIT_ERROR, err.code, err.message);
  throw err;
}

/** The `kvp` command with list/get/set/delete, ready for hvctl's program.addCommand(). */
export function kvpCommand(io: KvpIo = processIo): Command {
  const open = io.openStore ?? openPoolStore;
  const fail = (code: number, text: string): void => {
    io.writeErr(`kvp: ${text}\n`);
    io.setExitCode(code);
  };

  /** Open the store, run `fn`, close; PoolErrors become messages and exit 2. */
  const withStore = (o: CommonOpts, readOnly: boolean, fn: (s: FilePoolStore) => void): void => {
    const flavor = o.flavor ?? runningFlavor();
    const dir = o.poolDir ?? KVP_DEFAULTS[flavor].poolDir;
    let store: FilePoolStore | undefined;
    try {
      store = open({ dir, flavor, readOnly });
      fn(store);
    } catch (e) {
      if (!(e instanceof PoolError)) throw e;
      const hint = e.code === 'EACCES' || e.code === 'EPERM' ? ' (run as root)' : e.code === 'ENOENT' && e.op === 'open' ? ' (no pools there; use --pool-dir)' : '';
      fail(KVP_EXIT_ERROR, `${e.message}${hint}`);
    } finally {
      store?.close();
    }
  };

  const common = (c: Command, poolHelp: string): Command =>
    c
      .addOption(new Option('--pool <pool>', `${poolHelp}: 0-${KVP_POOL_COUNT - 1} or ${KVP_POOL_NAMES.join(', ')}`).argParser(poolArg))
      .option('--json', 'print a JSON array of {pool, key, value}')
      .option('--pool-dir <dir>', `the pool directory (default: ${KVP_DEFAULTS.freebsd.poolDir} on FreeBSD, ${KVP_DEFAULTS.linux.poolDir} on Linux)`)
      .addOption(new Option('--flavor <flavor>', 'whose default pool directory (default: the running OS)').choices([...FLAVORS]));

  const list = common(new Command('list').description('print the records of one pool or of all pools (pool<TAB>key<TAB>value)'), 'only this pool').action((o: CommonOpts) =>
    withStore(o, true, (s) => {
      const pools = o.pool !== undefined ? [o.pool] : [...Array(KVP_POOL_COUNT).keys()];
      io.writeOut(render(pools.flatMap((p) => s.list(p).map((r) => row(p, r))), o.json === true, true));
    }),
  );

  const get = common(new Command('get').description('print one record (key<TAB>value); exit 1 when the key is not there').argument('<key>'), 'the pool (default: guest)').action(
    (key: string, o: CommonOpts) => {
      const pool = o.pool ?? KVP_POOL_GUEST;
      withStore(o, true, (s) => {
        const r = s.get(pool, Buffer.from(key, 'utf8'));
        if (!r) return fail(KVP_EXIT_NOT_FOUND, `no key "${key}" in pool ${pool} (${KVP_POOL_NAMES[pool]})`);
        io.writeOut(render([row(pool, r)], o.json === true, false));
      });
    },
  );

  const set = common(new Command('set').description('set a key (overwrite the first record with it, or append one)').argument('<key>').argument('<value>'), 'the pool (default: guest)').action(
    (key: string, value: string, o: CommonOpts) => {
      const bad = (key === '' ? 'key must not be empty' : undefined) ?? fieldError('key', key, POOL_KEY_SIZE) ?? fieldError('value', value, POOL_VALUE_SIZE);
      if (bad) return fail(KVP_EXIT_ERROR, bad);
      withStore(o, false, (s) => s.set(o.pool ?? KVP_POOL_GUEST, Buffer.from(key, 'utf8'), Buffer.from(value, 'utf8')));
    },
  );

  const del = common(new Command('delete').description('delete a key (its first record); exit 1 when the key is not there').argument('<key>'), 'the pool (default: guest)').action(
    (key: string, o: CommonOpts) => {
      const pool = o.pool ?? KVP_POOL_GUEST;
      withStore(o, false, (s) => {
        if (!s.delete(pool, Buffer.from(key, 'utf8'))) fail(KVP_EXIT_NOT_FOUND, `no key "${key}" in pool ${pool} (${KVP_POOL_NAMES[pool]})`);
      });
    },
  );

  const kvp = new Command('kvp').description('list, get, set and delete KVP pool records (the daemon\'s files and locks)');
  for (const c of [list, get, set, del]) kvp.addCommand(c);
  kvp.addHelpText('after', '\nExit status: 0 done, 1 key not found (get, delete), 2 usage error or failure.');
  // addCommand() copies no settings from a parent, so each command gets its own.
  for (const c of [kvp, list, get, set, del]) {
    c.exitOverride(rethrowAsUsage).configureOutput({ writeOut: io.writeOut, writeErr: io.writeErr });
  }
  return kvp;
}
