#!/usr/bin/env node
// The README's demo: a simulated Hyper-V host (hvsim serve) for each flavor,
// with daemons registered on its device nodes, and the host's requests and
// what the host sees. Needs no root; everything lives in a temporary folder
// and is removed at the end.
//
// Until the KVP and VSS daemons land (issues #3, #4) the daemons here are
// test/fixtures/echo-daemon, a small daemon on the shared loop (common/serve)
// that answers GET with "echo:<key>", ENUMERATE with two items and
// check/freeze/thaw with success.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const hvsim = join(root, 'bin', 'hvsim');
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
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
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

function host(dir, ...args) {
  console.log(`$ hvsim ${args.join(' ')}`);
  const r = spawnSync(hvsim, ['--dir', dir, ...args], { encoding: 'utf8' });
  process.stdout.write(r.stdout.replace(/^(?=.)/gm, '  '));
  if (r.stderr) process.stdout.write(r.stderr.replace(/^(?=.)/gm, '  '));
  console.log(`  (exit ${r.status})`);
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
    for (const [service, node] of [['kvp', kvpNode], ['vss', vssNode]]) {
      await startAndWait(process.execPath, [join(root, 'dist/test/fixtures/echo-daemon.js'), '--flavor', flavor, '--service', service, '--device', join(dir, node)], /registered/);
    }
    host(dir, 'status');
    host(dir, 'kvp', 'set', 'external', 'Color', 'Blue');
    host(dir, 'kvp', 'get', 'guest', 'Color');
    host(dir, 'kvp', 'enum', 'guest');
    host(dir, 'kvp', 'delete', 'external', 'Color');
    host(dir, 'vss', 'check');
    host(dir, 'vss', 'freeze');
    host(dir, 'vss', 'thaw');
    host(dir, '--json', 'kvp', 'get', '1', 'Shape');
    for (const c of children) if (c !== sim) c.kill('SIGTERM');
    host(dir, '--wait', '1', 'kvp', 'get', 'guest', 'Color');
    sim.kill('SIGTERM');
  }
  console.log('\nDemo done: exit 0 = host got success, 1 = host got a failure status, 2 = no daemon/timeout.');
} catch (e) {
  console.error(`demo: ${e.message}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
