/**
 * Item 4: injection. Every host-controlled string that can reach a file
 * name, a config file or a child process (KVP keys and values, adapter ids,
 * addresses, subnets, gateways, DNS lists) is sent to a running
 * hv_kvp_daemon (Linux flavor, simulator; IP injection against a fake
 * /sys/class/net) with shell metacharacters, newlines, "..", absolute
 * paths, NUL, overlong and invalid UTF-8 text. The helpers record their
 * argv, and hv_set_ifconfig even sources the ifcfg file it gets, as the
 * old FreeBSD script did: a shell injection anywhere would create the
 * canary file. Afterwards: no canary, no file outside its place, config
 * files hold only validated addresses, helpers got only the expected
 * arguments, the daemon is still serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HV_E_FAIL, HV_GUID_NOTFOUND, HV_INVALIDARG, HV_S_CONT, HV_S_OK, KVP_OP } from '../../common/wire/constants.js';
import { encodeKvp } from '../../common/wire/kvp.js';
import { stop, type Proc } from '../lib/procs.js';
import { listFiles } from '../lib/files.js';
import { report } from './lib.js';
import { createRig, hostGet, type HostAnswer, type Rig } from './rig.js';

const GUID = '{4f0c5a2e-1b2c-4d3e-8f90-a1b2c3d4e5f6}';
const MAC = '00:15:5d:01:02:03';

describe('injection through host strings (Linux flavor)', () => {
  let rig: Rig;
  let d: Proc;
  let canary: string;
  let log: string;
  const tmpCanary = '/tmp/hvguest-reliability-pwned';
  const statuses = new Map<string, number>();
  let sent = 0;
  const note = (s?: number) => {
    sent++;
    statuses.set((s ?? -1).toString(16), (statuses.get((s ?? -1).toString(16)) ?? 0) + 1);
  };

  /** Hostile texts; each would create a canary if it ever reached a shell. */
  const nasty = () => [
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `10.0.0.1;touch ${canary}`,
    `10.0.0.1 && touch ${canary}`,
    `10.0.0.1|touch ${canary}`,
    `10.0.0.1\ntouch ${canary}\n`,
    `10.0.0.1\r\nGATEWAY=6.6.6.6`,
    `'; touch ${canary}; '`,
    `"; touch ${canary}; "`,
    `$(touch ${tmpCanary})`,
    '../../../../etc/passwd',
    '/etc/shadow',
    '..',
    '-rf',
    '--help',
    `eth9;touch ${canary}`,
    'eth9/../../x',
    '%s%s%n',
    'x'.repeat(1000),
    '\u00e9\u{1F600}\u0000after-nul',
  ];

  beforeAll(async () => {
    rig = await createRig('linux', ['--kvp-timeout', '30']);
    canary = join(rig.dir, 'pwned');
    log = join(rig.dir, 'helper.log');
    const net = join(rig.dir, 'net', 'eth9');
    mkdirSync(join(net, 'device'), { recursive: true });
    writeFileSync(join(net, 'address'), `${MAC}\n`);
    writeFileSync(join(net, 'device', 'device_id'), `${GUID}\n`);
    mkdirSync(join(rig.dir, 'cfg'));
    const helper = (name: string, body: string) => {
      writeFileSync(join(rig.helperDir, name), `#!/bin/sh\nprintf '%s\\n' "${name} $*" >> '${log}'\n${body}\n`);
      chmodSync(join(rig.helperDir, name), 0o755);
    };
    // Sourcing the generated file is what the old FreeBSD script did; only data, no code, may be in it.
    helper('hv_set_ifconfig', '( . "$1" ) >/dev/null 2>&1; exit 0');
    helper('hv_get_dns_info', 'echo 192.0.2.53');
    helper('hv_get_dhcp_info', 'echo Disabled');
    d = await rig.kvp(['--sysfs-net', join(rig.dir, 'net')]);
  }, 60_000);
  afterAll(async () => {
    if (d) await stop(d);
    await rig?.close();
  });

  it('SET_IP_INFO: every hostile value in every field is refused or stored as a validated address, never executed', async () => {
    const base = { adapterId: GUID, ip: '192.0.2.20', subnet: '255.255.255.0', gateway: '192.0.2.1', dns: '192.0.2.53', dhcp: false };
    const fields = ['adapterId', 'ip', 'subnet', 'gateway', 'dns'] as const;
    for (const f of fields) {
      for (const v of nasty()) {
        let r: HostAnswer;
        try {
          r = await rig.host({ cmd: 'kvp', req: { op: 'setip', ...base, [f]: v }, opts: { waitForDaemonMs: 5000 } });
        } catch (e) {
          // The host's own encoder refuses what cannot be sent (too long for the field): nothing reached the daemon.
          expect(String(e)).toMatch(/too long|does not fit|RangeError|bytes|NUL/i);
          continue;
        }
        expect(r.outcome).toBe('answered');
        note(r.status);
        expect([HV_S_OK, HV_INVALIDARG, HV_GUID_NOTFOUND, HV_E_FAIL], `${f}=${JSON.stringify(v)}`).toContain(r.status);
        // Only a value that is a plain address (after NUL truncation) may succeed.
        if (r.status === HV_S_OK) expect(v.includes('\u0000') || v === '' || /^[0-9a-fA-F.:/]*$/.test(v), `${f}=${JSON.stringify(v)} accepted`).toBe(true);
      }
    }
    expect(existsSync(canary)).toBe(false);
    expect(existsSync(tmpCanary)).toBe(false);
  }, 300_000);

  it('GET_IP_INFO: hostile adapter ids fail, and never reach a helper', async () => {
    for (const v of nasty()) {
      let r: HostAnswer;
      try {
        r = await rig.host({ cmd: 'kvp', req: { op: 'ipinfo', mac: v }, opts: { waitForDaemonMs: 5000 } });
      } catch {
        continue;
      }
      note(r.status);
      expect(r.status, JSON.stringify(v)).toBe(HV_E_FAIL);
    }
  }, 120_000);

  it('KVP keys and values: shell text, paths and newlines are stored as data, in the pool files only', async () => {
    for (const v of nasty()) {
      const key = v.slice(0, 200);
      const r = await rig.host({ cmd: 'kvp', req: { op: 'set', pool: 0, key, value: v }, opts: { waitForDaemonMs: 5000 } }).catch(() => undefined);
      if (!r) continue;
      note(r.status);
      expect([HV_S_OK, HV_S_CONT]).toContain(r.status);
      if (r.status === HV_S_OK && !key.includes('\u0000')) {
        const g = await hostGet(rig, 0, key);
        expect(g.value).toBe(v.includes('\u0000') ? v.slice(0, v.indexOf('\u0000')) : v);
        expect((await rig.host({ cmd: 'kvp', req: { op: 'delete', pool: 0, key }, opts: { waitForDaemonMs: 5000 } })).status).toBe(HV_S_OK);
      }
    }
  }, 120_000);

  it('raw messages: NUL inside a field, invalid UTF-8, fields without a terminator', async () => {
    const b = (s: string | Buffer) => (Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8'));
    const bad: Buffer[] = [
      b(`192.0.2.20\0;touch ${canary}`),
      Buffer.concat([b('192.0.2.'), Buffer.from([0xff, 0xfe, 0xc3]), b('\0')]),
      Buffer.alloc(2048, 0x41), // no NUL anywhere in the field
      b(`\u00e9$(touch ${canary})\0`),
    ];
    const ip = (o: Record<string, Buffer>) => ({ adapter_id: b(`${GUID}\0`), addr_family: 1, dhcp_enabled: 0, ip_addr: b('192.0.2.20\0'), sub_net: b('255.255.255.0\0'), gate_way: b('192.0.2.1\0'), dns_addr: b('192.0.2.53\0'), ...o });
    for (const field of ['adapter_id', 'ip_addr', 'sub_net', 'gate_way', 'dns_addr']) {
      for (const v of bad) {
        const size = field === 'adapter_id' ? 256 : field === 'gate_way' ? 1024 : 2048;
        const m = encodeKvp('linux', { operation: KVP_OP.SET_IP_INFO, pool: 0 }, 'kvp_ip_val', ip({ [field]: v.subarray(0, size) }));
        const r = await rig.host({ cmd: 'raw', service: 'kvp', hex: m.toString('hex'), opts: { waitForDaemonMs: 5000 } });
        expect(r.outcome).toBe('answered');
        const st = Buffer.from(r.reply!, 'hex').readUInt32LE(0);
        note(st);
        expect([HV_S_OK, HV_INVALIDARG, HV_GUID_NOTFOUND, HV_E_FAIL], `${field}=${v.subarray(0, 40).toString('hex')}`).toContain(st);
      }
    }
    // Keys with invalid UTF-8 and without a terminator.
    for (const key of [Buffer.concat([b('k'), Buffer.from([0xc0, 0xaf]), b('\0')]), Buffer.alloc(512, 0x2f)]) {
      const m = encodeKvp('linux', { operation: KVP_OP.SET, pool: 0 }, 'kvp_set', { data: { value_type: 1, key_size: 512, value_size: 2, key: key, value: b('v\0') } });
      const r = await rig.host({ cmd: 'raw', service: 'kvp', hex: m.toString('hex'), opts: { waitForDaemonMs: 5000 } });
      const st = Buffer.from(r.reply!, 'hex').readUInt32LE(0);
      note(st);
      expect([HV_S_CONT, HV_E_FAIL]).toContain(st);
    }
  }, 120_000);

  it('afterwards: no canary, every file in its place, configs hold only addresses, helpers saw only expected arguments', () => {
    expect(existsSync(canary)).toBe(false);
    expect(existsSync(tmpCanary)).toBe(false);
    const files = listFiles(rig.dir).filter((f) => !f.startsWith('sim/'));
    const allowed = /^(pool\/\.kvp_pool_[0-4]|pool\/\.hvguest_journal_[0-4]|cfg\/ifcfg-eth9|cfg\/eth9\.nmconnection|net\/eth9\/address|net\/eth9\/device\/device_id|helpers\/hv_(set_ifconfig|get_dns_info|get_dhcp_info)|helper\.log|mount\.txt)$/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
    for (const f of ['ifcfg-eth9', 'eth9.nmconnection']) {
      const text = readFileSync(join(rig.dir, 'cfg', f), 'utf8');
      expect(text).not.toMatch(/touch|pwned|\$\(|`|passwd|shadow|6\.6\.6\.6/);
      // Every line: a comment, a [section], or KEY=VALUE with an address-like or known value.
      for (const line of text.split('\n').filter(Boolean)) expect(line, f).toMatch(/^(#.*|\[[a-z0-9-]+\]|[A-Za-z0-9_-]+=[A-Za-z0-9_.:/;,=-]*)$/);
      expect(statSync(join(rig.dir, 'cfg', f)).mode & 0o777).toBe(0o600);
    }
    const calls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    for (const c of calls) {
      expect(c).toMatch(new RegExp(`^(hv_set_ifconfig ${join(rig.dir, 'cfg')}/ifcfg-eth9 ${join(rig.dir, 'cfg')}/eth9\\.nmconnection|hv_get_dns_info \\S+|hv_get_dhcp_info \\S+)$`));
    }
    expect(d.child.exitCode).toBe(null);
    report({
      item: 4,
      test: 'injection through host strings (Linux flavor)',
      load: `${sent} requests: SET_IP_INFO with each hostile text in each of 5 fields, GET_IP_INFO adapter ids, KVP keys/values, raw fields with NUL / invalid UTF-8 / no terminator`,
      faults: 'shell metacharacters ($(), backticks, ; && |), newlines and CRLF, quotes, .., absolute paths, option-like text, 1000-character text, NUL, invalid UTF-8',
      result: `canary never created (a shell injection would create it; hv_set_ifconfig sources the ifcfg file); no file outside pool/ and cfg/; config files hold only validated addresses, mode 0600; ${calls.length} helper runs, all with the expected arguments only; statuses ${[...statuses].map(([s, n]) => `${s}:${n}`).join(' ')}`,
    });
  });
});
