/**
 * GET_IP_INFO end to end on the real kernel: a network namespace this test
 * creates (never the machine's own interfaces or routes), with
 *
 *   hv0    veth, MAC 00:15:5d:7e:57:01, 192.0.2.10/24, 2001:db8:7e57::10/64,
 *          default routes via 192.0.2.1 and 2001:db8:7e57::1;
 *   hvvf0  veth with the SAME MAC and no address (an SR-IOV VF stand-in);
 *   hv00   veth, another MAC, 198.51.100.10/24 and its own default route
 *          (a name hv0 is a prefix of: its gateway must not be reported);
 *
 * and runs getIpInfo inside the namespace (`ip netns exec NAME node probe`)
 * from a private compile of the sources, so a stale or half-built dist/ can
 * neither fail nor pass this test. The helper directory holds stubs that
 * run the shipped Linux helper scripts against this test's own resolv.conf
 * and ifupdown file. Needs root and `ip netns`; skipped, with the reason in
 * the test name, where that is unavailable.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, run, start, stop } from './lib/procs.js';

const ROOT = resolve(import.meta.dirname, '..');
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p));
const NS = `hvg-${randomBytes(4).toString('hex')}`;
const MAC = '00:15:5d:7e:57:01';

/** What GET_IP_INFO must report for hv0 (the daemon's reply, and what the host decodes). */
const HV0_REPLY = {
  adapterId: '00:15:5D:7E:57:01',
  addrFamily: 3,
  dhcpEnabled: 1,
  ipAddr: '192.0.2.10;2001:db8:7e57::10;fe80::215:5dff:fe7e:5701',
  subNet: '255.255.255.0;/64;/64',
  // hv00's default route (198.51.100.1) is another interface's.
  gateWay: '192.0.2.1;2001:db8:7e57::1;',
  dnsAddr: '192.0.2.53;2001:db8:7e57::53;',
};

const sh = (file: string, args: string[], timeout = 20_000) => spawnSync(file, args, { encoding: 'utf8', timeout });

/** Why this test cannot run here, or undefined. Creates the namespace as its probe. */
function unavailable(): string | undefined {
  if (process.platform !== 'linux') return 'Linux network namespaces only';
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace';
  if (!IP) return 'no ip(8) from iproute2';
  if (!existsSync('/proc/sys/net/ipv6')) return 'IPv6 is disabled in this kernel';
  const r = sh(IP, ['netns', 'add', NS]);
  if (r.status !== 0) return `ip netns add failed: ${(r.stderr || r.error?.message || '').trim()}`;
  return undefined;
}
const reason = unavailable();
const created = reason === undefined;

function removeNamespace() {
  if (created && IP) sh(IP, ['netns', 'delete', NS]);
}
// Also on a crash between here and afterAll.
process.once('exit', removeNamespace);

/** Run a command inside the namespace; throws with its stderr when it fails. */
function inNs(...args: string[]) {
  const r = sh(IP!, ['netns', 'exec', NS, ...args]);
  if (r.status !== 0) throw new Error(`${args.join(' ')} in ${NS}: ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout;
}

describe.skipIf(!created)(`GET_IP_INFO in a network namespace${created ? '' : ` (skipped: ${reason})`}`, () => {
  let probe: { stdout: string; stderr: string; status: number | null };
  let work = '';

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'hvg-netns-'));
    try {
      // hv0 and its VF stand-in share the MAC; link-local addresses come from
      // the MAC (EUI-64) and skip DAD so the answer is exact at once.
      const ip = (...a: string[]) => inNs(IP!, ...a);
      ip('link', 'add', 'hv0', 'type', 'veth', 'peer', 'name', 'hv0peer');
      ip('link', 'add', 'hvvf0', 'type', 'veth', 'peer', 'name', 'hvvf0peer');
      ip('link', 'add', 'hv00', 'type', 'veth', 'peer', 'name', 'hv00peer');
      ip('link', 'set', 'hv0', 'address', MAC, 'addrgenmode', 'eui64');
      ip('link', 'set', 'hvvf0', 'address', MAC, 'addrgenmode', 'none');
      ip('link', 'set', 'hv00', 'address', '00:15:5d:7e:57:02', 'addrgenmode', 'none');
      for (const peer of ['hv0peer', 'hvvf0peer', 'hv00peer']) ip('link', 'set', peer, 'addrgenmode', 'none');
      inNs('/bin/sh', '-c', 'echo 0 > /proc/sys/net/ipv6/conf/hv0/accept_dad');
      for (const l of ['hv0', 'hv0peer', 'hvvf0', 'hvvf0peer', 'hv00', 'hv00peer']) ip('link', 'set', l, 'up');
      ip('addr', 'add', '192.0.2.10/24', 'dev', 'hv0');
      ip('-6', 'addr', 'add', '2001:db8:7e57::10/64', 'dev', 'hv0', 'nodad');
      ip('addr', 'add', '198.51.100.10/24', 'dev', 'hv00');
      ip('route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'hv0', 'metric', '100');
      ip('-6', 'route', 'add', 'default', 'via', '2001:db8:7e57::1', 'dev', 'hv0');
      ip('route', 'add', 'default', 'via', '198.51.100.1', 'dev', 'hv00', 'metric', '200');
      // The link-local address appears when the carrier does; wait for it.
      for (let i = 0; i < 50 && !inNs(IP!, '-6', 'addr', 'show', 'dev', 'hv0', 'scope', 'link').includes('fe80::'); i++) sh('/bin/sleep', ['0.1']);

      // Helper stubs: the shipped scripts, pointed at this test's files.
      const scripts = join(ROOT, 'build/scripts/linux');
      writeFileSync(join(work, 'resolv.conf'), 'search test.internal\nnameserver 192.0.2.53\nnameserver 2001:db8:7e57::53\n');
      writeFileSync(join(work, 'interfaces'), 'auto hv0\niface hv0 inet dhcp\n');
      const stub = (name: string, env: string) => {
        const p = join(work, 'helpers', name);
        writeFileSync(p, `#!/bin/sh\necho "${name} $*" >> ${work}/calls.log\n${env} exec /bin/sh ${scripts}/${name} "$@"\n`);
        chmodSync(p, 0o755);
      };
      sh('/bin/mkdir', [join(work, 'helpers')]);
      const none = join(work, 'none');
      stub('hv_get_dns_info', `HV_RESOLV_CONF=${work}/resolv.conf HV_RESOLVED_CONF=${none}`);
      stub('hv_get_dhcp_info', `HV_NMCLI=${none} HV_NETWORKCTL=${none} HV_INTERFACES=${work}/interfaces HV_IFCFG_DIR=${none}`);

      // A private compile of what is under test.
      const tsc = sh(process.execPath, [
        join(ROOT, 'node_modules/typescript/bin/tsc'),
        ...['--outDir', join(work, 'dist'), '--rootDir', ROOT, '--module', 'nodenext', '--moduleResolution', 'nodenext'],
        ...['--target', 'es2022', '--skipLibCheck', '--types', 'node', '--sourceMap', 'false'],
        join(ROOT, 'kvp/ip-info.ts'),
        join(ROOT, 'kvp/intrinsics.ts'),
      ], 120_000);
      if (!existsSync(join(work, 'dist/kvp/ip-info.js'))) throw new Error(`tsc produced no ip-info.js: ${tsc.stdout}${tsc.stderr}`);
      writeFileSync(
        join(work, 'probe.mjs'),
        `import { getIpInfo } from './dist/kvp/ip-info.js';
import { createIntrinsics } from './dist/kvp/intrinsics.js';
import { runProgram } from './dist/common/os/run.js';
const logs = [];
const log = { debug() {}, info: (o, m) => logs.push({ o, m }), warn: (o, m) => logs.push({ o, m }) };
const ctx = { flavor: 'linux', helperDir: process.argv[3], configDir: '/nonexistent', run: runProgram, log };
const reply = await getIpInfo({ adapterId: process.argv[2], addrFamily: 3 }, ctx);
const unknown = await getIpInfo({ adapterId: '00:15:5D:7E:57:99', addrFamily: 3 }, ctx);
const ipv4 = await createIntrinsics({ flavor: 'linux', sys: { canonicalName: async () => undefined } }).at(2);
process.stdout.write(JSON.stringify({ reply, unknown, ipv4, logs }));
`,
      );
      probe = sh(IP!, ['netns', 'exec', NS, process.execPath, join(work, 'probe.mjs'), MAC.toUpperCase(), join(work, 'helpers')], 60_000);
    } catch (e) {
      removeNamespace();
      throw e;
    }
  }, 180_000);

  afterAll(() => {
    removeNamespace();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const out = () => {
    expect(probe.status, probe.stderr).toBe(0);
    return JSON.parse(probe.stdout) as {
      reply: Record<string, unknown>;
      unknown: Record<string, unknown>;
      ipv4: { key: string; value: string };
      logs: { o: Record<string, unknown>; m: string }[];
    };
  };

  it('reports hv0 exactly: addresses, masks, its own gateways, DNS and DHCP from the helpers', () => {
    expect(out().reply).toEqual(HV0_REPLY);
  });

  it('chose hv0 over the address-less interface sharing its MAC, and said so', () => {
    expect(out().logs).toContainEqual({ o: expect.objectContaining({ iface: 'hv0', others: ['hvvf0'] }), m: expect.any(String) });
  });

  it('ran each helper once per request, for hv0', () => {
    out();
    expect(readFileSync(join(work, 'calls.log'), 'utf8').split('\n').filter(Boolean).sort()).toEqual(['hv_get_dhcp_info hv0', 'hv_get_dns_info hv0']);
  });

  it('answers an unknown MAC with an error', () => {
    expect(out().unknown).toEqual({ error: expect.stringContaining('00:15:5D:7E:57:99') });
  });

  it('through the whole path: hv_kvp_daemon in the namespace, the host asking over the simulated device', async () => {
    // The simulator's node is a Unix socket on the file system, reachable from inside the namespace.
    const simDir = join(work, 'sim');
    const sim = start(bin('hvsim'), ['serve', '--flavor', 'linux', '--dir', simDir]);
    await sim.waitFor(/^hvsim: ready/);
    const daemon = start(IP!, ['netns', 'exec', NS, bin('hv_kvp_daemon'), '-n', '--flavor', 'linux', '--device', join(simDir, 'vmbus/hv_kvp'), '--pool-dir', join(work, 'pool'), '--helper-dir', join(work, 'helpers')]);
    try {
      const r = await run(bin('hvsim'), ['--dir', simDir, '--json', '--wait', '15', 'kvp', 'ipinfo', MAC.toUpperCase(), '--family', '3']);
      expect(r.code, r.stdout + r.stderr + daemon.stderr()).toBe(0);
      // What the host decodes from UTF-16; the Linux kernel leaves addr_family as the host sent it.
      expect(JSON.parse(r.stdout).ipInfo).toEqual(HV0_REPLY);
    } finally {
      await stop(daemon);
      await stop(sim);
    }
  }, 60_000);

  it('lists the namespace\'s IPv4 addresses as NetworkAddressIPv4', () => {
    expect(out().ipv4).toEqual({ key: 'NetworkAddressIPv4', value: '192.0.2.10;198.51.100.10' });
  });
});
