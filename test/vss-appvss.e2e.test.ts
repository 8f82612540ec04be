/**
 * FreeBSD: hv_vss_daemon together with an application registered on
 * /dev/hv_appvss_dev, as the kernel orders them (spec/devices.md section 2):
 * CHECK and FREEZE go to the application first, then to the file-system
 * daemon; THAW to the daemon first, then to the application; a failing
 * application ends the chain and the daemon never freezes. The application
 * is this test, on the simulated node through the FFI device; the daemon runs
 * in --dry-run on a recorded mount table and records its freeze in the state
 * file, which is how the test sees where in the chain it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FfiDevice } from '../common/device/ffi-device.js';
import { ioctlNumbers } from '../common/device/ioctl.js';
import { HV_E_FAIL, HV_S_OK, HV_VSS_CHECK, HV_VSS_FREEZE, HV_VSS_THAW, VSS_FAIL, VSS_SUCCESS } from '../common/wire/constants.js';
import { decodeFreebsdVss, encodeFreebsdVss } from '../common/wire/vss.js';
import { isWireError } from '../common/wire/errors.js';
import { controlRequest } from '../sim/control.js';
import { bin, killAll, start, stop, tempDir, type Proc } from './lib/procs.js';
import { SIM_TRANSPORTS, noMountLeft, transportTitle } from './lib/transports.js';

const MOUNTS = '/dev/ada0p2 on / (ufs, local, soft-updates)\ndevfs on /dev (devfs)\n';

for (const transport of SIM_TRANSPORTS)
describe.skipIf(transport.skip !== undefined)(`FreeBSD VSS with an application on hv_appvss_dev, ${transportTitle(transport)}`, () => {
  let tmp: { dir: string; remove: () => void };
  let sim: Proc;
  let daemon: Proc;
  let app: FfiDevice;
  const state = () => join(tmp.dir, 'vss.state');
  /** What the application saw: the op, and whether the daemon had frozen at that moment. */
  const seen: { opt: number; daemonFrozen: boolean }[] = [];
  let answer = VSS_SUCCESS;
  const ac = new AbortController();
  let loop: Promise<void>;

  beforeAll(async () => {
    tmp = tempDir();
    writeFileSync(join(tmp.dir, 'mount.txt'), MOUNTS);
    const simDir = join(tmp.dir, 'sim');
    sim = start(bin('hvsim'), ['serve', ...transport.serveArgs, '--flavor', 'freebsd', '--dir', simDir, '--vss-timeout', '5', '--vss-freeze-timeout', '5']);
    await sim.waitFor(/^hvsim: ready/);
    daemon = start(bin('hv_vss_daemon'), ['-n', '--dry-run', '--flavor', 'freebsd', '--mount-table', join(tmp.dir, 'mount.txt'), '--device', join(simDir, 'hv_fsvss_dev'), '--state-file', state(), '--hooks-dir', join(tmp.dir, 'no-hooks')]);
    for (let i = 0; i < 200; i++) {
      const r = await controlRequest(simDir, { cmd: 'status' });
      if (r.ok && (r.result as { vss: { registered: boolean } }).vss.registered) break;
      await new Promise((res) => setTimeout(res, 25));
    }
    app = new FfiDevice({ path: join(simDir, 'hv_appvss_dev'), flavor: 'freebsd', service: 'appvss' });
    await app.open();
    await app.register();
    const { IOCHVVSSREAD, IOCHVVSSWRITE } = ioctlNumbers();
    loop = (async () => {
      while (!ac.signal.aborted) {
        if (!(await app.waitReadable(ac.signal))) continue;
        const raw = await app.ioctl(IOCHVVSSREAD, Buffer.alloc(64));
        const m = decodeFreebsdVss(raw);
        if (isWireError(m) || m.status !== 0) continue;
        seen.push({ opt: m.opt, daemonFrozen: existsSync(state()) });
        await app.ioctl(IOCHVVSSWRITE, encodeFreebsdVss({ opt: m.opt, msgid: m.msgid, status: answer }));
      }
    })();
  });

  afterAll(async () => {
    ac.abort();
    await loop.catch(() => undefined);
    app?.close();
    await stop(daemon);
    await killAll([sim]);
    await stop(sim);
    noMountLeft(join(tmp.dir, 'sim'));
    tmp.remove();
  });

  const host = async (op: 'check' | 'freeze' | 'thaw') => {
    const r = await controlRequest(join(tmp.dir, 'sim'), { cmd: 'vss', op });
    if (!r.ok) throw new Error(r.error);
    return r.result as { status: number; flags?: number; outcome: string };
  };

  it('CHECK and FREEZE reach the application before the daemon; THAW reaches it after', async () => {
    expect(await host('check')).toMatchObject({ status: HV_S_OK, flags: 5 });
    expect(await host('freeze')).toMatchObject({ status: HV_S_OK, outcome: 'answered' });
    expect(existsSync(state())).toBe(true); // the daemon froze (dry run) after the application answered
    expect(await host('thaw')).toMatchObject({ status: HV_S_OK });
    expect(existsSync(state())).toBe(false);
    expect(seen).toEqual([
      { opt: HV_VSS_CHECK, daemonFrozen: false },
      { opt: HV_VSS_FREEZE, daemonFrozen: false },
      { opt: HV_VSS_THAW, daemonFrozen: false }, // the daemon had already thawed
    ]);
  });

  it('an application that fails FREEZE ends the chain: the host sees failure and the daemon never freezes', async () => {
    seen.length = 0;
    answer = VSS_FAIL;
    expect(await host('freeze')).toMatchObject({ status: HV_E_FAIL });
    expect(existsSync(state())).toBe(false);
    expect(seen.map((s) => s.opt)).toEqual([HV_VSS_FREEZE]);
    answer = VSS_SUCCESS;
    // The next backup works.
    expect(await host('freeze')).toMatchObject({ status: HV_S_OK });
    expect(await host('thaw')).toMatchObject({ status: HV_S_OK });
    expect(daemon.child.exitCode).toBeNull();
  });
});
