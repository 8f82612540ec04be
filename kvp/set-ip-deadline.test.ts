/**
 * hv_set_ifconfig is bounded below the kernel's request deadline of each
 * flavor, so a hanging helper ends in an HV_E_FAIL the daemon sends itself
 * instead of a kernel timeout, a refused late reply and a device reopen
 * (found by test/reliability/hostile-helpers.e2e.test.ts; pitfalls F29, P3).
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELPER_TIMEOUT_MS, setIpInfo } from './set-ip.js';
import type { RunOptions, RunResult } from '../common/os/run.js';
import { DEFAULT_TIMEOUTS } from '../sim/timeouts.js';
import { FLAVORS, HV_S_OK } from '../common/wire/constants.js';

const GUID = '{4f0c5a2e-1b2c-4d3e-8f90-a1b2c3d4e5f6}';

describe('hv_set_ifconfig time limit', () => {
  it.each(FLAVORS)('%s: below the kernel KVP timeout, with room for the reply', async (flavor) => {
    expect(HELPER_TIMEOUT_MS[flavor]).toBeLessThanOrEqual(DEFAULT_TIMEOUTS[flavor].kvp - 1000);
    const dir = mkdtempSync(join(tmpdir(), 'hvg-deadline-'));
    try {
      const seen: RunOptions[] = [];
      const run = async (_f: string, _a: readonly string[], o: RunOptions = {}): Promise<RunResult> => {
        seen.push(o);
        return { code: 0, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false, ms: 1 };
      };
      const r = await setIpInfo(
        { adapterId: flavor === 'linux' ? GUID : 'hn0', addrFamily: 1, dhcpEnabled: 0, ipAddr: '192.0.2.20', subNet: '255.255.255.0', gateWay: '192.0.2.1', dnsAddr: '192.0.2.53' },
        { flavor, helperDir: '/nonexistent', configDir: dir, run, sys: { interfaces: async () => [{ name: flavor === 'linux' ? 'eth9' : 'hn0', mac: '00:15:5d:00:00:01', vmbusId: GUID }] } },
      );
      expect(r.status, r.detail).toBe(HV_S_OK);
      expect(seen.map((o) => o.timeoutMs)).toEqual([HELPER_TIMEOUT_MS[flavor]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
