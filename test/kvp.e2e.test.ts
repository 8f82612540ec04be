/**
 * hv_kvp_daemon end to end, real processes, both flavors: the daemon on a
 * simulated device node (`hvsim serve`), driven by `hvsim` host commands;
 * pool files in a temporary directory shared with other writers (a
 * cloud-init-style flock appender in Python, hvctl).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { bin, killAll, run, start, stop, tempDir, type Proc } from './lib/procs.js';
import { SIM_TRANSPORTS, noMountLeft, transportTitle } from './lib/transports.js';
import { encodeKvp } from '../common/wire/kvp.js';
import { INTRINSIC_KEYS } from '../kvp/intrinsics.js';
import {
  HV_E_FAIL,
  HV_ERROR_NOT_SUPPORTED,
  HV_S_CONT,
  HV_S_OK,
  KVP_OP_GET,
  KVP_OP_SET,
  type Flavor,
} from '../common/wire/constants.js';

const KVP_NODE: Record<Flavor, string> = { freebsd: 'hv_kvp_dev', linux: 'vmbus/hv_kvp' };

/** Append one 2560-byte record under flock(LOCK_EX), as cloud-init's KVP reporter does. */
const PY_APPEND = `
import fcntl, sys
path, key, value = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
rec = key.ljust(512, b'\\0') + value.ljust(2048, b'\\0')
with open(path, 'ab') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.write(rec)
    f.flush()
    fcntl.flock(f, fcntl.LOCK_UN)
`;

for (const transport of SIM_TRANSPORTS)
for (const flavor of ['freebsd', 'linux'] as const) {
  describe.skipIf(transport.skip !== undefined)(`hv_kvp_daemon end to end, ${flavor}, ${transportTitle(transport)}`, () => {
    let tmp: { dir: string; remove: () => void };
    let sim: Proc;
    let simDir: string;
    let poolDir: string;
    let helperDir: string;

    const hvsim = (...args: string[]) => run(bin('hvsim'), ['--dir', simDir, ...args]);
    const json = async (...args: string[]) => {
      const r = await hvsim('--json', ...args);
      return { code: r.code, out: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
    };
    const startSim = async () => {
      sim = start(bin('hvsim'), ['serve', ...transport.serveArgs, '--flavor', flavor, '--dir', simDir, '--kvp-timeout', '3']);
      await sim.waitFor(/^hvsim: ready/);
    };
    const daemonArgs = (...extra: string[]) => [
      '--flavor',
      flavor,
      '--device',
      join(simDir, KVP_NODE[flavor]),
      '--pool-dir',
      poolDir,
      '--helper-dir',
      helperDir,
      '--config-dir',
      join(tmp.dir, 'cfg'),
      ...extra,
    ];
    const startDaemon = async () => {
      const d = start(bin('hv_kvp_daemon'), ['-n', ...daemonArgs()]);
      // Registered once the simulator says so.
      for (let i = 0; i < 100; i++) {
        const s = await json('status');
        if (s.out?.kvp?.registered) return d;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`daemon did not register: ${d.stderr()}`);
    };

    beforeAll(async () => {
      tmp = tempDir();
      simDir = join(tmp.dir, 'sim');
      poolDir = join(tmp.dir, 'pool');
      helperDir = join(tmp.dir, 'helpers');
      mkdirSync(helperDir, { recursive: true });
      mkdirSync(join(tmp.dir, 'cfg'), { recursive: true });
      // Stub helpers: fixed DNS and DHCP answers; never the machine's own scripts.
      writeFileSync(join(helperDir, 'hv_get_dns_info'), '#!/bin/sh\necho 10.9.9.9\n');
      writeFileSync(join(helperDir, 'hv_get_dhcp_info'), '#!/bin/sh\necho Disabled\n');
      for (const f of ['hv_get_dns_info', 'hv_get_dhcp_info']) chmodSync(join(helperDir, f), 0o755);
      await startSim();
    });
    afterEach(async () => {
      await killAll([sim]);
    });
    afterAll(async () => {
      await stop(sim);
      noMountLeft(simDir);
      tmp.remove();
    });

    it('creates all five pool files and answers every operation on pools 0-4', async () => {
      const d = await startDaemon();
      for (let p = 0; p < 5; p++) expect(existsSync(join(poolDir, `.kvp_pool_${p}`))).toBe(true);
      for (const pool of ['0', '1', '3', '4']) {
        expect((await hvsim('kvp', 'set', pool, `key${pool}`, `value ${pool}`)).code).toBe(0);
        expect((await hvsim('kvp', 'set', pool, 'second', 'two')).code).toBe(0);
        const g = await json('kvp', 'get', pool, `key${pool}`);
        expect(g.out).toMatchObject({ status: HV_S_OK, value: `value ${pool}` });
        const walk = await json('kvp', 'enum', pool);
        expect(walk.code).toBe(0);
        expect(walk.out.map((i: { key: string }) => i.key)).toEqual([`key${pool}`, 'second']);
        expect((await hvsim('kvp', 'delete', pool, 'second')).code).toBe(0);
        expect((await json('kvp', 'delete', pool, 'second')).out.status).toBe(HV_S_CONT);
        expect((await json('kvp', 'get', pool, 'nope')).out.status).toBe(HV_S_CONT);
      }
      // Pool file layout: records of 2560 bytes, key then value, NUL-padded.
      const file = readFileSync(join(poolDir, '.kvp_pool_0'));
      expect(file.length).toBe(2560);
      expect(file.subarray(0, 5).toString()).toBe('key0\0');
      expect(file.subarray(512, 520).toString()).toBe('value 0\0');
      expect(statSync(join(poolDir, '.kvp_pool_0')).mode & 0o777).toBe(0o644);
      await stop(d);
    });

    it('the Auto pool walk gives the ten intrinsic keys; the host may not write it', async () => {
      const d = await startDaemon();
      const walk = await json('kvp', 'enum', 'auto');
      expect(walk.code).toBe(0);
      expect(walk.out.map((i: { key: string }) => i.key)).toEqual(INTRINSIC_KEYS);
      const byKey = Object.fromEntries(walk.out.map((i: { key: string; value: string }) => [i.key, i.value]));
      expect(byKey.OSName.length).toBeGreaterThan(0);
      expect(byKey.ProcessorArchitecture.length).toBeGreaterThan(0);
      if (flavor === 'linux') expect(byKey.IntegrationServicesVersion).toBe('3.1');
      expect((await json('kvp', 'set', 'auto', 'OSName', 'evil')).out.status).toBe(HV_S_CONT);
      await stop(d);
    });

    it('unknown ops, bad pools and malformed messages get failure statuses and the daemon stays up', async () => {
      const d = await startDaemon();
      const raw = async (hex: string) => (await json('raw', '--service', 'kvp', '--hex', hex)).out;
      expect((await raw(encodeKvp(flavor, { operation: 7, pool: 0 }).toString('hex'))).status).toBe(HV_ERROR_NOT_SUPPORTED);
      expect((await raw(encodeKvp(flavor, { operation: KVP_OP_GET, pool: 9 }, 'kvp_get', { data: { key_size: 2, key: Buffer.from('k') } }).toString('hex'))).status).toBe(HV_E_FAIL);
      // Too short: the daemon reads 2 bytes and answers HV_E_FAIL.
      expect((await raw('0001')).status).toBe(HV_E_FAIL);
      // Too long: Linux refuses the read (EINVAL), the daemon reopens and the kernel fails the request;
      // FreeBSD hands over the first 7430 bytes, a SET whose key has no terminator (HV_S_CONT).
      expect((await raw(Buffer.alloc(9000, 1).toString('hex'))).status).toBe(flavor === 'linux' ? HV_E_FAIL : HV_S_CONT);
      // A SET whose key has no terminator inside its field.
      const noNul = encodeKvp(flavor, { operation: KVP_OP_SET, pool: 0 }, 'kvp_set', { data: { key_size: 512, value_size: 2, key: Buffer.alloc(512, 0x41), value: Buffer.from('v') } });
      expect((await raw(noNul.toString('hex'))).status).toBe(HV_S_CONT);
      // Still answering.
      expect((await hvsim('kvp', 'set', '0', 'after', 'ok')).code).toBe(0);
      expect((await json('kvp', 'get', '0', 'after')).out.value).toBe('ok');
      expect(d.child.exitCode).toBeNull();
      await stop(d);
    });

    it('records written by a cloud-init-style flock appender and by hvctl while the daemon runs reach the host', async () => {
      const d = await startDaemon();
      const pool1 = join(poolDir, '.kvp_pool_1');
      const py = await run('python3', ['-c', PY_APPEND, pool1, 'CLOUD_INIT|1|start|x', '{"result":"SUCCESS"}']);
      expect(py.code, py.stderr).toBe(0);
      const g = await json('kvp', 'get', 'guest', 'CLOUD_INIT|1|start|x');
      expect(g.out).toMatchObject({ status: HV_S_OK, value: '{"result":"SUCCESS"}' });
      // hvctl, the administrator's tool, writes the same file under the same locks.
      const ctl = await run(bin('hvctl'), ['kvp', 'set', '--pool', 'guest', '--pool-dir', poolDir, 'FromHvctl', 'yes']);
      expect(ctl.code, ctl.stderr).toBe(0);
      expect((await json('kvp', 'get', 'guest', 'FromHvctl')).out).toMatchObject({ status: HV_S_OK, value: 'yes' });
      const walk = await json('kvp', 'enum', 'guest');
      expect(walk.out.map((i: { key: string }) => i.key)).toEqual(expect.arrayContaining(['CLOUD_INIT|1|start|x', 'FromHvctl']));
      await stop(d);
    });

    it('re-registers when the device disappears and comes back (simulator restart)', async () => {
      const d = await startDaemon();
      expect((await hvsim('kvp', 'set', '0', 'before', '1')).code).toBe(0);
      await stop(sim);
      await new Promise((r) => setTimeout(r, 300));
      await startSim();
      const g = await json('--wait', '15', 'kvp', 'get', '0', 'before');
      expect(g.out, g.stderr).toMatchObject({ status: HV_S_OK, value: '1' });
      expect(d.child.exitCode).toBeNull();
      await stop(d);
    });

    it('without -n it detaches, writes a pidfile, refuses a second instance, and stops on SIGTERM', async () => {
      const pidfile = join(tmp.dir, `kvp-${flavor}.pid`);
      const first = await run(bin('hv_kvp_daemon'), daemonArgs('--pidfile', pidfile));
      expect(first.code, first.stderr).toBe(0);
      const pid = Number(readFileSync(pidfile, 'utf8').trim());
      expect(pid).toBeGreaterThan(0);
      expect(() => process.kill(pid, 0)).not.toThrow();
      const second = await run(bin('hv_kvp_daemon'), daemonArgs('--pidfile', pidfile));
      expect(second.code).toBe(75);
      expect(second.stderr).toMatch(/already running|another KVP daemon/);
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100 && existsSync(pidfile); i++) await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(pidfile)).toBe(false);
    });

    it('a missing device is a clear startup error with its own exit status', async () => {
      const r = await run(bin('hv_kvp_daemon'), ['-n', '--flavor', flavor, '--device', join(tmp.dir, 'no-such-node'), '--pool-dir', poolDir]);
      expect(r.code).toBe(69);
      expect(r.stderr).toContain('no-such-node');
      expect(r.stderr).toMatch(/ENOENT/);
    });
  });
}

describe('hv_kvp_daemon command line', () => {
  it('-h prints the usage to stdout and exits 0; an unknown flag exits 64 with the usage on stderr', async () => {
    const h = await run(bin('hv_kvp_daemon'), ['-h']);
    expect(h.code).toBe(0);
    for (const o of ['-n', '-d', '--device', '--pool-dir', '--helper-dir', '--flavor']) expect(h.stdout).toContain(o);
    const bad = await run(bin('hv_kvp_daemon'), ['--bogus']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/unknown option/);
    expect(bad.stderr).toContain('Usage: hv_kvp_daemon');
  });
});
