import { describe, expect, it } from 'vitest';
import type { RunResult, Runner } from '../common/os/run.js';
import { dhcpEnabled, dnsServers, helperLines } from './net-helpers.js';

const result = (over: Partial<RunResult>): RunResult => ({ code: 0, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false, ms: 1, ...over });
const fixed = (r: Partial<RunResult>): Runner => async () => result(r);

describe('helperLines', () => {
  it('tolerates CRLF, blank lines, surrounding spaces and a missing final newline (F23)', () => {
    expect(helperLines(' 10.0.0.2\r\n\n2001:db8::53 ')).toEqual(['10.0.0.2', '2001:db8::53']);
    expect(helperLines('')).toEqual([]);
  });
});

describe('dnsServers / dhcpEnabled', () => {
  it('run FreeBSD helpers through sh without a DNS argument, Linux ones directly with the interface', async () => {
    const calls: string[] = [];
    const run: Runner = async (file, args) => {
      calls.push([file, ...args].join(' '));
      return result({ stdout: [file, ...args].join(' ').includes('dns') ? '10.0.0.2\n' : 'Enabled\n' });
    };
    await dnsServers(run, 'freebsd', '/usr/local/libexec/hyperv', 'hn0', 100);
    await dhcpEnabled(run, 'freebsd', '/usr/local/libexec/hyperv', ['lagg0', 'hn0'], 100);
    await dnsServers(run, 'linux', '/usr/libexec/hypervkvpd', 'eth0', 100);
    await dhcpEnabled(run, 'linux', '/usr/libexec/hypervkvpd', ['eth0'], 100);
    expect(calls).toEqual([
      '/bin/sh /usr/local/libexec/hyperv/hv_get_dns_info',
      '/bin/sh /usr/local/libexec/hyperv/hv_get_dhcp_info lagg0 hn0',
      '/usr/libexec/hypervkvpd/hv_get_dns_info eth0',
      '/usr/libexec/hypervkvpd/hv_get_dhcp_info eth0',
    ]);
  });

  it('read DHCP from the first line only, "Enabled" as a prefix like the C daemons', async () => {
    expect(await dhcpEnabled(fixed({ stdout: 'Enabled (NetworkManager)\n' }), 'linux', '/h', ['eth0'], 100)).toBe(true);
    expect(await dhcpEnabled(fixed({ stdout: 'Disabled\nEnabled\n' }), 'linux', '/h', ['eth0'], 100)).toBe(false);
    expect(await dhcpEnabled(fixed({ stdout: ' Enabled\n' }), 'linux', '/h', ['eth0'], 100)).toBe(false);
  });

  it('DNS: only lines that are IP addresses reach the host; output with none is an error', async () => {
    expect(await dnsServers(fixed({ stdout: '10.0.0.2\n$(id)\n\u00ff\u00fe\nfe80::1%eth0\nnameserver 1.1.1.1\n2001:db8::53' }), 'linux', '/h', 'eth0', 100)).toEqual(['10.0.0.2', 'fe80::1%eth0', '2001:db8::53']);
    await expect(dnsServers(fixed({ stdout: 'garbage; rm -rf /\n' }), 'linux', '/h', 'eth0', 100)).rejects.toThrow(/no address in its output/);
    expect(await dnsServers(fixed({ stdout: '' }), 'linux', '/h', 'eth0', 100)).toEqual([]);
  });

  it('use output despite a non-zero status, and fail on no output, a timeout or a missing helper', async () => {
    expect(await dnsServers(fixed({ code: 1, stdout: '10.0.0.2\n' }), 'linux', '/h', 'eth0', 100)).toEqual(['10.0.0.2']);
    await expect(dnsServers(fixed({ code: 127, stderr: 'sh: 0: cannot open /h/hv_get_dns_info' }), 'freebsd', '/h', 'hn0', 100)).rejects.toThrow(/status 127.*cannot open/);
    await expect(dnsServers(fixed({ code: null, timedOut: true, stdout: '10.0.0.2' }), 'linux', '/h', 'eth0', 100)).rejects.toThrow(/timed out/);
    await expect(dhcpEnabled(fixed({ code: null, error: 'EACCES' }), 'linux', '/h', ['eth0'], 100)).rejects.toThrow(/EACCES/);
  });
});
