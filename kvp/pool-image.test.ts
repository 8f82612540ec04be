/** The in-memory pool against a plain array model, under random operations (fast-check). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRecord, keyId, PoolImage, type Slot } from './pool-image.js';

type ModelSlot = { key: string; value: string } | null; // null: unusable record

const slot = (m: ModelSlot): Slot => (m === null ? { invalid: 'key field has no NUL' } : { key: Buffer.from(m.key), value: Buffer.from(m.value), id: keyId(Buffer.from(m.key)) });

const op = fc.oneof(
  fc.record({ t: fc.constant('push' as const), key: fc.constantFrom('a', 'b', 'c', 'd'), value: fc.string({ maxLength: 3 }) }),
  fc.record({ t: fc.constant('bad' as const) }),
  fc.record({ t: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ t: fc.constant('set' as const), key: fc.constantFrom('a', 'b', 'c', 'd'), value: fc.string({ maxLength: 3 }) }),
);

describe('PoolImage', () => {
  it('first/at/records/count match a plain array where delete moves the last slot into the hole', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const img = new PoolImage();
        const model: ModelSlot[] = [];
        const first = (k: string) => model.findIndex((m) => m !== null && m.key === k);
        for (const o of ops) {
          if (o.t === 'push') {
            model.push({ key: o.key, value: o.value });
            img.push(slot(model.at(-1)!));
          } else if (o.t === 'bad') {
            model.push(null);
            img.push(slot(null));
          } else if (o.t === 'set') {
            const i = first(o.key);
            if (i >= 0) {
              model[i] = { key: o.key, value: o.value };
              img.setValue(i, Buffer.from(o.value));
            }
          } else if (model.length > 0) {
            const i = o.at % model.length;
            const last = model.pop()!;
            if (i < model.length) model[i] = last;
            img.remove(i);
          }
          for (const k of ['a', 'b', 'c', 'd']) expect(img.first(Buffer.from(k)) ?? -1).toBe(first(k));
          const usable = model.filter((m): m is { key: string; value: string } => m !== null);
          expect(img.count).toBe(usable.length);
          expect(img.records().map((r) => `${r.key}=${r.value}`)).toEqual(usable.map((m) => `${m.key}=${m.value}`));
          usable.forEach((m, n) => expect(`${img.at(n)!.key}=${img.at(n)!.value}`).toBe(`${m.key}=${m.value}`));
          expect(img.at(usable.length)).toBeUndefined();
          expect(img.slots.map((s) => (isRecord(s) ? s.key.toString() : null))).toEqual(model.map((m) => m?.key ?? null));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keys are compared as bytes, case-sensitive', () => {
    const img = new PoolImage();
    img.push(slot({ key: 'Key', value: '1' }));
    img.push({ key: Buffer.from([0xff, 0x00]), value: Buffer.alloc(0), id: keyId(Buffer.from([0xff, 0x00])) });
    expect(img.first(Buffer.from('key'))).toBeUndefined();
    expect(img.first(Buffer.from('Key'))).toBe(0);
    expect(img.first(Buffer.from([0xff, 0x00]))).toBe(1);
    expect(img.first(Buffer.from([0xff]))).toBeUndefined();
  });
});
