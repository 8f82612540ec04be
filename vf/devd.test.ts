/**
 * build/freebsd/devd/hvguest-vf.conf: devd.conf(5) syntax (the shared
 * reader in test/lib/devd-conf.ts, also used for hvguest.conf), the
 * Hyper-V guard on every rule, and each action naming a wrapper the build
 * ships, with the arguments devd's base hyperv.conf passes. The wrappers
 * themselves run under the real /bin/sh with a stand-in hvctl.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDevd } from '../test/lib/devd-conf.js';

const ROOT = resolve(import.meta.dirname, '..');
const CONF = join(ROOT, 'build/freebsd/devd/hvguest-vf.conf');
const SCRIPTS = join(ROOT, 'build/scripts/freebsd');
const LIBEXEC = '/usr/local/libexec/hyperv';

describe('devd rules', () => {
  const rules = parseDevd(readFileSync(CONF, 'utf8'));

  it('has the VF_UP and IFATTACH rules of spec/vf.md section 4, each guarded to Hyper-V guests, above the base rules (10)', () => {
    // devd runs only the highest-priority match; at the base rules' own 10 either file could win.
    expect(rules.map((r) => [r.kind, r.priority, r.match])).toEqual([
      ['notify', 100, { system: 'HYPERV_NIC_VF', type: 'VF_UP', vm_guest: 'hv' }],
      ['notify', 100, { system: 'ETHERNET', type: 'IFATTACH', vm_guest: 'hv' }],
    ]);
  });

  it('each action calls a wrapper the build ships, with the base system\'s arguments', () => {
    expect(rules.map((r) => r.action)).toEqual([`${LIBEXEC}/hyperv_vfup $subsystem`, `${LIBEXEC}/hyperv_vfattach $subsystem 0`]);
    for (const r of rules) {
      const prog = r.action.split(' ')[0]!;
      const shipped = join(SCRIPTS, basename(prog));
      expect(existsSync(shipped), shipped).toBe(true);
      expect(statSync(shipped).mode & 0o111, `${shipped} executable`).not.toBe(0);
    }
  });

  it('rejects broken syntax (the reader is not a no-op)', () => {
    expect(() => parseDevd('notify 10 { match "system" "X"; action "y" };')).toThrow();
    expect(() => parseDevd('notify 10 { match "system" "X"; action "y"; }')).toThrow();
    expect(() => parseDevd('notify 10 { mtch "system" "X"; };')).toThrow(/not a devd statement/);
  });
});

describe('wrappers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvguest-vf-wrap-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fake = join(dir, 'hvctl');
  writeFileSync(fake, '#!/bin/sh\necho "$@"\nexit 0\n');
  chmodSync(fake, 0o755);
  const sh = (script: string, args: string[], hvctl = fake) =>
    spawnSync('/bin/sh', [join(SCRIPTS, script), ...args], { env: { PATH: '/usr/bin:/bin', HVCTL: hvctl }, encoding: 'utf8' });

  it('parse under sh -n and are executable', () => {
    for (const s of ['hyperv_vfattach', 'hyperv_vfup']) expect(spawnSync('/bin/sh', ['-n', join(SCRIPTS, s)]).status).toBe(0);
  });

  it('exec hvctl vf ... --syslog with the devd arguments', () => {
    expect(sh('hyperv_vfup', ['hn0'])).toMatchObject({ status: 0, stdout: 'vf up --syslog hn0\n' });
    expect(sh('hyperv_vfattach', ['mce0', '0'])).toMatchObject({ status: 0, stdout: 'vf attach --syslog mce0 0\n' });
    expect(sh('hyperv_vfattach', ['mce0'])).toMatchObject({ status: 0, stdout: 'vf attach --syslog mce0 0\n' });
  });

  it('usage errors exit 64; a missing hvctl (package removed under devd) exits 0', () => {
    expect(sh('hyperv_vfup', []).status).toBe(64);
    expect(sh('hyperv_vfattach', []).status).toBe(64);
    expect(sh('hyperv_vfup', ['hn0'], join(dir, 'nope'))).toMatchObject({ status: 0, stdout: '' });
  });
});
