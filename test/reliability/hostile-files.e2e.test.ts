/**
 * Item 2: hostile pool files under a running hv_kvp_daemon (real process,
 * simulator, both flavors): truncated mid-record, not a multiple of the
 * record size, all 0xff, a 1 GiB sparse file, a symlink to a file
 * elsewhere, a file replaced while the daemon has it open, and pool names
 * that cannot be read as files (a directory, a FIFO). The daemon must
 * start, serve every valid record, log what it skipped, never write
 * through a symlink, and never lose a valid record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLAVORS, HV_E_FAIL, HV_S_CONT, HV_S_OK, type Flavor } from '../../common/wire/constants.js';
import { encodeRecord, poolFileName, POOL_RECORD_SIZE as R } from '../../kvp/pool-format.js';
import { stop, type Proc } from '../lib/procs.js';
import { report } from './lib.js';
import { createRig, hostGet, hostSet, type Rig } from './rig.js';

const rec = (k: string, v: string) => encodeRecord(Buffer.from(k), Buffer.from(v));
const records = (n: number, tag: string) => Buffer.concat(Array.from({ length: n }, (_, i) => rec(`${tag}${i}`, `value of ${tag}${i}`)));

/** Every record ENUMERATE returns for a pool, as key=value. */
async function enumerate(rig: Rig, pool: number): Promise<string[]> {
  const out: string[] = [];
  for (let index = 0; ; index++) {
    const r = await rig.host({ cmd: 'kvp', req: { op: 'enum', pool, index }, opts: { waitForDaemonMs: 5000 } });
    if (r.status !== HV_S_OK) {
      expect(r.status).toBe(HV_S_CONT);
      return out;
    }
    out.push(`${r.key}=${r.value}`);
  }
}

describe.each(FLAVORS)('hostile pool files, %s', (flavor: Flavor) => {
  let rig: Rig;
  let d: Proc;
  const figures: Record<string, number> = {};
  const pool = (n: number) => join(rig.poolDir, poolFileName(n));
  let elsewhere: string;
  let elsewhereBytes: Buffer;

  beforeAll(async () => {
    rig = await createRig(flavor);
    mkdirSync(rig.poolDir, { mode: 0o755 });
    // 0: three records, then a fourth cut in the middle of its value.
    writeFileSync(pool(0), Buffer.concat([records(3, 'trunc'), rec('trunc3', 'x'.repeat(900)).subarray(0, 512 + 400)]));
    // 1: a symlink to a file outside the pool directory, holding a valid record.
    elsewhere = join(rig.dir, 'elsewhere.dat');
    elsewhereBytes = records(1, 'outside');
    writeFileSync(elsewhere, elsewhereBytes);
    symlinkSync(elsewhere, pool(1));
    // 3: two records of 0xff around a valid one, then 7 stray bytes (not a multiple of 2560).
    writeFileSync(pool(3), Buffer.concat([Buffer.alloc(R, 0xff), rec('good3', 'kept'), Buffer.alloc(R, 0xff), Buffer.alloc(7, 0x41)]));
    // 4: 1 GiB sparse (all zero: every record has an empty key), with one valid record at the very end.
    writeFileSync(pool(4), '');
    truncateSync(pool(4), 1 << 30);
    execFileSync('dd', [`of=${pool(4)}`, 'bs=2560', `seek=${Math.floor((1 << 30) / R) - 1}`, 'conv=notrunc', 'status=none'].map(String), { input: rec('last4', 'at the end') });
    // 2 is the Auto pool (intrinsics, no file of ours): the daemon must start even when its name is a directory.
    mkdirSync(pool(2));
    const t0 = Date.now();
    d = await rig.kvp();
    figures.startMs = Date.now() - t0;
  }, 120_000);
  afterAll(async () => {
    await rig?.close();
  });

  it('starts, and serves exactly the valid records of each damaged pool', async () => {
    expect(await enumerate(rig, 0)).toEqual(['trunc0=value of trunc0', 'trunc1=value of trunc1', 'trunc2=value of trunc2']);
    expect(await enumerate(rig, 3)).toEqual(['good3=kept']);
    const t0 = Date.now();
    expect((await hostGet(rig, 4, 'last4')).value).toBe('at the end');
    figures.sparseGetMs = Date.now() - t0;
    // What was skipped is logged, naming the file.
    expect(d.stderr()).toMatch(/trailing byte/);
    expect(d.stderr()).toMatch(/record\(s\) skipped/);
  });

  it('a SET moves a torn tail aside (kept, not lost) and keeps every valid record', async () => {
    expect((await hostSet(rig, 0, 'new0', 'after the tear')).status).toBe(HV_S_OK);
    expect(await enumerate(rig, 0)).toEqual(['trunc0=value of trunc0', 'trunc1=value of trunc1', 'trunc2=value of trunc2', 'new0=after the tear']);
    expect(readFileSync(pool(0)).length % R).toBe(0);
    const torn = readdirSync(rig.poolDir).filter((f) => f.startsWith('.hvguest_torn_0_'));
    expect(torn.length).toBe(1);
    expect(readFileSync(join(rig.poolDir, torn[0]!)).length).toBe(912);
    // 0xff records stay on disk byte for byte; the new record goes after the stray bytes' removal.
    expect((await hostSet(rig, 3, 'new3', 'v')).status).toBe(HV_S_OK);
    const p3 = readFileSync(pool(3));
    expect(p3.subarray(0, R).equals(Buffer.alloc(R, 0xff))).toBe(true);
    expect(p3.subarray(2 * R, 3 * R).equals(Buffer.alloc(R, 0xff))).toBe(true);
    expect(await enumerate(rig, 3)).toEqual(['good3=kept', 'new3=v']);
  });

  it('never writes through a symlinked pool file: the request fails, the target is untouched, the link stays', async () => {
    const r = await hostSet(rig, 1, 'through', 'the link');
    expect(r.status).toBe(HV_E_FAIL);
    expect(readFileSync(elsewhere).equals(elsewhereBytes)).toBe(true);
    expect(lstatSync(pool(1)).isSymbolicLink()).toBe(true);
    expect(d.stderr()).toMatch(/symbolic link|ELOOP/);
    // The other pools still work.
    expect((await hostSet(rig, 0, 'still', 'fine')).status).toBe(HV_S_OK);
  });

  it('a pool file replaced while open is re-read; records of the new file are served', async () => {
    const next = join(rig.poolDir, 'replacement.tmp');
    writeFileSync(next, records(2, 'repl'));
    renameSync(next, pool(0));
    expect(await enumerate(rig, 0)).toEqual(['repl0=value of repl0', 'repl1=value of repl1']);
    expect((await hostSet(rig, 0, 'repl2', 'v')).status).toBe(HV_S_OK);
    expect(readFileSync(pool(0)).length).toBe(3 * R);
  });

  it('a pool name that is a directory or a FIFO fails its requests and nothing else', async () => {
    // Pool 4 is swapped for a FIFO while the daemon runs; the open must not block and reads must not hang.
    renameSync(pool(4), join(rig.dir, 'sparse.moved'));
    execFileSync('mkfifo', [pool(4)]);
    const t0 = Date.now();
    expect((await hostSet(rig, 4, 'k', 'v')).status).toBe(HV_E_FAIL);
    figures.fifoMs = Date.now() - t0;
    expect((await hostGet(rig, 0, 'repl2')).status).toBe(HV_S_OK);
    expect(d.child.exitCode).toBe(null);
    expect(existsSync(join(rig.dir, 'sparse.moved'))).toBe(true);
    await stop(d);
    report({
      item: 2,
      test: `hostile pool files, ${flavor}`,
      load: 'daemon start on 5 damaged pool files, then GET/SET/ENUMERATE on each',
      faults: 'torn last record, 7 stray bytes, 0xff records, 1 GiB sparse file, symlink to another file, file replaced by rename while open, directory and FIFO in place of a pool file',
      result: `starts in ${figures.startMs} ms; every valid record served and kept; torn tail moved to .hvguest_torn_* (not lost); 0xff records kept byte for byte and skipped with a log line; symlink refused (HV_E_FAIL, target untouched); replaced file re-read; directory/FIFO pools fail only their own requests (${figures.fifoMs} ms); GET at the end of the 1 GiB file ${figures.sparseGetMs} ms`,
      figures,
    });
  });
});
