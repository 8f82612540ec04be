/**
 * `vf attach` and mode detection against a fake runner fed sysctl outputs
 * written from the hn(4)/sysctl(8) documentation (not captured).
 */
import { describe, expect, it } from 'vitest';
import { vfAttach } from './attach.js';
import { fakeSystem, rcOutput, SYSCTL_UNKNOWN, type Table } from './fixtures.js';
import { detectMode } from './mode.js';

const MODE = '/sbin/sysctl -n hw.hn.vf_transparent';
const VFLIST = '/sbin/sysctl -n hw.hn.vflist';
const RC = '/bin/sh -c <rc> hvguest-rc /etc/rc.subr /etc/network.subr mce0';
const SELF = '/usr/local/bin/node /usr/local/lib/node_modules/hvguest/bin/hvctl';

const system = (extra: Table = {}) => fakeSystem({ [MODE]: { stdout: '0\n' }, [VFLIST]: { stdout: 'mce0 mce1\n' }, [RC]: { stdout: rcOutput({}) }, ...extra });

describe('detectMode', () => {
  it('reads hw.hn.vf_transparent; a kernel without it is non-transparent', async () => {
    expect(await detectMode(system().deps)).toEqual({ transparent: false, knob: true });
    expect(await detectMode(system({ [MODE]: { stdout: '1\n' } }).deps)).toEqual({ transparent: true, knob: true });
    expect(await detectMode(system({ [MODE]: SYSCTL_UNKNOWN('hw.hn.vf_transparent') }).deps)).toEqual({ transparent: false, knob: false });
  });
});

describe('vf attach IFNAME 0 (devd)', () => {
  it('a listed VF: schedules itself through daemon(8) with hyperv_vf_delay and returns', async () => {
    const s = system({ [RC]: { stdout: rcOutput({ delay: '5' }) } });
    expect(await vfAttach(s.deps, 'mce0', 0)).toBe('scheduled');
    expect(s.calls).toEqual([MODE, VFLIST, RC, `/usr/sbin/daemon -f ${SELF} vf attach --syslog mce0 5`]);
    expect(s.sleeps).toEqual([]);
  });

  it('hyperv_vf_delay unset or below 2 gives 2 s', async () => {
    for (const delay of ['', '1', '0']) {
      const s = system({ [RC]: { stdout: rcOutput({ delay }) } });
      await vfAttach(s.deps, 'mce1', 0);
      expect(s.calls.at(-1)).toBe(`/usr/sbin/daemon -f ${SELF} vf attach --syslog mce1 2`);
    }
  });

  it('old kernel (no hw.hn.vf_transparent) still works in non-transparent mode', async () => {
    const s = system({ [MODE]: SYSCTL_UNKNOWN('hw.hn.vf_transparent') });
    expect(await vfAttach(s.deps, 'mce0', 0)).toBe('scheduled');
  });

  it('nothing to do: transparent mode, no hw.hn.vflist, an interface that is not a VF', async () => {
    const t = system({ [MODE]: { stdout: '1\n' } });
    expect(await vfAttach(t.deps, 'mce0', 0)).toBe('transparent');
    expect(t.calls).toEqual([MODE]);
    const n = system({ [VFLIST]: SYSCTL_UNKNOWN('hw.hn.vflist') });
    expect(await vfAttach(n.deps, 'mce0', 0)).toBe('no-vflist');
    expect(n.calls).toEqual([MODE, VFLIST]);
    const e = system();
    expect(await vfAttach(e.deps, 'em0', 0)).toBe('not-vf');
    expect(e.calls).toEqual([MODE, VFLIST]);
  });

  it('a daemon(8) failure is an error', async () => {
    const s = system({ [`/usr/sbin/daemon -f ${SELF} vf attach --syslog mce0 2`]: { code: 1, stderr: 'daemon: fork: Resource temporarily unavailable\n' } });
    await expect(vfAttach(s.deps, 'mce0', 0)).rejects.toMatchObject({ code: 'ECMD' });
  });
});

describe('vf attach IFNAME DELAY (the detached child)', () => {
  it('sleeps DELAY seconds, then brings the VF up', async () => {
    const s = system();
    expect(await vfAttach(s.deps, 'mce0', 3)).toBe('up');
    expect(s.sleeps).toEqual([3000]);
    expect(s.calls).toEqual([MODE, '/sbin/ifconfig mce0 up']);
  });

  it('the VF detached while we slept: logged, not an error', async () => {
    const s = system({ '/sbin/ifconfig mce0 up': { code: 1, stderr: 'ifconfig: interface mce0 does not exist\n' } });
    expect(await vfAttach(s.deps, 'mce0', 2)).toBe('gone');
    expect(s.logs.at(-1)).toMatchObject({ level: 'info', obj: { outcome: 'gone', iface: 'mce0' } });
  });

  it('any other ifconfig failure is an error', async () => {
    const s = system({ '/sbin/ifconfig mce0 up': { code: 1, stderr: 'ifconfig: SIOCSIFFLAGS: Device not configured\n' } });
    await expect(vfAttach(s.deps, 'mce0', 2)).rejects.toMatchObject({ code: 'ECMD', message: expect.stringContaining('/sbin/ifconfig mce0 up: status 1') });
  });

  it('rejects names that are not interface names', async () => {
    const s = system();
    await expect(vfAttach(s.deps, 'mce0 up; reboot', 0)).rejects.toMatchObject({ code: 'EINVAL' });
    expect(s.calls).toEqual([]);
  });
});
