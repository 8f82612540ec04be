import { describe, expect, it } from 'vitest';
import { osInfo, parseOsRelease, releaseBase, type OsFacts } from './os-info.js';

const facts = (files: Record<string, string>, over: Partial<OsFacts> = {}): OsFacts => ({
  sysname: 'Linux',
  release: '6.8.0-31-generic',
  machine: 'x86_64',
  readFile: (p) => files[p],
  ...over,
});

describe('parseOsRelease', () => {
  it('reads the way the Linux C daemon does: quotes dropped, backslash escapes, comments skipped, last wins', () => {
    const vars = parseOsRelease(
      [
        '# NAME="Commented"',
        'NAME="Ubuntu"',
        "VERSION_ID='24.04'",
        'PRETTY_NAME="Ubuntu \\"Noble\\" 24.04"',
        'HOME_URL=https://x/?a=b',
        'NAME=Ubuntu Server',
        'no equals sign',
      ].join('\n'),
    );
    expect(vars.get('NAME')).toBe('Ubuntu Server');
    expect(vars.get('VERSION_ID')).toBe('24.04');
    expect(vars.get('PRETTY_NAME')).toBe('Ubuntu "Noble" 24.04');
    expect(vars.get('HOME_URL')).toBe('https://x/?a=b');
    expect(vars.has('no equals sign')).toBe(false);
  });

  it('tolerates CRLF and a missing final newline', () => {
    expect(parseOsRelease('NAME="Alma"\r\nVERSION_ID="9.4"').get('VERSION_ID')).toBe('9.4');
  });
});

describe('osInfo, Linux', () => {
  it('takes NAME and VERSION_ID from /etc/os-release; minor stays empty; build = full release, version = release before "-"', () => {
    const f = facts({ '/etc/os-release': 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n' });
    expect(osInfo('linux', f)).toEqual({
      osName: 'Debian GNU/Linux',
      osMajorVersion: '12',
      osMinorVersion: '',
      osVersion: '6.8.0',
      osBuildNumber: '6.8.0-31-generic',
      processorArchitecture: 'x86_64',
    });
  });

  it('falls back to /usr/lib/os-release, then the legacy release files (three lines), then uname', () => {
    expect(osInfo('linux', facts({ '/usr/lib/os-release': 'NAME=Fedora\nVERSION_ID=40\n' })).osName).toBe('Fedora');
    const legacy = osInfo('linux', facts({ '/etc/redhat-release': 'CentOS release 6.10 (Final)\n6\n10\n' }));
    expect([legacy.osName, legacy.osMajorVersion, legacy.osMinorVersion]).toEqual(['CentOS release 6.10 (Final)', '6', '10']);
    const suse = osInfo('linux', facts({ '/etc/SuSE-release': 'SUSE Linux Enterprise Server 11 (x86_64)\n', '/etc/redhat-release': 'ignored' }));
    expect([suse.osName, suse.osMajorVersion, suse.osMinorVersion]).toEqual(['SUSE Linux Enterprise Server 11 (x86_64)', '', '']);
    const none = osInfo('linux', facts({}));
    expect([none.osName, none.osMajorVersion, none.osMinorVersion]).toEqual(['Linux', '', '']);
  });

  it('keeps the uname name when os-release has no NAME', () => {
    expect(osInfo('linux', facts({ '/etc/os-release': 'ID=minimal\n' })).osName).toBe('Linux');
  });
});

describe('osInfo, FreeBSD', () => {
  const bsd = (release: string) => osInfo('freebsd', facts({ '/etc/os-release': 'NAME=ignored' }, { sysname: 'FreeBSD', release, machine: 'amd64' }));

  it('reports the release before "-" as build and version, and splits it into major/minor (F26)', () => {
    expect(bsd('14.1-RELEASE-p3')).toEqual({
      osName: 'FreeBSD',
      osMajorVersion: '14',
      osMinorVersion: '1',
      osVersion: '14.1',
      osBuildNumber: '14.1',
      processorArchitecture: 'amd64',
    });
    expect(bsd('15.0-CURRENT')).toMatchObject({ osMajorVersion: '15', osMinorVersion: '0', osVersion: '15.0' });
  });

  it('leaves minor empty when the release has no "."', () => {
    expect(bsd('15-CURRENT')).toMatchObject({ osMajorVersion: '15', osMinorVersion: '' });
  });
});

describe('releaseBase', () => {
  it('cuts at the first "-"', () => {
    expect(releaseBase('6.8.0-31-generic')).toBe('6.8.0');
    expect(releaseBase('6.8.0')).toBe('6.8.0');
  });
});
