/**
 * The comparison the differential tests rely on, on replies built by hand:
 * if it missed differences, the differential tests would pass for the wrong
 * reason. No daemon, no root needed.
 */
import { describe, expect, it } from 'vitest';
import { HV_E_FAIL, HV_S_CONT, HV_S_OK, KVP_OP } from '../../../common/wire/constants.js';
import { ENUM } from '../../../sim/kvp-fields.js';
import { compareSession, compareStep, explain, type StepResult } from './compare.js';
import { handMade, kernelRequest, type Step } from './kvp-session.js';

/** A reply to `req` as a daemon writes it: the request with a status and, for records, key and value at the ENUMERATE offsets. */
function reply(req: Buffer, status: number, kv?: { key: string; value: string; sizes?: boolean }): Buffer {
  const b = Buffer.from(req);
  b.writeUInt32LE(status >>> 0, 0);
  if (kv) {
    b.write(kv.key, ENUM.key.offset, 'utf8');
    b.write(kv.value, ENUM.value.offset, 'utf8');
    if (kv.sizes) {
      b.writeUInt32LE(Buffer.byteLength(kv.key) + 1, ENUM.keySize.offset);
      b.writeUInt32LE(Buffer.byteLength(kv.value) + 1, ENUM.valueSize.offset);
    }
  }
  return b;
}
const answered = (label: string, r: Buffer, status = HV_S_OK): StepResult => ({ label, outcome: 'answered', status, reply: r });
const enumStep = (index: number, walk?: string): Step => {
  const host = { op: 'enum' as const, pool: 0, index };
  return { label: `enum #${index}`, request: kernelRequest(host), host, ...(walk ? { walk } : {}) };
};

describe('compareStep', () => {
  const get: Step = { label: 'get', request: kernelRequest({ op: 'get', pool: 0, key: 'K' }), host: { op: 'get', pool: 0, key: 'K' } };

  it('finds nothing in identical replies', () => {
    const r = answered('get', reply(get.request, HV_S_OK));
    expect(compareStep(get, r, answered('get', Buffer.from(r.reply!)))).toEqual([]);
  });

  it('reports a value the host sees as a host difference and the bytes behind it', () => {
    const c = answered('get', reply(get.request, HV_S_OK));
    const o = answered('get', reply(get.request, HV_S_OK, { key: 'K', value: 'v' }));
    const d = compareStep(get, c, o);
    expect(d.map((x) => x.kind)).toContain('host');
    expect(d).toContainEqual(expect.objectContaining({ kind: 'bytes', detail: expect.stringMatching(/^enum\.value: 1 byte/) }));
  });

  it('marks bytes the kernel ignores (sizes) as hidden when the host view is the same', () => {
    const s = enumStep(0);
    const c = answered('e', reply(s.request, HV_S_OK, { key: 'K', value: 'v' }));
    const o = answered('e', reply(s.request, HV_S_OK, { key: 'K', value: 'v', sizes: true }));
    const d = compareStep(s, c, o);
    expect(d.map((x) => x.kind)).toEqual(['hidden', 'hidden']);
    expect(d.map((x) => x.detail.split(':')[0])).toEqual(['enum.key_size', 'enum.value_size']);
  });

  it('reports status and outcome differences, and a daemon that died', () => {
    const s: Step = { label: 'raw', request: handMade({ op: KVP_OP.GET, pool: 9, key: Buffer.from('K') }) };
    expect(compareStep(s, answered('raw', reply(s.request, HV_S_OK)), answered('raw', reply(s.request, HV_E_FAIL), HV_E_FAIL))).toEqual([
      { label: 'raw', kind: 'status', detail: 'C HV_S_OK, ours HV_E_FAIL' },
    ]);
    const died: StepResult = { label: 'raw', outcome: 'daemon-closed', status: HV_E_FAIL, died: 'signal SIGSEGV' };
    expect(compareStep(s, died, answered('raw', reply(s.request, HV_E_FAIL), HV_E_FAIL)).map((x) => x.kind)).toEqual(['outcome', 'outcome']);
  });
});

describe('compareSession, walks', () => {
  const walk = [0, 1, 2].map((i) => enumStep(i, 'w'));
  const results = (keys: string[]) => walk.map((s, i) => (keys[i] ? answered(s.label, reply(s.request, HV_S_OK, { key: keys[i]!, value: `v-${keys[i]}` })) : answered(s.label, reply(s.request, HV_S_CONT), HV_S_CONT)));

  it('matches records by key: another order is one "order" difference, not a difference per record', () => {
    expect(compareSession(walk, results(['A', 'B']), results(['B', 'A']))).toEqual([{ label: 'w', kind: 'order', detail: 'same records, different order' }]);
  });

  it('reports records only one side has, and compares matched records', () => {
    const c = results(['A', 'B']);
    const o = results(['A', 'C']);
    const d = compareSession(walk, c, o);
    expect(d).toContainEqual({ label: 'w', kind: 'records', detail: 'record only in C: "B"' });
    expect(d).toContainEqual({ label: 'w', kind: 'records', detail: 'record only in ours: "C"' });
    o[0] = answered('enum #0', reply(walk[0]!.request, HV_S_OK, { key: 'A', value: 'changed' }));
    expect(compareSession(walk, c, o)).toContainEqual(expect.objectContaining({ label: 'w key=A', kind: 'host' }));
  });
});

describe('explain', () => {
  it('splits explained from unexplained differences and names rules that explained nothing', () => {
    const diffs = [
      { label: 'get x', kind: 'host' as const, detail: '' },
      { label: 'set y', kind: 'status' as const, detail: '' },
    ];
    const r = explain(diffs, [
      { doc: 'a', label: /^get /, kinds: ['host'] },
      { doc: 'b', label: /^delete /, kinds: ['status'] },
    ]);
    expect([...r.explained.keys()]).toEqual(['a']);
    expect(r.unexplained).toEqual([diffs[1]]);
    expect(r.unused).toEqual(['b /^delete /']);
  });
});
