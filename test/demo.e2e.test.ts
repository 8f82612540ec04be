/**
 * The README's demo command keeps working: `node build/demo.js` (what
 * `npm run demo` runs after building) finishes with status 0 and shows the
 * host seeing the intrinsic items, a host-pushed key read back in the guest,
 * and a backup cycle (dry run).
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ROOT, run } from './lib/procs.js';

describe('the demo', () => {
  it('runs to the end and shows what the host sees', { timeout: 120_000 }, async () => {
    const r = await run(process.execPath, [join(ROOT, 'build/demo.js')], { ms: 110_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/IntegrationServicesVersion\t3\.1/);
    expect(r.stdout).toMatch(/OSName\t\S+/);
    expect(r.stdout).toMatch(/DeploymentId\ta1b2c3/);
    expect(r.stdout).toMatch(/vss freeze\n {2}HV_S_OK/);
    expect(r.stdout).toMatch(/dry run: pretending frozen since/);
    expect(r.stdout).toContain('Demo done');
  });
});
