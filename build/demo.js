#!/usr/bin/env node
// The README's demo: a simulated Hyper-V host (hvsim serve) for each flavor
// with hv_kvp_daemon registered on its KVP node, and what Hyper-V Manager
// would show: the guest's intrinsic items, items a guest tool published, a
// key the host pushed, the guest's IP information. Needs no root; pools and
// everything else live in a temporary folder removed at the end.
// hv_vss_daemon answers a host backup cycle (check, freeze, thaw) in
// --dry-run mode: it logs what it would freeze and freezes nothing.
//
// `npm run demo -- --live` (root, Linux) adds the same cycle for real on two
// loop-mounted ext4 images in a private mount namespace made for the demo
// (one image stored on the other, so the dependency order shows), with
// --include and HVGUEST_FREEZE_ALLOW naming only them; nothing else can be
// frozen, and the namespace thaws and unmounts everything at the end.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/** Wait until the simulator sees the VSS daemon registered (Linux fails VSS requests at once before that). */
async function vssRegistered(dir) {
  for (let i = 0; i < 100; i++) {
    const r = spawnSync(hvsim, ['--dir', dir, 'status'], { encoding: 'utf8' });
    if (r.status === 0 && JSON.parse(r.stdout).vss?.registered) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('hv_vss_daemon did not register');
}

/** A recorded FreeBSD mount table (the demo runs the FreeBSD flavor on this OS). */
function demoMountTable(dir) {
  const f = join(dir, 'mount.txt');
  writeFileSync(f, '/dev/ada0p2 on / (ufs, local, soft-updates)\ndevfs on /dev (devfs)\n/dev/ada1p1 on /data (ufs, local, soft-updates)\ntmpfs on /tmp (tmpfs, local)\n');
  return f;
}

/** The live backup cycle on loop images in a private mount namespace (root, Linux). */
async function liveCycle() {
  const { createLoopNamespace, realFreezeUnavailable } = await import(join(root, 'dist/vss/testing/loop-namespace.js'));
  const why = realFreezeUnavailable();
  if (why) {
    console.log(`\n=== live backup cycle skipped: ${why}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hvguest-demo-live-'));
  dirs.push(dir);
  console.log(`\n=== live: hv_vss_daemon freezing two loop-mounted test images in a private mount namespace (${dir})`);
  const ns = await createLoopNamespace(dir, [{ name: 'outer', sizeMb: 64 }, { name: 'inner', sizeMb: 16, on: 'outer' }]);
  try {
    const sim = await startAndWait(hvsim, ['serve', '--flavor', 'linux', '--dir', join(dir, 'sim')], /ready/);
    const mounts = Object.values(ns.mounts);
    const [cmd, ...pre] = ns.enter();
    const d = spawn(cmd, [...pre, join(root, 'bin', 'hv_vss_daemon'), '-n', '--flavor', 'linux', '--device', join(dir, 'sim', 'vmbus/hv_vss'), '--state-file', join(dir, 'vss.state'), '--hooks-dir', join(dir, 'no-hooks'), ...mounts.flatMap((m) => ['--include', m])], { stdio: 'ignore', env: { ...process.env, HVGUEST_FREEZE_ALLOW: mounts.join(':') } });
    children.push(d);
    await vssRegistered(join(dir, 'sim'));
    host(join(dir, 'sim'), 'vss', 'check');
    host(join(dir, 'sim'), 'vss', 'freeze');
    show(hvctl, 'hvctl', ['vss', 'status', '--state-file', join(dir, 'vss.state')]);
    host(join(dir, 'sim'), 'vss', 'thaw');
    d.kill('SIGTERM');
    sim.kill('SIGTERM');
  } finally {
    await ns.close();
  }
}

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
    const vssd = spawn(join(root, 'bin', 'hv_vss_daemon'), ['-n', '--dry-run', '--flavor', flavor, '--device', join(dir, vssNode), '--state-file', join(dir, 'vss.state'), '--hooks-dir', join(dir, 'no-hooks'), ...(flavor === 'freebsd' ? ['--mount-table', demoMountTable(dir)] : [])], {
      stdio: 'ignore',
      // A dry run freezes nothing; the allow list naming no mount point makes sure of it.
      env: { ...process.env, HVGUEST_FREEZE_ALLOW: '/nonexistent/hvguest-demo-may-freeze-nothing' },
    });
    children.push(vssd);
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
    console.log('# a host backup: check, freeze, thaw (the VSS daemon runs with --dry-run here)');
    await vssRegistered(dir);
    host(dir, 'vss', 'check');
    host(dir, 'vss', 'freeze');
    show(hvctl, 'hvctl', ['vss', 'status', '--flavor', flavor, '--state-file', join(dir, 'vss.state')]);
    host(dir, 'vss', 'thaw');
    for (const c of children) if (c !== sim) c.kill('SIGTERM');
    host(dir, '--wait', '1', 'kvp', 'get', 'guest', 'Role');
    sim.kill('SIGTERM');
  }
  if (process.argv.includes('--live')) await liveCycle();
  console.log('\nDemo done: exit 0 = host got success, 1 = host got a failure status, 2 = no daemon/timeout.');
} catch (e) {
  console.error(`demo: ${e.message}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
