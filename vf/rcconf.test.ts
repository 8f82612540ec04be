/**
 * The rc shell program run by the real /bin/sh against rc.conf files, with
 * rc.subr/network.subr stand-ins that follow FreeBSD's functions
 * (load_rc_config, checkyesno, get_if_var, ifconfig_getargs, dhcpif,
 * syncdhcpif; simplified from libexec/rc/network.subr, written from the
 * source, not copied from a live system). Also the exact argv.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runProgram } from '../common/os/run.js';
import { fakeSystem } from './fixtures.js';
import { parseRcOutput, rcArgs, readRcConfig, RC_PROGRAM, vfDelaySeconds } from './rcconf.js';
import { VF_PATHS } from './system.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function root(files: Record<string, string>) {
  const d = mkdtempSync(join(tmpdir(), 'hvguest-vf-rc-'));
  dirs.push(d);
  const rcSubr = `
load_rc_config() {
	for _f in "${d}/etc/rc.conf" "${d}/etc/rc.conf.local" "${d}/etc/rc.conf.d/$1"; do
		[ -r "$_f" ] && . "$_f"
	done
	return 0
}
checkyesno() {
	eval _value=\\$\${1}
	case $_value in
	[Yy][Ee][Ss]|[Tt][Rr][Uu][Ee]|[Oo][Nn]|1) return 0 ;;
	*) return 1 ;;
	esac
}
`;
  const networkSubr = `
get_if_var() {
	local _if _var _default _prefix _suffix
	_if=$(echo "$1" | tr '.-' '__'); _var=$2; _default=$3
	_prefix=\${_var%%IF*}; _suffix=\${_var##*IF}
	eval echo \\\${\${_prefix}\${_if}\${_suffix}-\${_default}}
}
_ifconfig_getargs() {
	local _ifn _af
	_ifn=$1; _af=\${2+_$2}
	[ -z "$_ifn" ] && return 1
	get_if_var $_ifn ifconfig_IF$_af "$ifconfig_DEFAULT"
}
ifconfig_getargs() {
	local _tmpargs _arg _args
	_tmpargs=$(_ifconfig_getargs $1 $2) || return 1
	_args=
	for _arg in $_tmpargs; do
		case $_arg in
		[Dd][Hh][Cc][Pp]|[Nn][Oo][Ss][Yy][Nn][Cc][Dd][Hh][Cc][Pp]|[Ss][Yy][Nn][Cc][Dd][Hh][Cc][Pp]|[Ww][Pp][Aa]|[Nn][Oo][Aa][Uu][Tt][Oo]) ;;
		*) _args="$_args $_arg" ;;
		esac
	done
	echo $_args
}
dhcpif() {
	local _arg
	for _arg in $(_ifconfig_getargs $1); do
		case $_arg in
		[Dd][Hh][Cc][Pp]|[Nn][Oo][Ss][Yy][Nn][Cc][Dd][Hh][Cc][Pp]|[Ss][Yy][Nn][Cc][Dd][Hh][Cc][Pp]) return 0 ;;
		esac
	done
	return 1
}
syncdhcpif() {
	local _arg
	for _arg in $(_ifconfig_getargs $1); do
		case $_arg in
		[Nn][Oo][Ss][Yy][Nn][Cc][Dd][Hh][Cc][Pp]) return 1 ;;
		[Ss][Yy][Nn][Cc][Dd][Hh][Cc][Pp]) return 0 ;;
		esac
	done
	checkyesno synchronous_dhclient
}
`;
  const all: Record<string, string> = { 'etc/rc.subr': rcSubr, 'etc/network.subr': networkSubr, ...files };
  for (const [p, text] of Object.entries(all)) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), text);
  }
  const s = fakeSystem({});
  // The real runner for the rc shell: this test checks the shell program itself.
  s.deps.run = runProgram;
  s.deps.paths = { ...VF_PATHS, rcSubr: join(d, 'etc/rc.subr'), networkSubr: join(d, 'etc/network.subr') };
  return s.deps;
}

const read = (rcConf: string, ifn = 'hn0', extra: Record<string, string> = {}) => readRcConfig(root({ 'etc/rc.conf': rcConf, ...extra }), ifn);

describe('rc configuration through the rc system', () => {
  it('passes the interface as a positional parameter, never inside the program', () => {
    const args = rcArgs(fakeSystem({}).deps, 'hn0');
    expect(args).toEqual(['-c', RC_PROGRAM, 'hvguest-rc', '/etc/rc.subr', '/etc/network.subr', 'hn0']);
    expect(RC_PROGRAM).not.toMatch(/hn0/);
  });

  it('DHCP', async () => {
    expect(await read('ifconfig_hn0="DHCP"\n')).toMatchObject({ dhcp: true, syncdhcp: false, ipv4: '', ipv6: '' });
  });

  it('SYNCDHCP, and synchronous_dhclient for plain DHCP', async () => {
    expect(await read('ifconfig_hn0="SYNCDHCP"\n')).toMatchObject({ dhcp: true, syncdhcp: true });
    expect(await read('ifconfig_hn0="DHCP"\nsynchronous_dhclient="YES"\n')).toMatchObject({ dhcp: true, syncdhcp: true });
  });

  it('static IPv4 with defaultrouter', async () => {
    expect(await read('ifconfig_hn0="inet 10.0.0.5/24  mtu 1500"\ndefaultrouter="10.0.0.1"\n')).toMatchObject({
      dhcp: false,
      ipv4: 'inet 10.0.0.5/24 mtu 1500',
      defaultrouter: '10.0.0.1',
    });
  });

  it('static IPv4 + IPv6', async () => {
    const rc = 'ifconfig_hn0="inet 10.0.0.5/24"\nifconfig_hn0_ipv6="inet6 2001:db8::5 prefixlen 64"\nipv6_defaultrouter="2001:db8::1"\n';
    expect(await read(rc)).toEqual({
      vfDelay: '',
      dhcp: false,
      syncdhcp: false,
      ipv4: 'inet 10.0.0.5/24',
      ipv6: 'inet6 2001:db8::5 prefixlen 64',
      defaultrouter: '',
      ipv6Defaultrouter: '2001:db8::1',
    });
  });

  it('rc.conf.local and rc.conf.d/netif count, as at boot; hyperv_vf_delay is read too', async () => {
    expect(await read('hyperv_vf_delay="5"\n', 'mce0')).toMatchObject({ vfDelay: '5' });
    expect(await read('', 'hn1', { 'etc/rc.conf.d/netif': 'ifconfig_hn1="DHCP"\n' })).toMatchObject({ dhcp: true });
    expect(await read('ifconfig_hn0="DHCP"\n', 'hn0', { 'etc/rc.conf.local': 'ifconfig_hn0="inet 10.9.0.5/16"\n' })).toMatchObject({ dhcp: false, ipv4: 'inet 10.9.0.5/16' });
  });

  it('refuses a name the rc functions would eval', async () => {
    await expect(read('', 'hn0;id')).rejects.toMatchObject({ code: 'EINVAL' });
    const r = await runProgram('/bin/sh', ['-c', RC_PROGRAM, 'x', '/nonexistent', '/nonexistent', '$(id)']);
    expect(r.code).toBe(64);
  });

  it('parses the key=value output; hyperv_vf_delay is at least 2', () => {
    expect(parseRcOutput('dhcp=1\nipv4=inet 1.2.3.4/8\nnoise\n')).toMatchObject({ dhcp: true, syncdhcp: false, ipv4: 'inet 1.2.3.4/8', vfDelay: '' });
    expect([vfDelaySeconds(''), vfDelaySeconds('0'), vfDelaySeconds('1'), vfDelaySeconds('7'), vfDelaySeconds('x')]).toEqual([2, 2, 2, 7, 2]);
  });
});
