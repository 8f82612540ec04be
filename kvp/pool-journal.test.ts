/** The crash journal's encoding: round trips, torn and foreign bytes, and the file's header and generation. */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeRecord } from './pool-format.js';
import { nodePoolFs } from './pool-fs.js';
import { decodeEntries, encodeEntry, Journal, JOURNAL_HEADER_SIZE, type JournalEntry } from './pool-journal.js';

const rec = (k: string, v: string) => encodeRecord(Buffer.from(k), Buffer.from(v));

const ENTRIES: JournalEntry[] = [
  { op: 'set', index: 3, size: 5 * 2560, pre: rec('a', '1'), post: rec('a', '2') },
  { op: 'append', size: 2560, post: rec('b', '1') },
  { op: 'delete', index: 0, size: 2 * 2560, pre: rec('a', '1'), moved: rec('b', '1') },
  { op: 'delete', index: 1, size: 2 * 2560, pre: rec('b', '1') },
  { op: 'shift', size: 2 * 2560, gap: 1000, data: Buffer.concat([rec('z', '9'), rec('zz', '99')]) },
];

describe('journal entries', () => {
  it('round-trip, one after another', () => {
    const body = Buffer.concat(ENTRIES.map(encodeEntry));
    const { entries, end } = decodeEntries(body);
    expect(entries).toEqual(ENTRIES);
    expect(end).toBe(body.length);
  });

  it('a torn last entry leaves the ones before it valid, at every cut', () => {
    const first = encodeEntry(ENTRIES[0]!);
    const second = encodeEntry(ENTRIES[2]!);
    for (let cut = 0; cut < second.length; cut += 97) {
      const { entries, end } = decodeEntries(Buffer.concat([first, second.subarray(0, cut)]));
      expect(entries).toEqual([ENTRIES[0]]);
      expect(end).toBe(first.length);
    }
  });

  it('a flipped bit anywhere invalidates the entry', () => {
    const e = encodeEntry(ENTRIES[1]!);
    for (const at of [0, 5, 12, 100, 2000, e.length - 1]) {
      const bad = Buffer.from(e);
      bad[at]! ^= 0x10;
      expect(decodeEntries(bad).entries).toEqual([]);
    }
  });

  it('garbage is no entry', () => {
    expect(decodeEntries(Buffer.alloc(0)).entries).toEqual([]);
    expect(decodeEntries(Buffer.alloc(5000, 0xff)).entries).toEqual([]);
  });
});

describe('journal file', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('starts with a header, bumps the generation per write, keeps entries until cleared', () => {
    dir = mkdtempSync(join(tmpdir(), 'hvguest-journal-'));
    const j = new Journal(nodePoolFs, join(dir, 'j'), false);
    expect(j.look()).toEqual({ gen: 0n });
    expect(statSync(join(dir, 'j')).size).toBe(JOURNAL_HEADER_SIZE);
    expect(j.write(ENTRIES[0]!)).toBe(1n);
    expect(j.look()).toEqual({ gen: 1n, pending: ENTRIES[0] });
    // A second (chained) entry goes after the first; the last one is the pending one.
    expect(j.write(ENTRIES[2]!)).toBe(2n);
    expect(j.look().pending).toEqual(ENTRIES[2]);
    j.clear();
    expect(j.look()).toEqual({ gen: 2n });
    expect(j.generation()).toBe(2n);
    j.close();
  });

  it('writes after a torn entry overwrite it instead of hiding behind it', () => {
    dir = mkdtempSync(join(tmpdir(), 'hvguest-journal-'));
    const path = join(dir, 'j');
    const j = new Journal(nodePoolFs, path, false);
    j.look();
    writeFileSync(path, Buffer.concat([readFileSync(path), encodeEntry(ENTRIES[1]!).subarray(0, 100)]));
    expect(j.look().pending).toBeUndefined();
    j.write(ENTRIES[3]!);
    expect(j.look().pending).toEqual(ENTRIES[3]);
    j.close();
  });

  it('a file that is not a journal is reset under the lock, and read-only access never writes', () => {
    dir = mkdtempSync(join(tmpdir(), 'hvguest-journal-'));
    const path = join(dir, 'j');
    writeFileSync(path, 'not a journal at all, but long enough to look like one if nobody checked the magic..........');
    const ro = new Journal(nodePoolFs, path, true);
    expect(ro.look()).toEqual({ gen: 0n });
    expect(readFileSync(path, 'utf8')).toMatch(/^not a journal/);
    expect(() => ro.clear()).toThrow(/read-only/);
    ro.close();
    const j = new Journal(nodePoolFs, path, false);
    expect(j.look()).toEqual({ gen: 0n });
    expect(readFileSync(path).subarray(0, 8).toString()).toBe('HVGJRNL1');
    j.close();
    // Read-only and missing: no file is created.
    const missing = new Journal(nodePoolFs, join(dir, 'none'), true);
    expect(missing.look()).toEqual({ gen: 0n });
    expect(() => statSync(join(dir, 'none'))).toThrow();
  });
});
