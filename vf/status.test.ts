/** `vf status` over ifconfig/sysctl outputs written from documentation (fixtures.ts), not captured. */
import { describe, expect, it } from 'vitest';
import { fakeSystem, IFCONFIG_FOREIGN_LAGG0, IFCONFIG_LAGG, IFCONFIG_NO_LAGG_V6, SYSCTL_UNKNOWN } from './fixtures.js';
import { formatStatus, vfStatus } from './status.js';

const sys = (ifconfig: string, transparent: string | null = '0') =>
  fakeSystem({
    '/sbin/sysctl -n hw.hn.vf_transparent': transparent === null ? SYSCTL_UNKNOWN('hw.hn.vf_transparent') : { stdout: `${transparent}\n` },
    '/sbin/sysctl -n dev.hn.0.vf': { stdout: 'mce0\n' },
    '/sbin/ifconfig -a': { stdout: ifconfig },
  });

describe('vf status', () => {
  it('after vf up: lagg0 (ours), VF active, addresses on lagg0', async () => {
    const s = sys(IFCONFIG_LAGG);
    const rows = await vfStatus(s.deps);
    expect(rows).toEqual([
      {
        hn: 'hn0',
        mode: 'non-transparent',
        modeKnob: true,
        vf: 'mce0',
        vfPresent: true,
        lagg: 'lagg0',
        laggOwned: true,
        laggPorts: ['hn0', 'mce0'],
        activePort: 'mce0',
        addresses: { hn0: [], mce0: [], lagg0: ['10.0.0.5', '2001:db8::5/64'] },
        configuredOn: ['lagg0'],
      },
    ]);
    expect(formatStatus(rows)).toBe('hn0\tmode=non-transparent\tvf=mce0\tlagg=lagg0(hvguest)\tactive=mce0\tconfig=lagg0[10.0.0.5,2001:db8::5/64]\n');
    expect(s.calls).toEqual(['/sbin/sysctl -n hw.hn.vf_transparent', '/sbin/ifconfig -a', '/sbin/sysctl -n dev.hn.0.vf']);
  });

  it('before vf up on an old kernel: no lagg, addresses on hn0', async () => {
    const [r] = await vfStatus(sys(IFCONFIG_NO_LAGG_V6, null).deps);
    expect(r).toMatchObject({ modeKnob: false, lagg: null, activePort: '', configuredOn: ['hn0'], addresses: { hn0: ['10.0.0.5', '2001:db8::5/64'], mce0: [] } });
    expect(formatStatus([r!])).toMatch(/^hn0\tmode=non-transparent\(no hw.hn.vf_transparent\)\tvf=mce0\tlagg=-\tactive=-\tconfig=hn0\[/);
  });

  it('a foreign lagg0 without hn0 is not reported as hn0\'s lagg', async () => {
    const [r] = await vfStatus(sys(IFCONFIG_FOREIGN_LAGG0, '1').deps);
    expect(r).toMatchObject({ mode: 'transparent', lagg: null, laggOwned: false, configuredOn: ['hn0'] });
  });
});
