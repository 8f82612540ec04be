import { describe, expect, it } from 'vitest';
import { fitList, fits, fitText, fittingCount, GATEWAY_LIMIT, IP_LIST_LIMIT, renderList, VALUE_LIMIT } from './net-lists.js';

describe('renderList', () => {
  it('writes FreeBSD items with a ";" after each and Linux items joined by ";"', () => {
    expect(renderList(['10.0.0.5', 'fe80::1'], 'terminated')).toBe('10.0.0.5;fe80::1;');
    expect(renderList(['10.0.0.5', 'fe80::1'], 'joined')).toBe('10.0.0.5;fe80::1');
    expect(renderList([], 'terminated')).toBe('');
    expect(renderList([], 'joined')).toBe('');
  });
});

describe('fitList', () => {
  it('cuts after the last whole item, never inside one', () => {
    const items = ['aaaa', 'bbbb', 'cccc'];
    expect(fitList(items, 'joined', { bytes: 10, units: 100 })).toEqual({ text: 'aaaa;bbbb', dropped: 1 });
    // "aaaa;bbbb;" is exactly 10: fits; one more byte would not.
    expect(fitList(items, 'terminated', { bytes: 10, units: 100 })).toEqual({ text: 'aaaa;bbbb;', dropped: 1 });
    expect(fitList(items, 'terminated', { bytes: 9, units: 100 })).toEqual({ text: 'aaaa;', dropped: 2 });
  });

  it('applies the UTF-16 unit limit as well as the byte limit', () => {
    // "255.255.255.255;" is 16 units: 63 of them fit 1023 units, a 64th would make 1024.
    const items = Array.from({ length: 100 }, () => '255.255.255.255');
    const r = fitList(items, 'terminated', IP_LIST_LIMIT);
    expect(r.text.length).toBe(63 * 16);
    expect(r.dropped).toBe(37);
    expect(fitList(items, 'terminated', GATEWAY_LIMIT).text.length).toBe(31 * 16);
  });

  it('counts UTF-8 bytes of non-ASCII items', () => {
    // "é" is 2 bytes, 1 unit: 3 items of 2 bytes + 2 separators = 8 bytes.
    expect(fittingCount(['é', 'é', 'é', 'é'], 'joined', { bytes: 8, units: 100 })).toBe(3);
  });

  it('drops an item that is larger than the whole field, and everything after it', () => {
    expect(fitList(['x'.repeat(3000), 'y'], 'terminated', IP_LIST_LIMIT)).toEqual({ text: '', dropped: 2 });
  });
});

describe('fitText', () => {
  it('returns text that fits unchanged', () => {
    expect(fitText('Debian GNU/Linux', VALUE_LIMIT)).toBe('Debian GNU/Linux');
  });

  it('cuts at 1022 UTF-16 units for ASCII and at 2047 bytes for multi-byte text', () => {
    expect(fitText('a'.repeat(5000), VALUE_LIMIT)).toHaveLength(1022);
    // "€" is 3 bytes, 1 unit: 1022 of them would be 3066 bytes; 682 fit in 2047.
    const euros = fitText('€'.repeat(1500), VALUE_LIMIT);
    expect(euros).toBe('€'.repeat(682));
    expect(fits(euros, VALUE_LIMIT)).toBe(true);
  });

  it('never splits a surrogate pair', () => {
    const t = fitText('a' + '😀'.repeat(600), VALUE_LIMIT);
    expect(t.length % 2).toBe(1);
    expect(t.endsWith('😀')).toBe(true);
    expect(Buffer.byteLength(t)).toBeLessThanOrEqual(2047);
  });
});
