/**
 * `hvctl kvp`: the commander wiring in process with a scripted io and
 * temporary pool directories, then once through bin/hvctl for the exit
 * codes main turns the io's status into.
 */
import { spawn } from 'node:child_process';
import * as nfs from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CommanderError } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { PoolError } from '../kvp/pool-error.js';
import { openPoolStore, type FilePoolStore, type PoolStoreOptions } from '../kvp/pool-store.js';
import { escapeText, kvpCommand, type KvpIo } from './kvp.js';

const ROOT = resolve(import.meta.dirname, '..');
const dirs: string[] = [];
function tmp(): string {
  const d = nfs.mkdtempSync(join(tmpdir(), 'hvguest-cli-kvp-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) nfs.rmSync(d, { recursive: true, force: true });
});

function fakeIo(openStore?: KvpIo['openStore']) {
  const io = {
    stdout: '',
    stderr: '',
    exitCode: undefined as number | undefined,
    opened: [] as PoolStoreOptions[],
    closed: 0,
    writeOut: (t: string) => void (io.stdout += t),
    writeErr: (t: string) => void (io.stderr += t),
    setExitCode: (c: number) => void (io.exitCode = c),
    openStore: (o: PoolStoreOptions): FilePoolStore => {
      io.opened.push(o);
      const s = (openStore ?? openPoolStore)(o);
      return { ...s, close: () => (io.closed++, s.close()) };
    },
  };
  return io;
}

/** Run `hvctl kvp ...args` in process; returns the io, or the CommanderError a usage error raised. */
async function kvp(args: string[], io = fakeIo()) {
  try {
    await kvpCommand(io).parseAsync(args, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { io, usage: e };
  }
  return { io, usage: undefined };
}

describe('hvctl kvp', () => {
  it('set then get and list, default pool guest (1), text and JSON', async () => {
    const d = tmp();
    expect((await kvp(['set', 'Color', 'Blue', '--pool-dir', d])).io.exitCode).toBeUndefined();
    await kvp(['set', 'ignition.config', '{"a":1}', '--pool', 'external', '--pool-dir', d]);
    await kvp(['set', 'x', 'y', '--pool', '4', '--pool-dir', d]);
    expect((await kvp(['get', 'Color', '--pool-dir', d])).io.stdout).toBe('Color\tBlue\n');
    expect((await kvp(['get', 'Color', '--pool', '1', '--json', '--pool-dir', d])).io.stdout).toBe('[{"pool":1,"key":"Color","value":"Blue"}]\n');
    expect((await kvp(['list', '--pool-dir', d])).io.stdout).toBe('0\tignition.config\t{"a":1}\n1\tColor\tBlue\n4\tx\ty\n');
    expect((await kvp(['list', '--pool', 'auto_internal', '--pool-dir', d])).io.stdout).toBe('4\tx\ty\n');
    expect(JSON.parse((await kvp(['list', '--json', '--pool-dir', d])).io.stdout)).toEqual([
      { pool: 0, key: 'ignition.config', value: '{"a":1}' },
      { pool: 1, key: 'Color', value: 'Blue' },
      { pool: 4, key: 'x', value: 'y' },
    ]);
    expect((await kvp(['list', '--json', '--pool', '2', '--pool-dir', d])).io.stdout).toBe('[]\n');
    // The same bytes the daemon would write.
    expect(nfs.readFileSync(join(d, '.kvp_pool_1')).subarray(0, 11).toString('latin1')).toBe('Color\0\0\0\0\0\0');
  });

  it('delete: exit 0 when it was there, 1 (and a message) when not; get of a missing key exits 1', async () => {
    const d = tmp();
    await kvp(['set', 'k', 'v', '--pool-dir', d]);
    const del = await kvp(['delete', 'k', '--pool-dir', d]);
    expect(del.io.exitCode).toBeUndefined();
    const again = await kvp(['delete', 'k', '--pool-dir', d]);
    expect(again.io.exitCode).toBe(1);
    expect(again.io.stderr).toBe('kvp: no key "k" in pool 1 (guest)\n');
    const get = await kvp(['get', 'k', '--pool', 'external', '--pool-dir', d]);
    expect(get.io.exitCode).toBe(1);
    expect(get.io.stderr).toBe('kvp: no key "k" in pool 0 (external)\n');
    expect(get.io.stdout).toBe('');
  });

  it('list and get open read-only (nothing created); set and delete read-write; the store is always closed', async () => {
    const d = join(tmp(), 'pool');
    const io = fakeIo();
    const r = await kvp(['list', '--pool-dir', d], io);
    expect(r.io.exitCode).toBe(2);
    expect(r.io.stderr).toMatch(/^kvp: open pool directory .*pool: no such directory \(no pools there; use --pool-dir\)\n$/);
    expect(nfs.existsSync(d)).toBe(false);
    await kvp(['set', 'k', 'v', '--pool-dir', d], io);
    await kvp(['get', 'k', '--pool-dir', d], io);
    await kvp(['delete', 'k', '--pool-dir', d], io);
    expect(io.opened.map((o) => o.readOnly)).toEqual([true, false, true, false]);
    expect(io.closed).toBe(3); // the failed open had nothing to close
  });

  it('default directory per flavor; --flavor picks it', async () => {
    const refuse = () => {
      throw new PoolError('ENOENT', 'open', 'open pool directory: no such directory');
    };
    const io = fakeIo(refuse);
    await kvp(['list', '--flavor', 'freebsd'], io);
    await kvp(['get', 'k', '--flavor', 'linux'], io);
    await kvp(['list'], io);
    expect(io.opened.map((o) => [o.dir, o.flavor])).toEqual([
      ['/var/db/hyperv/pool', 'freebsd'],
      ['/var/lib/hyperv', 'linux'],
      [process.platform === 'freebsd' ? '/var/db/hyperv/pool' : '/var/lib/hyperv', process.platform === 'freebsd' ? 'freebsd' : 'linux'],
    ]);
  });

  it('store failures (a lock timeout, permissions) are reported with exit 2', async () => {
    const d = tmp();
    const failing = (o: PoolStoreOptions) => {
      const s = openPoolStore(o);
      return {
        ...s,
        get: () => {
          throw new PoolError('ETIMEDOUT', 'get', `get ${d}/.kvp_pool_1: lock ${d}/.kvp_pool_1: timed out after 2000 ms waiting for the fcntl F_WRLCK lock (held by pid 77)`, 1);
        },
        set: () => {
          throw new PoolError('EACCES', 'set', `set ${d}/.kvp_pool_1: EACCES: permission denied`, 1);
        },
      };
    };
    const g = await kvp(['get', 'k', '--pool-dir', d], fakeIo(failing));
    expect(g.io.exitCode).toBe(2);
    expect(g.io.stderr).toMatch(/timed out after 2000 ms waiting for the fcntl F_WRLCK lock \(held by pid 77\)\n$/);
    const s = await kvp(['set', 'k', 'v', '--pool-dir', d], fakeIo(failing));
    expect(s.io.exitCode).toBe(2);
    expect(s.io.stderr).toMatch(/permission denied \(run as root\)\n$/);
  });

  it('usage errors exit 2: bad pool, bad flavor, missing arguments, keys and values that do not fit', async () => {
    const d = tmp();
    for (const args of [['list', '--pool', '5'], ['list', '--pool', 'nope'], ['list', '--flavor', 'netbsd'], ['get'], ['set', 'k'], ['frobnicate']]) {
      const r = await kvp(args);
      expect(r.usage?.exitCode, args.join(' ')).toBe(2);
    }
    expect((await kvp(['list', '--pool', '9'])).io.stderr).toMatch(/expected 0-4 or one of external, guest, auto, auto_external, auto_internal/);
    for (const [args, msg] of [
      [['set', '', 'v'], 'kvp: key must not be empty\n'],
      [['set', 'k'.repeat(512), 'v'], 'kvp: key is 512 bytes of UTF-8, at most 511 fit the record\n'],
      [['set', 'k', 'é'.repeat(1024)], 'kvp: value is 2048 bytes of UTF-8, at most 2047 fit the record\n'],
    ] as const) {
      const r = await kvp([...args, '--pool-dir', d]);
      expect(r.io.exitCode).toBe(2);
      expect(r.io.stderr).toBe(msg);
    }
    expect(nfs.readdirSync(d)).toEqual([]); // refused before anything was opened
  });

  it('text output is one line per record (escaped); JSON keeps the exact text', async () => {
    const d = tmp();
    await kvp(['set', 'multi', 'line one\nline\ttwo\\', '--pool-dir', d]);
    expect((await kvp(['get', 'multi', '--pool-dir', d])).io.stdout).toBe('multi\tline one\\nline\\ttwo\\\\\n');
    expect(JSON.parse((await kvp(['get', 'multi', '--json', '--pool-dir', d])).io.stdout)[0].value).toBe('line one\nline\ttwo\\');
    expect(escapeText('a\r\nb')).toBe('a\\r\\nb');
  });

  it('help names the commands and the exit codes', async () => {
    const r = await kvp(['--help']);
    expect(r.usage?.exitCode).toBe(0);
    expect(r.io.stdout).toMatch(/list \[options\]/);
    expect(r.io.stdout).toMatch(/Exit status: 0 done, 1 key not found \(get, delete\), 2 usage error or failure\./);
  });
});

describe('bin/hvctl kvp (compiled)', () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string }>((res) => {
      const c = spawn(join(ROOT, 'bin/hvctl'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (b: Buffer) => (out += b.toString()));
      c.stderr.on('data', (b: Buffer) => (err += b.toString()));
      c.on('close', (code) => res({ code, out, err }));
    });

  it.skipIf(!nfs.existsSync(join(ROOT, 'dist/cli/kvp.js')))('exit codes reach the shell: 0, 1 not found, 2 usage', async () => {
    const d = tmp();
    expect((await run(['kvp', 'set', '--pool-dir', d, 'k', 'v'])).code).toBe(0);
    expect(await run(['kvp', 'list', '--pool-dir', d])).toEqual({ code: 0, out: '1\tk\tv\n', err: '' });
    expect((await run(['kvp', 'get', '--pool-dir', d, 'nope'])).code).toBe(1);
    expect((await run(['kvp', 'delete', '--pool-dir', d, 'nope'])).code).toBe(1);
    expect((await run(['kvp', 'list', '--pool', '7', '--pool-dir', d])).code).toBe(2);
  });
});
