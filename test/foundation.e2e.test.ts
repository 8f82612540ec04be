/**
 * End to end, real processes: `hvsim serve` and a small daemon built on
 * common/serve (test/fixtures/echo-daemon.ts) talking over the simulator's
 * socket device nodes through the FFI device layer, driven by `hvsim` host
 * commands, for both flavors.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { bin, dist, killAll, run, start, stop, tempDir, type Proc } from './lib/procs.js';
import { encodeKvp, getValueTarget } from '../common/wire/kvp.js';
import { encodeLinuxVss } from '../common/wire/vss.js';
import { HV_E_FAIL, HV_ERROR_NOT_SUPPORTED, HV_S_CONT, HV_S_OK, KVP_OP_GET, VSS_OP_HOT_BACKUP, type Flavor } from '../common/wire/constants.js';

const NODES: Record<Flavor, { kvp: string; vss: string }> = {
  freebsd: { kvp: 'hv_kvp_dev', vss: 'hv_fsvss_dev' },
  linux: { kvp: 'vmbus/hv_kvp', vss: 'vmbus/hv_vss' },
};

for (const flavor of ['freebsd', 'linux'] as const) {
  describe(`foundation round trips, ${flavor}`, () => {
    let tmp: { dir: string; remove: () => void };
    let sim: Proc;

    const hvsim = (...args: string[]) => run(bin('hvsim'), ['--dir', tmp.dir, ...args]);
    const daemon = async (service: 'kvp' | 'vss') => {
      const d = start(process.execPath, [
        dist('test/fixtures/echo-daemon.js'),
        '--flavor',
        flavor,
        '--service',
        service,
        '--device',
        join(tmp.dir, NODES[flavor][service]),
      ]);
      await d.waitFor(/^registered/);
      return d;
    };

    beforeAll(async () => {
      tmp = tempDir();
      sim = start(bin('hvsim'), ['serve', '--flavor', flavor, '--dir', tmp.dir, '--kvp-timeout', '2', '--vss-timeout', '2', '--vss-freeze-timeout', '2']);
      await sim.waitFor(/^hvsim: ready/);
    });

    afterEach(async () => {
      await killAll([sim]);
    });

    afterAll(async () => {
      const code = await stop(sim);
      tmp.remove();
      expect(code).toBe(0);
    });

    it('KVP: get, set, enumerate walk, unsupported op, through host commands', async () => {
      const d = await daemon('kvp');
      const get = await hvsim('--json', 'kvp', 'get', 'guest', 'Color');
      expect(get.code, get.stderr).toBe(0);
      expect(JSON.parse(get.stdout)).toMatchObject({ status: HV_S_OK, value: 'echo:Color', outcome: 'answered' });

      const set = await hvsim('kvp', 'set', '0', 'Color', 'Blue');
      expect(set.code, set.stderr).toBe(0);

      const walk = await hvsim('--json', 'kvp', 'enum', '1');
      expect(walk.code, walk.stderr).toBe(0);
      expect(JSON.parse(walk.stdout)).toEqual([
        { index: 0, key: 'k0', value: 'v0' },
        { index: 1, key: 'k1', value: 'v1' },
      ]);

      const past = await hvsim('--json', 'kvp', 'enum', '1', '2');
      expect(past.code).toBe(1);
      expect(JSON.parse(past.stdout).status).toBe(HV_S_CONT);

      const del = await hvsim('--json', 'kvp', 'delete', '0', 'Color');
      expect(del.code).toBe(1);
      expect(JSON.parse(del.stdout).status).toBe(HV_ERROR_NOT_SUPPORTED);

      // Exact bytes as the driver delivers them: a GET of "Shape" in pool 1.
      const msg = encodeKvp(flavor, { operation: KVP_OP_GET, pool: 1 }, 'kvp_get', {
        data: { key_size: 6, key: Buffer.from('Shape') },
      });
      const raw = await hvsim('--json', 'raw', '--service', 'kvp', '--hex', msg.toString('hex'));
      expect(raw.code, raw.stderr).toBe(0);
      const r = JSON.parse(raw.stdout);
      expect(r.status).toBe(HV_S_OK);
      const reply = Buffer.from(r.reply, 'hex');
      expect(reply.length).toBe(msg.length);
      expect(reply.readUInt32LE(0)).toBe(HV_S_OK);
      // The value sits where this flavor's kernel reads a GET value (Linux: 532, FreeBSD: 528).
      const at = getValueTarget(flavor).offset;
      expect(reply.subarray(at, at + 12).toString()).toBe('echo:Shape\0\0');

      // SIGTERM while the daemon waits on the device: it wakes, closes the device and exits 0.
      expect(await stop(d)).toBe(0);
    });

    it('KVP: a host request with no daemon ends with exit status 2', async () => {
      const r = await hvsim('--json', '--wait', '0.5', 'kvp', 'get', '1', 'x');
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout).outcome).toMatch(/no-daemon|timeout/);
    });

    it('VSS: check, freeze, thaw round trips', async () => {
      const d = await daemon('vss');
      const check = await hvsim('--json', 'vss', 'check');
      expect(check.code, check.stderr).toBe(0);
      expect(JSON.parse(check.stdout)).toMatchObject({ status: HV_S_OK, flags: 5 });
      for (const op of ['freeze', 'thaw']) {
        const r = await hvsim('--json', 'vss', op);
        expect(r.code, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout).status).toBe(HV_S_OK);
      }
      if (flavor === 'linux') {
        const raw = await hvsim('--json', 'raw', '--service', 'vss', '--hex', encodeLinuxVss({ operation: VSS_OP_HOT_BACKUP }).toString('hex'));
        expect(raw.code, raw.stderr).toBe(0);
        expect(Buffer.from(JSON.parse(raw.stdout).reply, 'hex').readUInt32LE(0)).toBe(HV_S_OK);
        // An op the daemon does not implement gets the failure status.
        const bad = await hvsim('--json', 'raw', '--service', 'vss', '--hex', encodeLinuxVss({ operation: 9 }).toString('hex'));
        expect(bad.code).toBe(1);
        expect(JSON.parse(bad.stdout).status).toBe(HV_E_FAIL);
      }
      await stop(d);
    });

    it('a second daemon on the same node fails with a clear busy error', async () => {
      const d = await daemon('kvp');
      const second = await run(process.execPath, [
        dist('test/fixtures/echo-daemon.js'),
        '--flavor',
        flavor,
        '--service',
        'kvp',
        '--device',
        join(tmp.dir, NODES[flavor].kvp),
      ]);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/EBUSY/);
      await stop(d);
    });

    it('the daemon re-registers after the device is removed and restored', async () => {
      const d = await daemon('kvp');
      expect((await hvsim('remove')).code).toBe(0);
      expect((await hvsim('restore')).code).toBe(0);
      const get = await hvsim('--json', '--wait', '10', 'kvp', 'get', '1', 'again');
      expect(get.code, get.stderr + get.stdout).toBe(0);
      expect(JSON.parse(get.stdout).value).toBe('echo:again');
      expect(d.stdout().match(/^registered/gm)?.length).toBeGreaterThanOrEqual(2);
      await stop(d);
    });
  });
}
