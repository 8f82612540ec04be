/**
 * Differential test, KVP: Debian's C hv_kvp_daemon (package hyperv-daemons)
 * and ours, each started as a distribution starts it (`-n`, no paths) in
 * its own guest namespace (lib/guest-ns.ts) on the simulator's FUSE node,
 * answer the same scripted session (lib/kvp-session.ts). Every reply is
 * compared byte for byte; every difference must be one that
 * docs/compatibility.md lists as deliberate (DELIBERATE below names the
 * section), and every listed difference must still occur. Then the pool
 * files cross over both ways: each daemon reads what the other wrote.
 *
 * Nothing needs normalizing between the runs: host name, FQDN, addresses,
 * DNS/DHCP answers and IP-injection targets are fixed by the namespaces and
 * helper stubs; OS name and versions come from the same machine at the
 * same time. Needs root, /dev/fuse, `hvsim serve --fuse` and
 * /usr/sbin/hv_kvp_daemon; skipped, with the reason in its name, otherwise.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POOL_RECORD_SIZE, decodeRecord, poolFileName } from '../../kvp/pool-format.js';
import { ROOT, bin, killAll, run } from '../lib/procs.js';
import { compareSession, explain, hostView, type Deliberate, type Difference } from './lib/compare.js';
import { fuseUnavailable } from '../../sim/fuse-server.js';
import { C_VSS_DAEMON, removeFuseMountsUnder, runKvpDaemon, type KvpRun } from './lib/daemon-run.js';
import { C_KVP_DAEMON, GUEST, cKvpDaemonUnavailable } from './lib/guest-ns.js';
import { kvpSession, readBackSession, type Step } from './lib/kvp-session.js';

const reason = cKvpDaemonUnavailable() ?? fuseUnavailable();

const C_ARGV = [C_KVP_DAEMON, '-n'];
const OURS_ARGV = [bin('hv_kvp_daemon'), '-n'];

/**
 * The deliberate differences, each pointing at its section (an anchor) of
 * docs/compatibility.md. A difference no rule explains fails the test; so
 * does a rule that explains nothing any more.
 */
const GET_STEP = /(^|: |\bbulk |\breadback )get |after (short|long) message|pad bytes set/;
const DELIBERATE: Deliberate[] = [
  // Ours answers GET with the stored value where the Linux kernel reads it; the C daemon sends it empty.
  { doc: 'kvp-get-value', label: GET_STEP, kinds: ['host', 'bytes'] },
  // Bytes that never reach the host: sizes, value_type, index, bytes after terminators, SET_IP_INFO echoes.
  { doc: 'kvp-hidden-bytes', label: /./, kinds: ['hidden'] },
  { doc: 'kvp-delete-order', label: /walk of pool 0$/, kinds: ['order'] },
  { doc: 'kvp-auto-pool', label: /^(set|get|delete) pool 2 \(Auto\)$/, kinds: ['status'] },
  { doc: 'kvp-empty-key', label: /^edge: (set|get|delete) empty key$/, kinds: ['status'] },
  { doc: 'kvp-no-terminator', label: /^edge: (set|delete) (key|value) without terminator$/, kinds: ['status'] },
  { doc: 'kvp-no-terminator', label: /^edge: (no terminator|after deletes) walk of pool 4$/, kinds: ['records'], detail: /only in C: "(NoNul|k+)"/ },
  { doc: 'kvp-key-size', label: /^edge: (get|set|delete) key_size (0|larger than the string)$/, kinds: ['host', 'bytes', 'outcome', 'status'] },
  { doc: 'kvp-key-size', label: /^edge: .* walk of pool 4( key=First)?$/, kinds: ['host', 'bytes', 'records'], detail: /zero|ZeroSize|^enum\./ },
  { doc: 'kvp-unknown-op', label: /^unknown op \d+$/, kinds: ['status'] },
  { doc: 'kvp-pool-range', label: /^(get|set|enum|delete) pool (5|6|255)$/, kinds: ['outcome'] },
  { doc: 'kvp-short-read', label: /^short message \(100 bytes\)$/, kinds: ['outcome'] },
  { doc: 'kvp-mac-case', label: /^ipinfo lower-case MAC$/, kinds: ['status'] },
  { doc: 'kvp-guid-case', label: /^setip upper-case GUID$/, kinds: ['status'] },
];

const COMPAT = readFileSync(join(ROOT, 'docs/compatibility.md'), 'utf8');

/** key -> value of every record of every pool file in `dir` (fields up to their NUL), in file order. */
function poolRecords(dir: string): Record<number, [string, string][]> {
  const out: Record<number, [string, string][]> = {};
  for (let pool = 0; pool < 5; pool++) {
    const p = join(dir, poolFileName(pool));
    const buf = existsSync(p) ? readFileSync(p) : Buffer.alloc(0);
    out[pool] = [];
    for (let off = 0; off + POOL_RECORD_SIZE <= buf.length; off += POOL_RECORD_SIZE) {
      const r = decodeRecord(buf, off);
      out[pool]!.push(r.ok ? [r.key.toString('latin1'), r.value.toString('latin1')] : [`<${r.reason}>`, '']);
    }
  }
  return out;
}

const sorted = (x: Record<number, [string, string][]>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, [...v].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))]));

function compareRuns(steps: Step[], c: KvpRun, o: KvpRun): Difference[] {
  expect(c.results).toHaveLength(steps.length);
  expect(o.results).toHaveLength(steps.length);
  return compareSession(steps, c.results, o.results);
}

function report(title: string, steps: Step[], diffs: Difference[]) {
  const { explained, unexplained } = explain(diffs, DELIBERATE);
  const labels = (ds: Difference[]) => new Set(ds.map((d) => d.label)).size;
  const visible = diffs.filter((d) => d.kind !== 'hidden');
  const lines = [`${title}: ${steps.length} requests compared; ${labels(visible)} requests/walks differ in what the host or the guest sees, ${labels(diffs)} including bytes the host never sees`];
  for (const [doc, ds] of explained) lines.push(`  deliberate #${doc}: ${ds.length} (${[...new Set(ds.map((d) => d.label))].slice(0, 3).join('; ')}${ds.length > 3 ? '; ...' : ''})`);
  for (const d of unexplained) lines.push(`  UNEXPLAINED ${d.label} [${d.kind}] ${d.detail}`);
  console.log(lines.join('\n'));
}

describe.skipIf(reason !== undefined)(`KVP: Debian's C hv_kvp_daemon and ours answer the same session${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let work = '';
  const steps = kvpSession();
  let c: KvpRun;
  let o: KvpRun;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'hvg-diff-kvp-'));
    c = await runKvpDaemon(join(work, 'c'), C_ARGV, steps);
    o = await runKvpDaemon(join(work, 'ours'), OURS_ARGV, steps);
  }, 120_000);

  afterAll(async () => {
    await killAll();
    if (work) {
      removeFuseMountsUnder(work);
      rmSync(work, { recursive: true, force: true });
    }
  }, 60_000);

  it('the session covers every op, every pool and at least 200 requests', () => {
    expect(steps.length).toBeGreaterThanOrEqual(200);
    const ops = new Set(steps.map((s) => s.request.readUInt8(0)));
    for (const op of [0, 1, 2, 3, 4, 5]) expect(ops).toContain(op);
    const pools = new Set(steps.filter((s) => s.request.readUInt8(0) <= 3).map((s) => s.request.readUInt8(1)));
    for (const pool of [0, 1, 2, 3, 4]) expect(pools).toContain(pool);
  });

  it('every difference in the replies is a deliberate one that docs/compatibility.md explains', () => {
    const diffs = compareRuns(steps, c, o);
    report('KVP session', steps, diffs);
    const { unexplained, unused } = explain(diffs, DELIBERATE);
    expect(unexplained).toEqual([]);
    expect(unused).toEqual([]);
  });

  it('the C daemon puts a GET value at offset 528, the Linux kernel reads 532: the host loses four characters (#kvp-get-value)', () => {
    const i = steps.findIndex((s) => s.label === 'edge: get with value_size 2048');
    expect(hostView(steps[i]!, c.results[i]!).value).toBe('t value');
    expect(hostView(steps[i]!, o.results[i]!).value).toBe('first value');
  });

  it("both report the guest's fixed facts, so agreement is not two equally wrong answers", () => {
    const view = (r: KvpRun, label: string) => {
      const i = steps.findIndex((s) => s.label === label);
      return hostView(steps[i]!, r.results[i]!);
    };
    for (const r of [c, o]) {
      expect(view(r, 'intrinsic enum pool 2 #0').value).toBe(GUEST.fqdn);
      expect(view(r, 'intrinsic enum pool 2 #1').value).toBe('3.1');
      expect(view(r, 'intrinsic enum pool 2 #2').value).toBe('192.0.2.10;198.51.100.7');
      // By interface index: the peer (created first by the kernel) before hv0.
      expect(view(r, 'intrinsic enum pool 2 #3').value).toBe('fe80::215:5dff:fed1:f002;2001:db8:d1f::10;fe80::215:5dff:fed1:f001');
      expect(view(r, 'ipinfo family 3').ip).toMatchObject({
        adapterId: GUEST.mac.toUpperCase(),
        dhcpEnabled: 1,
        ipAddr: '192.0.2.10;198.51.100.7;2001:db8:d1f::10;fe80::215:5dff:fed1:f001',
        subNet: '255.255.255.0;255.255.255.128;/64;/64',
        gateWay: '192.0.2.1;2001:db8:d1f::1;',
        dnsAddr: '192.0.2.53;2001:db8:d1f::53;',
      });
    }
  });

  it('every deliberate difference has its section in docs/compatibility.md', () => {
    for (const r of DELIBERATE) expect(COMPAT, r.doc).toMatch(new RegExp(`<a id="${r.doc}"></a>`));
  });

  it('both daemons leave the same records in the pool files (order aside, #kvp-delete-order; pool 4 as #kvp-key-size says)', () => {
    const mine = sorted(poolRecords(o.poolDir));
    const theirs = sorted(poolRecords(c.poolDir));
    for (const pool of [0, 1, 2, 3]) expect(mine[pool], `pool ${pool}`).toEqual(theirs[pool]);
    // The SET with key_size 0: the C daemon overwrote the first record's value, ours stored the key it named.
    const expected = theirs[4]!.map(([k, v]) => (k === 'First' ? [k, 'first value'] : [k, v]));
    expect(mine[4]).toEqual(sorted({ 4: [...expected, ['ZeroSize', 'zero']] as [string, string][] })[4]);
  });

  it('ours adds only its crash journals and the IP-injection keyfile to /var/lib/hyperv (#kvp-journal-files, #kvp-ip-injection)', () => {
    const extra = readdirSync(o.poolDir).filter((f) => !readdirSync(c.poolDir).includes(f));
    expect(extra.sort()).toEqual([...[0, 1, 2, 3, 4].map((n) => `.hvguest_journal_${n}`), 'hv0.nmconnection']);
  });

  it('IP injection hands hv_set_ifconfig the same ifcfg file (ours adds a header line and a NetworkManager keyfile, see #kvp-ip-injection)', () => {
    const calls = (r: KvpRun) => r.calls.filter((l) => l.startsWith('hv_set_ifconfig'));
    expect(calls(c).length).toBeGreaterThan(0);
    // One more in ours: the upper-case GUID finds the NIC (#kvp-guid-case); it comes last in the session.
    expect(calls(o)).toHaveLength(calls(c).length + 1);
    const body = (dir: string) => readFileSync(join(dir, 'ifcfg-hv0'), 'utf8').split('\n').filter((l) => !l.startsWith('#'));
    for (let n = 0; n < calls(c).length; n++) {
      expect(body(join(o.setIpDir, String(n)))).toEqual(body(join(c.setIpDir, String(n))));
      expect(existsSync(join(o.setIpDir, String(n), 'hv0.nmconnection'))).toBe(true);
    }
  });

  it('GET_IP_INFO runs the helpers once per request, the C daemon once per address (see #kvp-helper-calls)', () => {
    const n = (r: KvpRun, h: string) => r.calls.filter((l) => l.startsWith(h)).length;
    const requests = steps.filter((s) => s.host?.op === 'ipinfo').length;
    expect(n(o, 'hv_get_dns_info')).toBeLessThanOrEqual(requests);
    expect(n(c, 'hv_get_dns_info')).toBeGreaterThan(n(o, 'hv_get_dns_info'));
  });

  describe('pool files both ways', () => {
    /** Read-back steps for the records in `dir`: every pool walked past its end, a GET of every key. */
    const readBack = (dir: string) => {
      const recs = poolRecords(dir);
      const keys = Object.entries(recs).flatMap(([pool, rs]) => (Number(pool) === 2 ? [] : rs.filter(([k]) => !k.startsWith('<') && Buffer.byteLength(k) < 256).map(([key]) => ({ pool: Number(pool), key }))));
      return readBackSession(keys, [0, 1, 2, 3, 4].map((p) => recs[p]!.length));
    };
    /** The pool files of `dir` by name, as digests (other files, such as our journals, aside). */
    const snapshot = (dir: string) =>
      Object.fromEntries(
        readdirSync(dir)
          .filter((f) => f.startsWith('.kvp_pool_'))
          .map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]),
      );

    for (const [writer, reader] of [
      ['C', 'ours'],
      ['ours', 'C'],
    ] as const) {
      it(`a pool written by ${writer === 'C' ? "the C daemon" : 'ours'} reads the same through ${reader === 'C' ? 'the C daemon' : 'ours'} as through its writer`, async () => {
        const pool = writer === 'C' ? c.poolDir : o.poolDir;
        const rb = readBack(pool);
        expect(rb.length).toBeGreaterThan(50);
        const byC = await runKvpDaemon(join(work, `rb-${writer}-c`), C_ARGV, rb, pool);
        const byOurs = await runKvpDaemon(join(work, `rb-${writer}-ours`), OURS_ARGV, rb, pool);
        const diffs = compareRuns(rb, byC, byOurs);
        report(`read-back of the pool written by ${writer}`, rb, diffs);
        const { unexplained } = explain(diffs, DELIBERATE);
        expect(unexplained).toEqual([]);
        // Reading changes nothing on disk, for either daemon.
        expect(snapshot(byOurs.poolDir)).toEqual(snapshot(pool));
        expect(snapshot(byC.poolDir)).toEqual(snapshot(pool));
      }, 120_000);
    }
  });
});

const noBinaries = [C_KVP_DAEMON, C_VSS_DAEMON].find((p) => !existsSync(p));
describe.skipIf(noBinaries !== undefined)(`usage errors${noBinaries ? ` (skipped: ${noBinaries} missing, Debian package hyperv-daemons)` : ''}`, () => {
  it('exit 64 (EX_USAGE) in ours and 1 in the C daemons, both naming the problem (#usage-exit)', async () => {
    expect(COMPAT).toContain('<a id="usage-exit"></a>');
    for (const [c, ours] of [
      [C_KVP_DAEMON, bin('hv_kvp_daemon')],
      [C_VSS_DAEMON, bin('hv_vss_daemon')],
    ] as const) {
      const rc = await run(c, ['--no-such-option']);
      const ro = await run(ours, ['--no-such-option']);
      expect(rc.code, c).toBe(1);
      expect(ro.code, ours).toBe(64);
      expect(ro.stderr).toMatch(/no-such-option/);
    }
  });
});
