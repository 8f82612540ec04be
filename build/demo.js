#!/usr/bin/env node
// The README's demo: a simulated Hyper-V host (hvsim serve) for each flavor
// with hv_kvp_daemon registered on its KVP node, and what Hyper-V Manager
// would show: the guest's intrinsic items, items a guest tool published, a
// key the host pushed, the guest's IP information. Needs no root; pools and
// everything else live in a temporary folder removed at the end.
//
// Until the VSS daemon lands (issue #4) the backup requests are answered by
// test/fixtures/echo-daemon, a small daemon on the shared loop (common/serve)
// that answers check/freeze/thaw with success without freezing anything.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const hvsim = join(root, 'bin', 'hvsim');
const hvctl = join(root, 'bin', 'hvctl');
const children = [];
const dirs = [];

function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

function startAndWait(cmd, args, re) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  return new Promise((res, rej) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (re.test(out)) res(child);
    });
    child.on('exit', (code) => rej(new Error(`${cmd} exited (${code}) before it was ready`)));
  });
}

function show(prog, label, args) {
  console.log(`$ ${label} ${args.join(' ')}`);
  const r = spawnSync(prog, args, { encoding: 'utf8' });
  process.stdout.write(r.stdout.replace(/^(?=.)/gm, '  '));
  if (r.stderr) process.stdout.write(r.stderr.replace(/^(?=.)/gm, '  '));
  console.log(`  (exit ${r.status})`);
}
const host = (dir, ...args) => show(hvsim, 'hvsim', ['--dir', dir, ...args]);
const guest = (poolDir, ...args) => show(hvctl, 'hvctl', [...args, '--pool-dir', poolDir]);

/** The MAC of this machine's first non-loopback interface, for the IP-info request. */
function firstMac() {
  for (const addrs of Object.values(networkInterfaces())) {
    const a = addrs?.find((x) => !x.internal && x.mac !== '00:00:00:00:00:00');
    if (a) return a.mac.toUpperCase();
  }
  return '00:15:5D:00:00:01';
}

try {
  for (const [flavor, kvpNode, vssNode] of [
    ['freebsd', 'hv_kvp_dev', 'hv_fsvss_dev'],
    ['linux', 'vmbus/hv_kvp', 'vmbus/hv_vss'],
  ]) {
    const dir = mkdtempSync(join(tmpdir(), `hvguest-demo-${flavor}-`));
    dirs.push(dir);
    console.log(`\n=== ${flavor}: simulated host serving ${kvpNode} and ${vssNode} in ${dir}`);
    const sim = await startAndWait(hvsim, ['serve', '--flavor', flavor, '--dir', dir], /ready/);
    const pool = join(dir, 'pool');
    const kvpd = spawn(join(root, 'bin', 'hv_kvp_daemon'), ['-n', '--flavor', flavor, '--device', join(dir, kvpNode), '--pool-dir', pool, '--helper-dir', join(root, 'build', 'scripts', flavor), '--config-dir', join(dir, 'cfg')], { stdio: 'ignore' });
    children.push(kvpd);
    await startAndWait(process.execPath, [join(root, 'dist/test/fixtures/echo-daemon.js'), '--flavor', flavor, '--service', 'vss', '--device', join(dir, vssNode)], /registered/);
    host(dir, '--wait', '10', 'kvp', 'enum', 'auto');
    console.log('# a guest tool publishes items in the guest pool (as cloud-init does)');
    guest(pool, 'kvp', 'set', '--pool', 'guest', 'ProvisioningState', 'ready');
    guest(pool, 'kvp', 'set', '--pool', 'guest', 'Role', 'web');
    host(dir, 'kvp', 'enum', 'guest');
    console.log('# the host pushes a key; the guest reads it from the external pool');
    host(dir, 'kvp', 'set', 'external', 'DeploymentId', 'a1b2c3');
    guest(pool, 'kvp', 'get', '--pool', 'external', 'DeploymentId');
    host(dir, 'kvp', 'get', 'guest', 'NoSuchKey');
    if (flavor === 'linux') host(dir, 'kvp', 'ipinfo', firstMac());
    host(dir, 'vss', 'check');
    host(dir, 'vss', 'freeze');
    host(dir, 'vss', 'thaw');
    for (const c of children) if (c !== sim) c.kill('SIGTERM');
    host(dir, '--wait', '1', 'kvp', 'get', 'guest', 'Role');
    sim.kill('SIGTERM');
  }
  console.log('\nDemo done: exit 0 = host got success, 1 = host got a failure status, 2 = no daemon/timeout.');
} catch (e) {
  console.error(`demo: ${e.message}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
