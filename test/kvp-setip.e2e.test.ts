/**
 * IP injection end to end (Linux flavor): host SET_IP_INFO through the
 * simulator into hv_kvp_daemon, which finds the NIC by its VMBus id in a
 * fake /sys/class/net (--sysfs-net), writes ifcfg and NetworkManager
 * keyfile configs and runs a stub hv_set_ifconfig that only records its
 * argv. Malicious host strings are rejected: the stub never runs for them
 * and no file is written. Nothing here touches the machine's network.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, killAll, run, start, stop, tempDir, type Proc } from './lib/procs.js';
import { HV_S_OK } from '../common/wire/constants.js';

const GUID = '{4f0c5a2e-1b2c-4d3e-8f90-a1b2c3d4e5f6}';
const MAC = '00:15:5d:01:02:03';

describe('SET_IP_INFO end to end (Linux flavor, stub helper)', () => {
  let tmp: { dir: string; remove: () => void };
  let sim: Proc;
  let daemon: Proc;
  let cfg: string;
  let log: string;

  const setip = (adapter: string, ...opts: string[]) => run(bin('hvsim'), ['--dir', join(tmp.dir, 'sim'), '--json', 'kvp', 'setip', adapter, ...opts]);
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);

  beforeAll(async () => {
    tmp = tempDir();
    cfg = join(tmp.dir, 'cfg');
    log = join(tmp.dir, 'helper.log');
    mkdirSync(cfg);
    const net = join(tmp.dir, 'net', 'eth9');
    mkdirSync(join(net, 'device'), { recursive: true });
    writeFileSync(join(net, 'address'), `${MAC}\n`);
    writeFileSync(join(net, 'device', 'device_id'), `${GUID}\n`);
    const helpers = join(tmp.dir, 'helpers');
    mkdirSync(helpers);
    writeFileSync(join(helpers, 'hv_set_ifconfig'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\n`);
    chmodSync(join(helpers, 'hv_set_ifconfig'), 0o755);
    sim = start(bin('hvsim'), ['serve', '--flavor', 'linux', '--dir', join(tmp.dir, 'sim')]);
    await sim.waitFor(/^hvsim: ready/);
    daemon = start(bin('hv_kvp_daemon'), [
      '-n',
      '--flavor',
      'linux',
      '--device',
      join(tmp.dir, 'sim', 'vmbus/hv_kvp'),
      '--pool-dir',
      join(tmp.dir, 'pool'),
      '--helper-dir',
      helpers,
      '--config-dir',
      cfg,
      '--sysfs-net',
      join(tmp.dir, 'net'),
    ]);
  });
  afterAll(async () => {
    await stop(daemon);
    await killAll([sim]);
    await stop(sim);
    tmp.remove();
  });

  it('writes the ifcfg and keyfile configs and runs the helper with their paths', async () => {
    const r = await run(bin('hvsim'), ['--dir', join(tmp.dir, 'sim'), '--json', '--wait', '10', 'kvp', 'setip', GUID.toUpperCase(), '--ip', '10.1.2.3;fd00::3', '--subnet', '255.255.255.0;64', '--gateway', '10.1.2.1', '--dns', '10.1.2.53']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).status).toBe(HV_S_OK);
    expect(readdirSync(cfg).sort()).toEqual(['eth9.nmconnection', 'ifcfg-eth9']);
    expect(calls()).toEqual([`${join(cfg, 'ifcfg-eth9')} ${join(cfg, 'eth9.nmconnection')}`]);
    const ifcfg = readFileSync(join(cfg, 'ifcfg-eth9'), 'utf8');
    expect(ifcfg).toContain('DEVICE=eth9');
    expect(ifcfg).toContain('HWADDR=00:15:5D:01:02:03');
    expect(ifcfg).toContain('IPADDR0=10.1.2.3');
    expect(ifcfg).toContain('NETMASK0=255.255.255.0');
    expect(ifcfg).toContain('GATEWAY=10.1.2.1');
    expect(ifcfg).toContain('DNS1=10.1.2.53');
    expect(ifcfg).toContain('IPV6ADDR=fd00:0000:0000:0000:0000:0000:0000:0003');
    const keyfile = readFileSync(join(cfg, 'eth9.nmconnection'), 'utf8');
    expect(keyfile).toContain('interface-name=eth9');
    expect(keyfile).toMatch(/address1=10\.1\.2\.3\/24/);
    expect(keyfile).toMatch(/address1=fd00::3\/64/);
  });

  const MALICIOUS: Array<[string, string[]]> = [
    ['command after ;', ['--ip', '10.0.0.1;rm -rf /', '--subnet', '255.255.255.0']],
    ['$( )', ['--ip', '10.0.0.1$(reboot)', '--subnet', '255.255.255.0']],
    ['backticks', ['--ip', '`id`', '--subnet', '255.255.255.0']],
    ['pipe', ['--ip', '10.0.0.1|nc', '--subnet', '255.255.255.0']],
    ['ampersand', ['--ip', '10.0.0.1&', '--subnet', '255.255.255.0']],
    ['newline with an extra key', ['--ip', '10.0.0.1\nDNS1=6.6.6.6', '--subnet', '255.255.255.0']],
    ['.. in a subnet', ['--ip', '10.0.0.1', '--subnet', '255.255.255.0;../../etc']],
    ['redirect in the gateway', ['--ip', '10.0.0.1', '--subnet', '255.255.255.0', '--gateway', '10.0.0.1>x']],
    ['spaces and ; in DNS', ['--ip', '10.0.0.1', '--subnet', '255.255.255.0', '--dns', '10.0.0.53 ; echo']],
    ['absolute path in DNS', ['--ip', '10.0.0.1', '--subnet', '255.255.255.0', '--dns', '/etc/passwd']],
    ['.. as an address', ['--ip', '..', '--subnet', '255.255.255.0']],
    ['octet out of range', ['--ip', '300.1.1.1', '--subnet', '255.255.255.0']],
    ['non-contiguous mask', ['--ip', '10.0.0.1', '--subnet', '255.0.255.0']],
    ['IPv4 with an IPv6 prefix', ['--ip', '10.0.0.1', '--subnet', '64']],
    ['IPv6 zone id', ['--ip', 'fe80::1%eth0', '--subnet', '64']],
    ['backslash', ['--ip', '10.0.0.1\\', '--subnet', '255.255.255.0']],
    ['single quote', ['--ip', "10.0.0.1'", '--subnet', '255.255.255.0']],
    ['double quote', ['--ip', '10.0.0.1"', '--subnet', '255.255.255.0']],
    ['non-ASCII', ['--ip', 'é.1.1.1', '--subnet', '255.255.255.0']],
    ['two gateways separated by a space', ['--ip', '10.0.0.1', '--subnet', '255.255.255.0', '--gateway', '10.0.0.1 10.0.0.2']],
    ['leading zeros', ['--ip', '10.0.0.01', '--subnet', '255.255.255.0']],
    ['more addresses than subnets', ['--ip', '10.0.0.1;10.0.0.2', '--subnet', '255.255.255.0']],
  ];

  it(`rejects ${MALICIOUS.length + 2} malicious requests; the helper never runs and nothing is written`, async () => {
    const before = calls().length;
    const files = readdirSync(cfg).map((f) => readFileSync(join(cfg, f), 'utf8'));
    for (const [what, opts] of MALICIOUS) {
      const r = await setip(GUID, ...opts);
      expect(r.code, `${what}: ${r.stdout}`).toBe(1);
      expect(JSON.parse(r.stdout).status, what).not.toBe(HV_S_OK);
    }
    for (const adapter of [`${GUID};id`, '../../eth9']) {
      const r = await setip(adapter, '--ip', '10.0.0.1', '--subnet', '255.255.255.0');
      expect(r.code, adapter).toBe(1);
    }
    expect(calls().length).toBe(before);
    expect(readdirSync(cfg).map((f) => readFileSync(join(cfg, f), 'utf8'))).toEqual(files);
    expect(daemon.child.exitCode).toBeNull();
  });
});
