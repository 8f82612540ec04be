/**
 * `hvctl vf`: commander wiring, output and exit codes, with the flows'
 * system dependencies replaced by the fake runner (outputs written from
 * FreeBSD documentation, see vf/fixtures.ts).
 */
import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { fakeSystem, IFCONFIG_LAGG, IFCONFIG_NO_LAGG, rcOutput, type Table } from '../vf/fixtures.js';
import { vfCommand, VF_EXIT_FAILED, VF_EXIT_USAGE } from './vf.js';

const BASE: Table = {
  '/sbin/sysctl -n hw.hn.vf_transparent': { stdout: '0\n' },
  '/sbin/sysctl -n dev.hn.0.vf': { stdout: 'mce0\n' },
  '/sbin/sysctl -n hw.hn.vflist': { stdout: 'mce0\n' },
  '/sbin/ifconfig -a': { stdout: IFCONFIG_LAGG },
  '/bin/sh -c <rc> hvguest-rc /etc/rc.subr /etc/network.subr hn0': { stdout: rcOutput({ dhcp: true }) },
  '/bin/sh -c <rc> hvguest-rc /etc/rc.subr /etc/network.subr mce0': { stdout: rcOutput({}) },
};

async function vf(args: string[], table: Table = {}, exec: string[] = []) {
  const sys = fakeSystem({ ...BASE, ...table }, {}, exec);
  const io = {
    stdout: '',
    stderr: '',
    exitCode: undefined as number | undefined,
    syslog: [] as boolean[],
    writeOut: (t: string) => void (io.stdout += t),
    writeErr: (t: string) => void (io.stderr += t),
    setExitCode: (c: number) => void (io.exitCode = c),
    deps: (o: { syslog: boolean }) => (io.syslog.push(o.syslog), sys.deps),
  };
  let usage: CommanderError | undefined;
  try {
    await vfCommand(io).parseAsync(args, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    usage = e;
  }
  return { io, usage, calls: sys.calls };
}

describe('hvctl vf', () => {
  it('up: 0 when the lagg is already complete, --syslog reaches the logger choice', async () => {
    const r = await vf(['up', '--syslog', 'hn0']);
    expect(r.io.exitCode).toBe(0);
    expect(r.io.syslog).toEqual([true]);
    expect(r.calls).toEqual(['/sbin/sysctl -n hw.hn.vf_transparent', '/sbin/sysctl -n dev.hn.0.vf', '/sbin/ifconfig -a']);
  });

  it('up: 0 when the VF is already gone (race), 1 when the lagg cannot be created', async () => {
    expect((await vf(['up', 'hn0'], { '/sbin/sysctl -n dev.hn.0.vf': { stdout: '\n' } })).io.exitCode).toBe(0);
    const r = await vf(['up', 'hn0'], { '/sbin/ifconfig -a': { stdout: IFCONFIG_NO_LAGG }, '/sbin/ifconfig lagg0 create': { code: 1 } });
    expect(r.io.exitCode).toBe(VF_EXIT_FAILED);
    expect(r.io.stderr).toMatch(/^vf: lagg0 creation failed/);
  });

  it('up: exits with the override hook\'s status', async () => {
    const hook = '/usr/libexec/hyperv/hyperv_vfup.hn0';
    expect((await vf(['up', 'hn0'], { [`${hook} hn0`]: { code: 4 } }, [hook])).io.exitCode).toBe(4);
  });

  it('up: a name that is not hnN is a usage error (2)', async () => {
    const r = await vf(['up', 'lagg0']);
    expect(r.io.exitCode).toBe(VF_EXIT_USAGE);
    expect(r.calls).toEqual([]);
  });

  it('attach: DELAY defaults to 0 (schedule) and must be whole seconds', async () => {
    const r = await vf(['attach', 'mce0']);
    expect(r.io.exitCode).toBe(0);
    expect(r.calls.at(-1)).toMatch(/^\/usr\/sbin\/daemon -f .* vf attach --syslog mce0 2$/);
    const bad = await vf(['attach', 'mce0', 'soon']);
    expect(bad.usage?.exitCode).toBe(VF_EXIT_USAGE);
    expect(bad.calls).toEqual([]);
  });

  it('attach with a delay brings the VF up', async () => {
    const r = await vf(['attach', 'mce0', '3']);
    expect(r.io.exitCode).toBe(0);
    expect(r.calls).toEqual(['/sbin/sysctl -n hw.hn.vf_transparent', '/sbin/ifconfig mce0 up']);
  });

  it('status: text and --json', async () => {
    expect((await vf(['status'])).io.stdout).toMatch(/^hn0\tmode=non-transparent\tvf=mce0\tlagg=lagg0\(hvguest\)\tactive=mce0\t/);
    const j = await vf(['status', '--json']);
    expect(JSON.parse(j.io.stdout)).toMatchObject([{ hn: 'hn0', lagg: 'lagg0', activePort: 'mce0', configuredOn: ['lagg0'] }]);
    expect(j.io.exitCode).toBe(0);
  });

  it('missing arguments and unknown commands are usage errors (2)', async () => {
    expect((await vf(['up'])).usage?.exitCode).toBe(VF_EXIT_USAGE);
    expect((await vf(['frobnicate'])).usage?.exitCode).toBe(VF_EXIT_USAGE);
  });
});
