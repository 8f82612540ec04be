/**
 * The shipped hv_set_ifconfig scripts, run for real under /bin/sh against a
 * fake root: every program they call is a stub that logs its argv, every
 * file they touch lives in a temporary directory. The harness refuses to
 * run a script unless every HV_* override the script knows is set, so a
 * test can never reach the machine's real ifconfig, route, sysrc, nmcli or
 * /etc (these tests may run as root).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runProgram } from '../../common/os/run.js';
import { HV_E_FAIL, HV_S_OK } from '../../common/wire/constants.js';
import { ipDataText } from '../../kvp/ifcfg-ip-data.js';
import { keyfileText } from '../../kvp/ifcfg-keyfile.js';
import { sysconfigText } from '../../kvp/ifcfg-sysconfig.js';
import { validateSetIp, type ValidSetIp } from '../../kvp/ip-validate.js';
import { setIpInfo } from '../../kvp/set-ip.js';
import type { SetIpRequest } from '../../kvp/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const SCRIPT = { freebsd: resolve(here, 'freebsd/hv_set_ifconfig'), linux: resolve(here, 'linux/hv_set_ifconfig') };
const GUID = 'f5e1a6b2-3c4d-4e5f-8a9b-0c1d2e3f4a5b';
const MAC = '00:15:5d:0a:0b:0c';

/** One stub for every program: logs "name<TAB>arg<TAB>arg..." and behaves as the STUB_* variables say. */
const STUB = `#!/bin/sh
n=\${0##*/}
{ printf '%s' "$n"; for a in "$@"; do printf '\\t%s' "$a"; done; printf '\\n'; } >>"$STUB_LOG"
case $n in
ifconfig)
	if [ $# -eq 2 ] && [ "$2" = ether ]; then
		case " $STUB_IFACES " in *" $1 "*)
			printf '%s: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500\\n\\tether %s\\n' "$1" "$STUB_MAC"
			exit 0 ;;
		esac
		echo "ifconfig: interface $1 does not exist" >&2
		exit 1
	fi
	exit "\${STUB_IFCONFIG_RC:-0}" ;;
sysrc)
	if [ "$3" = -n ]; then
		for v in \${STUB_SYSRC_SET:-}; do [ "$v" = "$4" ] && exit 0; done
		exit 1
	fi
	exit 0 ;;
route) if [ "$2" = delete ]; then exit "\${STUB_ROUTE_DELETE_RC:-0}"; fi; exit 0 ;;
dhclient) exit "\${STUB_DHCLIENT_RC:-0}" ;;
nmcli)
	if [ "$*" = "-t -f RUNNING general" ]; then echo "\${STUB_NM_STATE:-running}"; exit 0; fi
	if [ "$1 $2" = "connection up" ]; then exit "\${STUB_NMCLI_UP_RC:-0}"; fi
	exit 0 ;;
ifup) exit "\${STUB_IFUP_RC:-0}" ;;
ifdown) exit 0 ;;
esac
exit 99
`;

const PROGRAMS = ['ifconfig', 'route', 'sysrc', 'dhclient', 'nmcli', 'ifup', 'ifdown'];

interface Root {
  dir: string;
  env: Record<string, string>;
  rcConf: string;
  resolvConf: string;
  nmDir: string;
  netScripts: string;
  configDir: string;
  calls(): string[][];
}

function fakeRoot(): Root {
  const dir = mkdtempSync(join(tmpdir(), 'hvguest-root-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'stub'), STUB, { mode: 0o755 });
  for (const p of PROGRAMS) symlinkSync(join(bin, 'stub'), join(bin, p));
  const etc = join(dir, 'etc');
  const nmDir = join(etc, 'NetworkManager', 'system-connections');
  const netScripts = join(etc, 'sysconfig', 'network-scripts');
  const configDir = join(dir, 'var', 'lib', 'hyperv');
  for (const d of [nmDir, netScripts, configDir]) mkdirSync(d, { recursive: true });
  const rcConf = join(etc, 'rc.conf');
  const resolvConf = join(etc, 'resolv.conf');
  writeFileSync(rcConf, 'hostname="vm"\nifconfig_hn0="DHCP"\n');
  writeFileSync(resolvConf, 'search example.com\nnameserver 1.1.1.1\noptions edns0\nnameserver\t9.9.9.9\n');
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  const env: Record<string, string> = {
    PATH: '/usr/bin:/bin',
    STUB_LOG: log,
    STUB_IFACES: 'hn0 hn1 eth0',
    STUB_MAC: MAC,
    HV_IFCONFIG: join(bin, 'ifconfig'),
    HV_ROUTE: join(bin, 'route'),
    HV_SYSRC: join(bin, 'sysrc'),
    HV_DHCLIENT: join(bin, 'dhclient'),
    HV_RC_CONF: rcConf,
    HV_RESOLV_CONF: resolvConf,
    HV_NMCLI: join(bin, 'nmcli'),
    HV_NM_CONN_DIR: nmDir,
    HV_NETSCRIPTS_DIR: netScripts,
    HV_IFUP: join(bin, 'ifup'),
    HV_IFDOWN: join(bin, 'ifdown'),
  };
  const calls = () =>
    readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t'));
  return { dir, env, rcConf, resolvConf, nmDir, netScripts, configDir, calls };
}

/** HV_* variables a script reads, from its ${HV_X:-default} expansions. */
const overridesOf = (script: string): string[] => [...new Set([...readFileSync(script, 'utf8').matchAll(/\$\{(HV_[A-Z_]+):-/g)].map((m) => m[1]!))];

function runScript(flavor: 'freebsd' | 'linux', args: string[], env: Record<string, string>) {
  const missing = overridesOf(SCRIPT[flavor]).filter((v) => !env[v]?.startsWith(tmpdir()));
  if (missing.length) throw new Error(`refusing to run against the real system: ${missing.join(', ')} not redirected`);
  const r = spawnSync('/bin/sh', [SCRIPT[flavor], ...args], { env, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function valid(req: Partial<SetIpRequest>, flavor: 'freebsd' | 'linux'): ValidSetIp {
  const base: SetIpRequest = { adapterId: flavor === 'linux' ? GUID : 'hn0', addrFamily: 0, dhcpEnabled: 0, ipAddr: '', subNet: '', gateWay: '', dnsAddr: '' };
  const r = validateSetIp({ ...base, ...req }, flavor);
  if (!r.ok) throw new Error(r.detail);
  return r.value;
}

let root: Root;
beforeEach(() => {
  root = fakeRoot();
});
afterEach(() => rmSync(root.dir, { recursive: true, force: true }));

describe('test harness', () => {
  it.each(['freebsd', 'linux'] as const)('%s: every system path in the script can be redirected, and the harness redirects it', (flavor) => {
    const text = readFileSync(SCRIPT[flavor], 'utf8');
    const vars = overridesOf(SCRIPT[flavor]);
    expect(vars.length).toBeGreaterThan(3);
    for (const v of vars) expect(root.env[v]?.startsWith(root.dir)).toBe(true);
    // Any other line naming a system path is a comment, or its path sits inside an ${HV_...:-...} default.
    const code = text.split('\n').filter((l) => !/^\s*#/.test(l) && /(^|[\s="'(])\/(s?bin|usr|etc|var)\//.test(l));
    for (const l of code) expect(l).toMatch(/\$\{HV_[A-Z_]+:-/);
  });

  it('refuses to run a script with an override missing', () => {
    const { HV_ROUTE: _drop, ...env } = root.env;
    expect(() => runScript('freebsd', ['x'], env)).toThrow(/HV_ROUTE not redirected/);
  });

  it.each(['freebsd', 'linux'] as const)('%s: is executable and parses under /bin/sh -n', (flavor) => {
    expect(statSync(SCRIPT[flavor]).mode & 0o111).toBe(0o111);
    expect(spawnSync('/bin/sh', ['-n', SCRIPT[flavor]]).status).toBe(0);
  });
});

describe('FreeBSD hv_set_ifconfig', () => {
  const dataFile = (text: string) => {
    const p = join(root.configDir, 'hv_set_ip_data');
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  const RC = () => ['-f', root.rcConf];

  it('IPv4 static: address, rc.conf for that interface, default route only, resolv.conf keeps other lines', () => {
    const f = dataFile(ipDataText(valid({ ipAddr: '10.0.0.5', subNet: '255.255.255.0', gateWay: '10.0.0.1', dnsAddr: '10.0.0.2;10.0.0.3' }, 'freebsd'), 'hn0', MAC));
    const r = runScript('freebsd', [f], root.env);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('Set IP-Injection Success\n');
    expect(root.calls()).toEqual([
      ['ifconfig', 'hn0', 'ether'],
      ['sysrc', ...RC(), '-n', 'ifconfig_hn0_alias0'],
      ['ifconfig', 'hn0', 'inet', '10.0.0.5', 'netmask', '255.255.255.0'],
      ['sysrc', ...RC(), 'ifconfig_hn0=inet 10.0.0.5 netmask 255.255.255.0'],
      ['route', '-n', 'delete', 'default'],
      ['route', '-n', 'add', 'default', '10.0.0.1'],
      ['sysrc', ...RC(), 'defaultrouter=10.0.0.1'],
    ]);
    expect(readFileSync(root.resolvConf, 'utf8')).toBe('search example.com\noptions edns0\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n');
    expect(readdirSync(dirname(root.resolvConf)).filter((n) => n.includes('hvguest'))).toEqual([]);
  });

  it('several addresses of both families on hn1: aliases, ifconfig_hn1_ipv6, both default routes, no route flush', () => {
    const v = valid({ ipAddr: '10.0.0.5;2001:db8::5;10.0.0.6;2001:db8::6', subNet: '24;64;16;48', gateWay: '10.0.0.1;2001:db8::1;10.0.0.254', dnsAddr: '2001:db8::53' }, 'freebsd');
    const r = runScript('freebsd', [dataFile(ipDataText(v, 'hn1', MAC))], root.env);
    expect(r.status).toBe(0);
    expect(root.calls()).toEqual([
      ['ifconfig', 'hn1', 'ether'],
      ['sysrc', ...RC(), '-n', 'ifconfig_hn1_alias0'],
      ['ifconfig', 'hn1', 'inet', '10.0.0.5', 'netmask', '255.255.255.0'],
      ['sysrc', ...RC(), 'ifconfig_hn1=inet 10.0.0.5 netmask 255.255.255.0'],
      ['ifconfig', 'hn1', 'inet6', '2001:db8::5', 'prefixlen', '64', 'alias'],
      ['sysrc', ...RC(), 'ifconfig_hn1_ipv6=inet6 2001:db8::5 prefixlen 64'],
      ['ifconfig', 'hn1', 'inet', '10.0.0.6', 'netmask', '255.255.0.0', 'alias'],
      ['sysrc', ...RC(), 'ifconfig_hn1_alias0=inet 10.0.0.6 netmask 255.255.0.0'],
      ['ifconfig', 'hn1', 'inet6', '2001:db8::6', 'prefixlen', '48', 'alias'],
      ['sysrc', ...RC(), 'ifconfig_hn1_alias1=inet6 2001:db8::6 prefixlen 48'],
      ['route', '-n', 'delete', 'default'],
      ['route', '-n', 'add', 'default', '10.0.0.1'],
      ['sysrc', ...RC(), 'defaultrouter=10.0.0.1'],
      ['route', '-n', 'delete', '-inet6', 'default'],
      ['route', '-n', 'add', '-inet6', 'default', '2001:db8::1'],
      ['sysrc', ...RC(), 'ipv6_defaultrouter=2001:db8::1'],
    ]);
    expect(root.calls().flat()).not.toContain('flush');
    expect(readFileSync(root.resolvConf, 'utf8')).toBe('search example.com\noptions edns0\nnameserver 2001:db8::53\n');
  });

  it('DHCP: ifconfig_IF="DHCP" and dhclient for that interface; resolv.conf untouched without DNS', () => {
    const before = readFileSync(root.resolvConf, 'utf8');
    const r = runScript('freebsd', [dataFile(ipDataText(valid({ dhcpEnabled: 1 }, 'freebsd'), 'hn1', MAC))], root.env);
    expect(r.status).toBe(0);
    expect(root.calls()).toEqual([
      ['ifconfig', 'hn1', 'ether'],
      ['sysrc', ...RC(), '-n', 'ifconfig_hn1_alias0'],
      ['sysrc', ...RC(), 'ifconfig_hn1=DHCP'],
      ['dhclient', '-b', 'hn1'],
    ]);
    expect(readFileSync(root.resolvConf, 'utf8')).toBe(before);
  });

  it('DHCP with a dhclient already running still succeeds, and says so', () => {
    const r = runScript('freebsd', [dataFile(ipDataText(valid({ dhcpEnabled: 1 }, 'freebsd'), 'hn0', MAC))], { ...root.env, STUB_DHCLIENT_RC: '1' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('dhclient hn0 failed');
  });

  it('removes aliases left by an earlier, longer injection', () => {
    const env = { ...root.env, STUB_SYSRC_SET: 'ifconfig_hn0_alias0 ifconfig_hn0_alias1' };
    const r = runScript('freebsd', [dataFile(ipDataText(valid({ ipAddr: '10.0.0.5', subNet: '24' }, 'freebsd'), 'hn0', MAC))], env);
    expect(r.status).toBe(0);
    expect(root.calls().slice(1, 6)).toEqual([
      ['sysrc', ...RC(), '-n', 'ifconfig_hn0_alias0'],
      ['sysrc', ...RC(), '-x', 'ifconfig_hn0_alias0'],
      ['sysrc', ...RC(), '-n', 'ifconfig_hn0_alias1'],
      ['sysrc', ...RC(), '-x', 'ifconfig_hn0_alias1'],
      ['sysrc', ...RC(), '-n', 'ifconfig_hn0_alias2'],
    ]);
  });

  it('fails, changing nothing, when the interface is gone or carries another MAC', () => {
    const f = dataFile(ipDataText(valid({ ipAddr: '10.0.0.5', subNet: '24' }, 'freebsd'), 'hn0', MAC));
    const gone = runScript('freebsd', [f], { ...root.env, STUB_IFACES: 'hn1' });
    expect(gone).toMatchObject({ status: 1, stderr: 'hv_set_ifconfig: hn0: no such interface\n' });
    const swapped = runScript('freebsd', [f], { ...root.env, STUB_MAC: '00:15:5d:ff:ff:ff' });
    expect(swapped.status).toBe(1);
    expect(swapped.stderr).toContain('has MAC 00:15:5d:ff:ff:ff, expected 00:15:5d:0a:0b:0c');
    expect(root.calls()).toEqual([
      ['ifconfig', 'hn0', 'ether'],
      ['ifconfig', 'hn0', 'ether'],
    ]);
  });

  it('fails when ifconfig refuses the address', () => {
    const f = dataFile(ipDataText(valid({ ipAddr: '10.0.0.5', subNet: '24' }, 'freebsd'), 'hn0', MAC));
    expect(runScript('freebsd', [f], { ...root.env, STUB_IFCONFIG_RC: '1' }).status).not.toBe(0);
  });

  const GOOD = ["HWADDR='00:15:5d:0a:0b:0c'", "IF_NAME='hn0'", "IP_ADDR='10.0.0.5'", "SUBNET='255.255.255.0'", "GATEWAY='10.0.0.1'", "DNS='10.0.0.2'", "DHCP='0'"];
  const replace = (key: string, line: string) => GOOD.map((l) => (l.startsWith(`${key}=`) ? line : l));
  it.each<[string, string[]]>([
    ['unquoted value', replace('IF_NAME', 'IF_NAME=hn0')],
    ['command after the interface name', replace('IF_NAME', "IF_NAME='hn0;reboot'")],
    ['$() in a list', replace('IP_ADDR', "IP_ADDR='$(reboot)'")],
    ['command after the closing quote', replace('IP_ADDR', "IP_ADDR='10.0.0.5' ; reboot")],
    ['quote inside the value', replace('IP_ADDR', "IP_ADDR='10.0.0.5'x'")],
    ['backquotes', replace('DNS', "DNS='`reboot`'")],
    ['space in a list', replace('IP_ADDR', "IP_ADDR='10.0.0.5 10.0.0.6'")],
    ['path as interface name', replace('IF_NAME', "IF_NAME='../../etc'")],
    ['option as interface name', replace('IF_NAME', "IF_NAME='-a'")],
    ['unknown key', [...GOOD, "PATH='/tmp'"]],
    ['key given twice', [...GOOD, "IF_NAME='hn1'"]],
    ['DHCP not 0/1', replace('DHCP', "DHCP='yes'")],
    ['CRLF line', replace('IF_NAME', "IF_NAME='hn0'\r")],
    ['missing IF_NAME', GOOD.filter((l) => !l.startsWith('IF_NAME'))],
    ['subnets do not pair', replace('SUBNET', "SUBNET='255.255.255.0;255.255.0.0'")],
    ['IPv4 with a prefix length', replace('SUBNET', "SUBNET='24'")],
    ['IPv6 with a dotted mask', [...replace('IP_ADDR', "IP_ADDR='2001:db8::5'")]],
  ])('refuses a data file with %s before running anything', (_name, lines) => {
    const before = readFileSync(root.rcConf, 'utf8') + readFileSync(root.resolvConf, 'utf8');
    const r = runScript('freebsd', [dataFile(`${lines.join('\n')}\n`)], root.env);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^hv_set_ifconfig: /);
    expect(root.calls()).toEqual([]);
    expect(readFileSync(root.rcConf, 'utf8') + readFileSync(root.resolvConf, 'utf8')).toBe(before);
  });

  it('needs exactly one argument naming a file', () => {
    expect(runScript('freebsd', [], root.env).status).toBe(1);
    expect(runScript('freebsd', [join(root.dir, 'nope')], root.env).status).toBe(1);
    expect(root.calls()).toEqual([]);
  });

  it('end to end: setIpInfo writes the data file and the real script applies it', async () => {
    const req: SetIpRequest = { adapterId: 'hn0', addrFamily: 1, dhcpEnabled: 0, ipAddr: '10.0.0.5', subNet: '255.255.255.0', gateWay: '10.0.0.1', dnsAddr: '10.0.0.2' };
    const ctx = {
      flavor: 'freebsd' as const,
      helperDir: dirname(SCRIPT.freebsd),
      configDir: root.configDir,
      run: runProgram,
      helperEnv: root.env,
      sys: { interfaces: async () => [{ name: 'hn0', mac: MAC, vmbusId: GUID }] },
    };
    expect(overridesOf(SCRIPT.freebsd).every((v) => root.env[v]?.startsWith(root.dir))).toBe(true);
    expect(await setIpInfo(req, ctx)).toEqual({ status: HV_S_OK, detail: `hn0 (00:15:5D:0A:0B:0C): configured by ${SCRIPT.freebsd}` });
    expect(root.calls()).toContainEqual(['ifconfig', 'hn0', 'inet', '10.0.0.5', 'netmask', '255.255.255.0']);
    expect(readFileSync(root.resolvConf, 'utf8')).toContain('nameserver 10.0.0.2\n');
    const bad = await setIpInfo(req, { ...ctx, helperEnv: { ...root.env, STUB_IFACES: '' } });
    expect(bad).toEqual({ status: HV_E_FAIL, detail: `${SCRIPT.freebsd}: exit status 1: "hv_set_ifconfig: hn0: no such interface"` });
  });
});

describe('Linux hv_set_ifconfig', () => {
  /** Writes the pair of files as the daemon would, under the given names. */
  function files(v: ValidSetIp, ifName: string, names = [`ifcfg-${ifName}`, `${ifName}.nmconnection`]) {
    const ifcfg = join(root.configDir, names[0]!);
    const keyfile = join(root.configDir, names[1]!);
    writeFileSync(ifcfg, sysconfigText(v, ifName, MAC), { mode: 0o600 });
    writeFileSync(keyfile, keyfileText(v, ifName, MAC), { mode: 0o600 });
    return [ifcfg, keyfile];
  }
  const STATIC = () => valid({ ipAddr: '10.0.0.5;2001:db8::5', subNet: '24;64', gateWay: '10.0.0.1', dnsAddr: '10.0.0.2' }, 'linux');

  it('NetworkManager: installs the keyfile 0600 under the interface name, loads it and brings it up by file name', () => {
    const [ifcfg, keyfile] = files(STATIC(), 'eth0');
    const r = runScript('linux', [ifcfg!, keyfile!], root.env);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const dest = join(root.nmDir, 'eth0.nmconnection');
    expect(root.calls()).toEqual([
      ['nmcli', '-t', '-f', 'RUNNING', 'general'],
      ['nmcli', 'connection', 'load', dest],
      ['nmcli', 'connection', 'up', 'filename', dest],
    ]);
    expect(readFileSync(dest, 'utf8')).toBe(readFileSync(keyfile!, 'utf8'));
    expect(statSync(dest).mode & 0o777).toBe(0o600);
    expect(readdirSync(root.nmDir)).toEqual(['eth0.nmconnection']);
    expect(readdirSync(root.netScripts)).toEqual([]);
  });

  it('takes the interface from the files, not from their names (pitfall L21)', () => {
    const [ifcfg, keyfile] = files(STATIC(), 'eth1', ['ifcfg-x-y-z', 'some-other-name.nmconnection']);
    expect(runScript('linux', [ifcfg!, keyfile!], root.env).status).toBe(0);
    expect(root.calls()[2]).toEqual(['nmcli', 'connection', 'up', 'filename', join(root.nmDir, 'eth1.nmconnection')]);
  });

  it('reports a failed activation', () => {
    const [ifcfg, keyfile] = files(STATIC(), 'eth0');
    const r = runScript('linux', [ifcfg!, keyfile!], { ...root.env, STUB_NMCLI_UP_RC: '4' });
    expect(r.status).toBe(4);
  });

  it('without NetworkManager: ifcfg into network-scripts with ONBOOT/PEERDNS/IPV6INIT, then ifdown/ifup', () => {
    const [ifcfg, keyfile] = files(STATIC(), 'eth0');
    const r = runScript('linux', [ifcfg!, keyfile!], { ...root.env, HV_NMCLI: join(root.dir, 'bin', 'absent') });
    expect(r.status).toBe(0);
    expect(root.calls()).toEqual([
      ['ifdown', 'eth0'],
      ['ifup', 'eth0'],
    ]);
    const dest = join(root.netScripts, 'ifcfg-eth0');
    expect(readFileSync(dest, 'utf8')).toBe(`${readFileSync(ifcfg!, 'utf8')}ONBOOT=yes\nPEERDNS=yes\nIPV6INIT=yes\n`);
    expect(readdirSync(root.netScripts)).toEqual(['ifcfg-eth0']);
    expect(readdirSync(root.nmDir)).toEqual([]);
  });

  it('NetworkManager installed but not running counts as absent', () => {
    const [ifcfg, keyfile] = files(valid({ dhcpEnabled: 1 }, 'linux'), 'eth0');
    const r = runScript('linux', [ifcfg!, keyfile!], { ...root.env, STUB_NM_STATE: 'stopped' });
    expect(r.status).toBe(0);
    expect(root.calls().map((c) => c[0])).toEqual(['nmcli', 'ifdown', 'ifup']);
    expect(readFileSync(join(root.netScripts, 'ifcfg-eth0'), 'utf8')).toMatch(/BOOTPROTO=dhcp\nONBOOT=yes\n$/);
  });

  it('with neither NetworkManager nor network-scripts: exit 2, nothing run', () => {
    const [ifcfg, keyfile] = files(STATIC(), 'eth0');
    const env = { ...root.env, HV_NMCLI: join(root.dir, 'bin', 'absent'), HV_NETSCRIPTS_DIR: join(root.dir, 'etc', 'none') };
    const r = runScript('linux', [ifcfg!, keyfile!], env);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('cannot apply the settings');
    expect(root.calls()).toEqual([]);
  });

  it.each<[string, (ifcfg: string, keyfile: string) => void]>([
    ['DEVICE and interface-name disagree', (_i, k) => writeFileSync(k, readFileSync(k, 'utf8').replace('interface-name=eth0', 'interface-name=eth1'))],
    ['command in DEVICE', (i) => writeFileSync(i, readFileSync(i, 'utf8').replace('DEVICE=eth0', 'DEVICE=eth0;reboot'))],
    ['$() line in ifcfg', (i) => writeFileSync(i, `${readFileSync(i, 'utf8')}X=$(reboot)\n`)],
    ['path in DEVICE', (i, k) => {
      writeFileSync(i, readFileSync(i, 'utf8').replace('DEVICE=eth0', 'DEVICE=../../x'));
      writeFileSync(k, readFileSync(k, 'utf8').replace('interface-name=eth0', 'interface-name=../../x'));
    }],
    ['no DEVICE', (i) => writeFileSync(i, readFileSync(i, 'utf8').replace('DEVICE=eth0\n', ''))],
    ['no interface-name', (_i, k) => writeFileSync(k, readFileSync(k, 'utf8').replace('interface-name=eth0\n', ''))],
    ['space in a value', (i) => writeFileSync(i, readFileSync(i, 'utf8').replace('IPADDR0=10.0.0.5', 'IPADDR0=10.0.0.5 reboot'))],
  ])('refuses files with %s before running anything', (_name, spoil) => {
    const [ifcfg, keyfile] = files(STATIC(), 'eth0');
    spoil(ifcfg!, keyfile!);
    const r = runScript('linux', [ifcfg!, keyfile!], root.env);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^hv_set_ifconfig: /);
    expect(root.calls()).toEqual([]);
    expect(readdirSync(root.nmDir)).toEqual([]);
  });

  it('needs exactly two existing files', () => {
    expect(runScript('linux', [join(root.dir, 'a')], root.env).status).toBe(1);
    expect(runScript('linux', [join(root.dir, 'a'), join(root.dir, 'b')], root.env).status).toBe(1);
    expect(root.calls()).toEqual([]);
  });

  it('end to end: setIpInfo writes both files and the real script installs the keyfile', async () => {
    const req: SetIpRequest = { adapterId: `{${GUID.toUpperCase()}}`, addrFamily: 3, dhcpEnabled: 0, ipAddr: '10.0.0.5;2001:db8::5', subNet: '255.255.255.0;64', gateWay: '10.0.0.1;2001:db8::1', dnsAddr: '10.0.0.2;2001:db8::53' };
    const ctx = {
      flavor: 'linux' as const,
      helperDir: dirname(SCRIPT.linux),
      configDir: root.configDir,
      run: runProgram,
      helperEnv: root.env,
      sys: { interfaces: async () => [{ name: 'eth0', mac: MAC, vmbusId: `{${GUID}}` }] },
    };
    expect(overridesOf(SCRIPT.linux).every((v) => root.env[v]?.startsWith(root.dir))).toBe(true);
    expect(await setIpInfo(req, ctx)).toEqual({ status: HV_S_OK, detail: `eth0 (00:15:5D:0A:0B:0C): configured by ${SCRIPT.linux}` });
    const dest = join(root.nmDir, 'eth0.nmconnection');
    expect(existsSync(dest)).toBe(true);
    expect(readFileSync(dest, 'utf8')).toBe(readFileSync(join(root.configDir, 'eth0.nmconnection'), 'utf8'));
    expect(root.calls().at(-1)).toEqual(['nmcli', 'connection', 'up', 'filename', dest]);
    const bad = await setIpInfo(req, { ...ctx, helperEnv: { ...root.env, STUB_NMCLI_UP_RC: '10' } });
    expect(bad).toMatchObject({ status: HV_E_FAIL, detail: `${SCRIPT.linux}: exit status 10` });
  });
});
