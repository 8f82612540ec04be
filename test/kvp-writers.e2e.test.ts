/**
 * Three writers on one pool file at once, as on an Azure VM: the host
 * through hv_kvp_daemon, a cloud-init-style appender (Python, flock only,
 * appending whole records), and hvctl's pool store in another process.
 * 2,000 interleaved writes; afterwards the host's enumeration and the file
 * itself hold every one of them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, dist, killAll, run, start, stop, tempDir, type Proc } from './lib/procs.js';
import { controlRequest } from '../sim/control.js';
import { HV_S_OK } from '../common/wire/constants.js';

const HOST = 700;
const CLOUD_INIT = 700;
const HVCTL = 600;

const PY_APPENDER = `
import fcntl, sys
path, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    rec = ('ci-%d' % i).encode().ljust(512, b'\\0') + ('cloud-init %d' % i).encode().ljust(2048, b'\\0')
    with open(path, 'ab') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(rec)
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)
`;

const STORE_WRITER = (poolDir: string) => `
const { openPoolStore } = await import(${JSON.stringify(dist('kvp/pool-store.js'))});
const store = openPoolStore({ dir: ${JSON.stringify(poolDir)}, flavor: 'linux' });
for (let i = 0; i < ${HVCTL}; i++) store.set(1, Buffer.from('ctl-' + i), Buffer.from('hvctl ' + i));
store.close();
`;

describe('three writers on the guest pool lose nothing', () => {
  let tmp: { dir: string; remove: () => void };
  let sim: Proc;

  beforeAll(async () => {
    tmp = tempDir();
    sim = start(bin('hvsim'), ['serve', '--flavor', 'linux', '--dir', join(tmp.dir, 'sim')]);
    await sim.waitFor(/^hvsim: ready/);
  });
  afterAll(async () => {
    await killAll([sim]);
    await stop(sim);
    tmp.remove();
  });

  it(`${HOST + CLOUD_INIT + HVCTL} interleaved writes`, { timeout: 120_000 }, async () => {
    const simDir = join(tmp.dir, 'sim');
    const poolDir = join(tmp.dir, 'pool');
    const d = start(bin('hv_kvp_daemon'), ['-n', '--flavor', 'linux', '--device', join(simDir, 'vmbus/hv_kvp'), '--pool-dir', poolDir, '--helper-dir', tmp.dir]);
    // Up and registered before the writers start.
    const first = await controlRequest(simDir, { cmd: 'kvp', req: { op: 'set', pool: 1, key: 'host-0', value: 'host 0' }, opts: { waitForDaemonMs: 10_000 } });
    expect(first.ok && (first.result as { status: number }).status).toBe(HV_S_OK);

    const hostWrites = (async () => {
      for (let i = 1; i < HOST; i++) {
        const r = await controlRequest(simDir, { cmd: 'kvp', req: { op: 'set', pool: 1, key: `host-${i}`, value: `host ${i}` } });
        expect(r.ok && (r.result as { status: number }).status, `host-${i}`).toBe(HV_S_OK);
      }
    })();
    const pool1 = join(poolDir, '.kvp_pool_1');
    const [py, ctl] = await Promise.all([
      run('python3', ['-c', PY_APPENDER, pool1, String(CLOUD_INIT)], { ms: 100_000 }),
      run(process.execPath, ['--input-type=module', '-e', STORE_WRITER(poolDir)], { ms: 100_000 }),
      hostWrites,
    ]);
    expect(py.code, py.stderr).toBe(0);
    expect(ctl.code, ctl.stderr).toBe(0);

    // What the host sees: a walk of the whole pool.
    const seen = new Map<string, string>();
    for (let index = 0; ; index++) {
      const r = await controlRequest(simDir, { cmd: 'kvp', req: { op: 'enum', pool: 1, index } });
      const res = (r.ok ? r.result : {}) as { status?: number; key?: string; value?: string };
      if (res.status !== HV_S_OK) break;
      seen.set(res.key!, res.value!);
    }
    const expected = new Map<string, string>();
    for (let i = 0; i < HOST; i++) expected.set(`host-${i}`, `host ${i}`);
    for (let i = 0; i < CLOUD_INIT; i++) expected.set(`ci-${i}`, `cloud-init ${i}`);
    for (let i = 0; i < HVCTL; i++) expected.set(`ctl-${i}`, `hvctl ${i}`);
    const missing = [...expected].filter(([k, v]) => seen.get(k) !== v).map(([k]) => k);
    expect(missing, `missing or wrong: ${missing.slice(0, 10).join(', ')}`).toEqual([]);
    expect(seen.size).toBe(expected.size);

    // And the file itself: whole records, each key once.
    const file = readFileSync(pool1);
    expect(file.length).toBe(expected.size * 2560);
    await stop(d);
  });
});
