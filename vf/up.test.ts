/**
 * `vf up` against a fake runner fed ifconfig/sysctl outputs written from
 * the FreeBSD documentation (fixtures.ts; not captured on a live guest):
 * the exact command sequence for each rc.conf variant, idempotence, the VF
 * coming back after migration, the override hook, foreign laggs and races.
 */
import { describe, expect, it } from 'vitest';
import {
  fakeSystem,
  IFCONFIG_FOREIGN_LAGG0,
  IFCONFIG_LAGG,
  IFCONFIG_LAGG_VF_BACK,
  IFCONFIG_NO_LAGG,
  IFCONFIG_NO_LAGG_V6,
  mutations,
  rcOutput,
  SYSCTL_UNKNOWN,
  type Table,
} from './fixtures.js';
import { vfUp } from './up.js';

const READS = ['/sbin/sysctl -n hw.hn.vf_transparent', '/sbin/sysctl -n dev.hn.0.vf', '/sbin/ifconfig -a'];
const CREATE = ['/sbin/ifconfig lagg0 create', '/sbin/ifconfig lagg0 description hvguest-vf:hn0', '/sbin/ifconfig lagg0 laggproto failover laggport hn0 laggport mce0', '/sbin/ifconfig lagg0 inet6 no_dad'];
const PIDFILE = { '/var/run/dhclient/dhclient.hn0.pid': '812\n' };

function system(ifconfig: string | ((n: number) => string), rc = '', extra: Table = {}, files: Record<string, string> = PIDFILE, exec: string[] = []) {
  return fakeSystem(
    {
      '/sbin/sysctl -n hw.hn.vf_transparent': { stdout: '0\n' },
      '/sbin/sysctl -n dev.hn.0.vf': { stdout: 'mce0\n' },
      '/sbin/ifconfig -a': typeof ifconfig === 'string' ? { stdout: ifconfig } : (n) => ({ stdout: ifconfig(n) }),
      '/bin/sh -c <rc> hvguest-rc /etc/rc.subr /etc/network.subr hn0': { stdout: rc },
      ...extra,
    },
    files,
    exec,
  );
}

describe('vf up: a new lagg carries hn\'s configuration', () => {
  it('DHCP: kills hn0\'s dhclient, clears hn0, starts dhclient -b on lagg0', async () => {
    const s = system(IFCONFIG_NO_LAGG, rcOutput({ dhcp: true }));
    expect(await vfUp(s.deps, 'hn0')).toEqual({ outcome: 'created', lagg: 'lagg0', vf: 'mce0' });
    expect(s.calls).toEqual([
      ...READS,
      ...CREATE,
      '/bin/kill -TERM 812',
      '/bin/sh -c <rc> hvguest-rc /etc/rc.subr /etc/network.subr hn0',
      '/sbin/ifconfig hn0 inet 10.0.0.5 -alias',
      '/sbin/ifconfig lagg0 up',
      '/sbin/dhclient -b lagg0',
    ]);
  });

  it('SYNCDHCP: dhclient in the foreground; the old pid file path still works', async () => {
    const s = system(IFCONFIG_NO_LAGG, rcOutput({ sync: true }), {}, { '/var/run/dhclient.hn0.pid': '77\n' });
    await vfUp(s.deps, 'hn0');
    expect(s.calls.slice(-5)).toEqual([
      '/bin/kill -TERM 77',
      '/bin/sh -c <rc> hvguest-rc /etc/rc.subr /etc/network.subr hn0',
      '/sbin/ifconfig hn0 inet 10.0.0.5 -alias',
      '/sbin/ifconfig lagg0 up',
      '/sbin/dhclient lagg0',
    ]);
  });

  it('static IPv4: ifconfig_hn0\'s arguments and defaultrouter go to lagg0; no pid file, no kill', async () => {
    const s = system(IFCONFIG_NO_LAGG, rcOutput({ ipv4: 'inet 10.0.0.5/24', gw: '10.0.0.1' }), {}, {});
    await vfUp(s.deps, 'hn0');
    expect(s.calls).toEqual([
      ...READS,
      ...CREATE,
      '/bin/sh -c <rc> hvguest-rc /etc/rc.subr /etc/network.subr hn0',
      '/sbin/ifconfig hn0 inet 10.0.0.5 -alias',
      '/sbin/ifconfig lagg0 up',
      '/sbin/ifconfig lagg0 inet 10.0.0.5/24',
      '/sbin/route -n add -inet default 10.0.0.1',
    ]);
  });

  it('static IPv4 + IPv6: both families leave hn0 (its link-local stays) and land on lagg0', async () => {
    const s = system(IFCONFIG_NO_LAGG_V6, rcOutput({ ipv4: 'inet 10.0.0.5/24', ipv6: 'inet6 2001:db8::5 prefixlen 64', gw: '10.0.0.1', gw6: '2001:db8::1' }), {}, {});
    await vfUp(s.deps, 'hn0');
    expect(s.calls.slice(READS.length + CREATE.length)).toEqual([
      '/bin/sh -c <rc> hvguest-rc /etc/rc.subr /etc/network.subr hn0',
      '/sbin/ifconfig hn0 inet 10.0.0.5 -alias',
      '/sbin/ifconfig hn0 inet6 2001:db8::5 -alias',
      '/sbin/ifconfig lagg0 up',
      '/sbin/ifconfig lagg0 inet 10.0.0.5/24',
      '/sbin/route -n add -inet default 10.0.0.1',
      '/sbin/ifconfig lagg0 inet6 2001:db8::5 prefixlen 64',
      '/sbin/route -n add -inet6 default 2001:db8::1',
    ]);
  });

  it('SLAAC (ifconfig_hn0_ipv6="inet6 accept_rtadv"): applied to lagg0, then one router solicitation', async () => {
    const s = system(IFCONFIG_NO_LAGG_V6, rcOutput({ dhcp: true, ipv6: 'inet6 accept_rtadv' }), {}, {});
    await vfUp(s.deps, 'hn0');
    expect(s.calls.slice(-3)).toEqual(['/sbin/dhclient -b lagg0', '/sbin/ifconfig lagg0 inet6 accept_rtadv', '/sbin/rtsol lagg0']);
  });

  it('addresses rc.conf does not describe (set at run time) move as they are', async () => {
    const s = system(IFCONFIG_NO_LAGG_V6, rcOutput({}), {}, {});
    await vfUp(s.deps, 'hn0');
    expect(s.calls.slice(-3)).toEqual([
      '/sbin/ifconfig lagg0 up',
      '/sbin/ifconfig lagg0 inet 10.0.0.5 netmask 0xffffff00 alias',
      '/sbin/ifconfig lagg0 inet6 2001:db8::5 prefixlen 64 alias',
    ]);
  });

  it('old kernel without hw.hn.vf_transparent counts as non-transparent', async () => {
    const s = system(IFCONFIG_NO_LAGG, rcOutput({ dhcp: true }), { '/sbin/sysctl -n hw.hn.vf_transparent': SYSCTL_UNKNOWN('hw.hn.vf_transparent') });
    expect((await vfUp(s.deps, 'hn0')).outcome).toBe('created');
  });
});

describe('vf up: idempotence and migration', () => {
  it('running twice changes nothing the second time (the lagg exists with both ports)', async () => {
    const s = system((n) => (n === 0 ? IFCONFIG_NO_LAGG : IFCONFIG_LAGG), rcOutput({ dhcp: true }));
    expect((await vfUp(s.deps, 'hn0')).outcome).toBe('created');
    const first = s.calls.length;
    expect(await vfUp(s.deps, 'hn0')).toEqual({ outcome: 'unchanged', lagg: 'lagg0', vf: 'mce0' });
    expect(s.calls.slice(first)).toEqual(READS);
    expect(mutations(s.calls.slice(first))).toEqual([]);
  });

  it('after a live migration the returning VF (mce1) is added back as a port, nothing else', async () => {
    const s = system(IFCONFIG_LAGG_VF_BACK, '', { '/sbin/sysctl -n dev.hn.0.vf': { stdout: 'mce1\n' } });
    expect(await vfUp(s.deps, 'hn0')).toEqual({ outcome: 'port-added', lagg: 'lagg0', vf: 'mce1' });
    expect(s.calls).toEqual([...READS, '/sbin/ifconfig lagg0 laggport mce1']);
  });

  it('an administrator\'s lagg0 is left alone: a new lagg with the next free unit is used', async () => {
    const s = system(IFCONFIG_FOREIGN_LAGG0, rcOutput({ dhcp: true }), { '/sbin/ifconfig lagg create': { stdout: 'lagg1\n' } });
    expect(await vfUp(s.deps, 'hn0')).toEqual({ outcome: 'created', lagg: 'lagg1', vf: 'mce0' });
    expect(s.calls.slice(READS.length, READS.length + 2)).toEqual(['/sbin/ifconfig lagg create', '/sbin/ifconfig lagg1 description hvguest-vf:hn0']);
    expect(s.calls.filter((c) => /lagg0/.test(c))).toEqual([]);
  });
});

describe('vf up: races and failures', () => {
  it('VF already detached (dev.hn.0.vf empty): logs and does nothing', async () => {
    const s = system(IFCONFIG_NO_LAGG, '', { '/sbin/sysctl -n dev.hn.0.vf': { stdout: '\n' } });
    expect(await vfUp(s.deps, 'hn0')).toEqual({ outcome: 'detached' });
    expect(s.calls).toEqual(READS.slice(0, 2));
    expect(s.logs.map((l) => l.msg)).toContain('hn0: VF was detached');
  });

  it('VF named by the kernel but gone from ifconfig: nothing changes', async () => {
    const s = system(IFCONFIG_NO_LAGG, '', { '/sbin/sysctl -n dev.hn.0.vf': { stdout: 'mce3\n' } });
    expect((await vfUp(s.deps, 'hn0')).outcome).toBe('detached');
    expect(mutations(s.calls)).toEqual([]);
  });

  it('hn gone (no dev.hn.N): nothing changes', async () => {
    const s = system(IFCONFIG_NO_LAGG, '', { '/sbin/sysctl -n dev.hn.0.vf': SYSCTL_UNKNOWN('dev.hn.0.vf') });
    expect((await vfUp(s.deps, 'hn0')).outcome).toBe('gone');
    expect(mutations(s.calls)).toEqual([]);
  });

  it('transparent mode: only the mode is read', async () => {
    const s = system(IFCONFIG_NO_LAGG, '', { '/sbin/sysctl -n hw.hn.vf_transparent': { stdout: '1\n' } });
    expect((await vfUp(s.deps, 'hn0')).outcome).toBe('transparent');
    expect(s.calls).toEqual(['/sbin/sysctl -n hw.hn.vf_transparent']);
  });

  it('lagg creation failure is an error naming the lagg, and nothing else is done', async () => {
    const s = system(IFCONFIG_NO_LAGG, '', { '/sbin/ifconfig lagg0 create': { code: 1, stderr: 'ifconfig: SIOCIFCREATE2: File exists\n' } });
    await expect(vfUp(s.deps, 'hn0')).rejects.toMatchObject({ code: 'ELAGG', message: expect.stringMatching(/^lagg0 creation failed/) });
    expect(s.calls).toEqual([...READS, '/sbin/ifconfig lagg0 create']);
  });

  it('the override hook runs instead of the flow and its status is returned', async () => {
    const hook = '/usr/libexec/hyperv/hyperv_vfup.hn0';
    const s = system(IFCONFIG_NO_LAGG, '', { [`${hook} hn0`]: { code: 3 } }, {}, [hook]);
    expect(await vfUp(s.deps, 'hn0')).toEqual({ outcome: 'override', code: 3 });
    expect(s.calls).toEqual([`${hook} hn0`]);
  });

  it('rejects names that are not hn interfaces before running anything', async () => {
    for (const bad of ['mce0', 'hn0;reboot', '../hn0', 'hn']) {
      const s = system(IFCONFIG_NO_LAGG);
      await expect(vfUp(s.deps, bad)).rejects.toMatchObject({ code: 'EINVAL' });
      expect(s.calls).toEqual([]);
    }
  });
});
