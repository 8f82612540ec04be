import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  closelog,
  libcName,
  LOG_DAEMON,
  LOG_DEBUG,
  LOG_ERR,
  LOG_INFO,
  LOG_NDELAY,
  LOG_PERROR,
  LOG_PID,
  LOG_USER,
  LOG_WARNING,
  openlog,
  setSyslogBinding,
  syslog,
  type SyslogBinding,
} from './syslog.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(here, '../..');

function fakeBinding(): { calls: unknown[][]; binding: SyslogBinding } {
  const calls: unknown[][] = [];
  return {
    calls,
    binding: {
      openlog: (...a) => void calls.push(['openlog', ...a]),
      syslog: (...a) => void calls.push(['syslog', ...a]),
      closelog: () => void calls.push(['closelog']),
    },
  };
}

afterEach(() => setSyslogBinding(undefined));

describe('syslog constants', () => {
  it('match <syslog.h> on Linux and FreeBSD', () => {
    expect([LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG]).toEqual([3, 4, 6, 7]);
    expect([LOG_USER, LOG_DAEMON]).toEqual([1 << 3, 3 << 3]);
    expect([LOG_PID, LOG_NDELAY, LOG_PERROR]).toEqual([0x01, 0x08, 0x20]);
  });

  it('names the libc of this system', () => {
    expect(libcName()).toBe(process.platform === 'freebsd' ? 'libc.so.7' : 'libc.so.6');
  });
});

describe('with an injected binding', () => {
  it('passes openlog defaults, priorities and messages through unchanged', () => {
    const f = fakeBinding();
    setSyslogBinding(f.binding);
    openlog('HV_KVP');
    openlog('KVP', 0, LOG_DAEMON);
    syslog(LOG_ERR, 'open /dev/hv_kvp_dev: ENOENT');
    syslog(LOG_INFO | LOG_DAEMON, '100% %s %n');
    closelog();
    expect(f.calls).toEqual([
      ['openlog', 'HV_KVP', LOG_PID | LOG_NDELAY, LOG_USER],
      ['openlog', 'KVP', 0, LOG_DAEMON],
      ['syslog', LOG_ERR, 'open /dev/hv_kvp_dev: ENOENT'],
      ['syslog', LOG_INFO | LOG_DAEMON, '100% %s %n'],
      ['closelog'],
    ]);
  });

  it('spells out NUL characters instead of letting C cut the string there', () => {
    const f = fakeBinding();
    setSyslogBinding(f.binding);
    openlog('a\0b');
    syslog(LOG_INFO, 'key\0value');
    expect(f.calls).toEqual([
      ['openlog', 'a\\0b', LOG_PID | LOG_NDELAY, LOG_USER],
      ['syslog', LOG_INFO, 'key\\0value'],
    ]);
  });
});

describe('the real libc', () => {
  it('openlog, syslog and closelog do not throw', () => {
    openlog('hvguest-test', LOG_PID | LOG_NDELAY, LOG_USER);
    expect(() => syslog(LOG_DEBUG, 'hvguest syslog.test.ts: %s %n %d are not formats')).not.toThrow();
    closelog();
  });

  // LOG_PERROR copies each message to stderr, so a child process shows what libc formatted
  // without reading the system log. A garbage collection between openlog and syslog checks
  // that the ident libc keeps is still ours.
  it('sends the message verbatim (never as a format) under the kept ident', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvguest-syslog-'));
    try {
      const script = join(dir, 'child.ts');
      writeFileSync(
        script,
        [
          `import { openlog, syslog, closelog, LOG_PERROR, LOG_INFO } from ${JSON.stringify(join(here, 'syslog.ts'))};`,
          `openlog(['hv', 'test'].join('-'), LOG_PERROR);`,
          `for (let i = 0; i < 1e5; i++) void new Array(8).fill('x'.repeat(i % 64));`,
          `globalThis.gc();`,
          `syslog(LOG_INFO, '100% %s%n%n%s done');`,
          `closelog();`,
        ].join('\n'),
      );
      const r = spawnSync(process.execPath, ['--expose-gc', join(root, 'node_modules/vite-node/vite-node.mjs'), script], {
        cwd: root,
        encoding: 'utf8',
        timeout: 20000,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^hv-test(\[\d+\])?: 100% %s%n%n%s done$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
