/**
 * Hostile host messages for the reliability suite: valid daemon-side
 * messages of every operation (the seeds), a mutator that damages them the
 * ways a buggy or malicious host (or kernel) could, and fast-check
 * arbitraries that build messages field by field from scratch. Both the
 * handler-level and the end-to-end hostile-host tests draw from here.
 */
import fc from 'fast-check';
import { HV_VSS_CHECK, HV_VSS_FREEZE, HV_VSS_THAW, KVP_OP, VSS_OP_FREEZE, VSS_OP_HOT_BACKUP, VSS_OP_THAW, type Flavor } from '../../common/wire/constants.js';
import { encodeKvp } from '../../common/wire/kvp.js';
import { kvpMsgSize, vssMsgSize } from '../../common/wire/structs.js';
import { encodeFreebsdVss, encodeLinuxVss } from '../../common/wire/vss.js';

/** A small fast deterministic PRNG (mulberry32), so a failing case can be replayed from its seed. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]! };
}
export type Rng = ReturnType<typeof rng>;

const b = (s: string) => Buffer.from(s, 'utf8');
const sz = (s: string) => Buffer.byteLength(s) + 1;

/** Strings a hostile host likes: shell metacharacters, paths, newlines, control bytes, long and non-ASCII text. */
export const NASTY_TEXT: readonly string[] = [
  '$(touch /tmp/hvguest-pwned)',
  '`id`',
  'a;b|c&d>e<f',
  '../../../../etc/passwd',
  '/etc/shadow',
  'line1\nline2=evil',
  '\r\n[ipv4]\nmethod=auto',
  "'\"\\",
  '%s%n%x',
  'x'.repeat(511),
  'é'.repeat(255),
  '\u{1F600}'.repeat(100),
  '\u0001\u0002\u007f',
  'GUID-{00000000-0000-0000-0000-000000000000}',
  '10.0.0.1;10.0.0.2;;;',
  '::ffff:10.0.0.1',
  '',
];

/** Valid daemon-side KVP requests of every operation (what the kernel hands the daemon). */
export function kvpSeeds(flavor: Flavor): Buffer[] {
  const ex = (key: string, value = '') => ({ data: { value_type: 1, key_size: sz(key), value_size: value ? sz(value) : 0, key: b(key), value: b(value) } });
  const ip = (adapter: string) => ({
    adapter_id: b(adapter),
    addr_family: 1,
    dhcp_enabled: 0,
    ip_addr: b('10.0.0.5'),
    sub_net: b('255.255.255.0'),
    gate_way: b('10.0.0.1'),
    dns_addr: b('10.0.0.2'),
  });
  return [
    encodeKvp(flavor, { operation: KVP_OP.SET, pool: 0 }, 'kvp_set', ex('Color', 'Blue')),
    encodeKvp(flavor, { operation: KVP_OP.SET, pool: 1 }, 'kvp_set', ex('CLOUD_INIT|1|start|x', '{"a":1}')),
    encodeKvp(flavor, { operation: KVP_OP.GET, pool: 0 }, 'kvp_get', ex('Color')),
    encodeKvp(flavor, { operation: KVP_OP.GET, pool: 2 }, 'kvp_get', ex('OSName')),
    encodeKvp(flavor, { operation: KVP_OP.DELETE, pool: 0 }, 'kvp_delete', { key_size: sz('Color'), key: b('Color') }),
    encodeKvp(flavor, { operation: KVP_OP.ENUMERATE, pool: 0 }, 'kvp_enum_data', { index: 0, ...ex('') }),
    encodeKvp(flavor, { operation: KVP_OP.ENUMERATE, pool: 2 }, 'kvp_enum_data', { index: 3, ...ex('') }),
    encodeKvp(flavor, { operation: KVP_OP.GET_IP_INFO, pool: 0 }, 'kvp_ip_val', ip('00:15:5D:00:00:01')),
    encodeKvp(flavor, { operation: KVP_OP.SET_IP_INFO, pool: 0 }, 'kvp_ip_val', ip(flavor === 'freebsd' ? 'hn0' : '{4f0c5a2e-1b2c-4d3e-8f90-a1b2c3d4e5f6}')),
  ];
}

/** Valid daemon-side VSS requests (Linux hv_vss_msg, FreeBSD hv_vss_opt_msg). */
export function vssSeeds(flavor: Flavor): Buffer[] {
  if (flavor === 'linux') return [VSS_OP_HOT_BACKUP, VSS_OP_FREEZE, VSS_OP_THAW].map((operation) => encodeLinuxVss({ operation }));
  return [HV_VSS_CHECK, HV_VSS_FREEZE, HV_VSS_THAW].map((opt, i) => encodeFreebsdVss({ opt, msgid: BigInt(1000 + i) }));
}

/** Offsets inside a KVP message where damage matters most: header, sizes, starts and ends of string fields. */
const KVP_HOT = [0, 1, 2, 3, 4, 8, 12, 16, 527, 528, 532, 1039, 2575, 2576, 2580, 4, 259, 260, 261, 262, 2309, 2310, 4357, 4358, 5381, 5382, 7429];

/**
 * Damage a copy of `seed` with 1-6 random mutations: byte and bit flips,
 * header op/pool values, huge or zero size words, a string field filled
 * to its end without a NUL, invalid UTF-8, nasty text, and (rarely) a
 * wrong total length. The result may happen to be valid; that is fine.
 */
export function mutate(seed: Buffer, r: Rng, opts: { allowResize?: boolean; hot?: readonly number[] } = {}): Buffer {
  let m = Buffer.from(seed);
  const hot = opts.hot ?? KVP_HOT;
  const n = 1 + r.int(6);
  for (let i = 0; i < n; i++) {
    if (m.length === 0) break;
    const h = hot.filter((o) => o < m.length);
    const at = r.next() < 0.5 && h.length ? r.pick(h) : r.int(m.length);
    switch (r.int(10)) {
      case 0:
        m[at] = r.int(256);
        break;
      case 1:
        m[at] = m[at]! ^ (1 << r.int(8));
        break;
      case 2:
        m[0] = r.pick([0, 1, 2, 3, 4, 5, 6, 7, 100, 128, 129, 255, r.int(256)]);
        break;
      case 3:
        if (m.length > 1) m[1] = r.pick([0, 1, 2, 3, 4, 5, 6, 255, r.int(256)]);
        break;
      case 4:
        if (at + 4 <= m.length) m.writeUInt32LE(r.pick([0, 1, 511, 512, 513, 2047, 2048, 2049, 0x7fffffff, 0xffffffff, r.int(2 ** 32)]), at - (at % 4));
        break;
      case 5: {
        // A string field with no terminator up to (and past) its end.
        const len = 1 + r.int(Math.min(2100, m.length - at));
        m.fill(r.pick([0x41, 0xff, 0x80, 0x2f]), at, at + len);
        break;
      }
      case 6: {
        const bad = r.pick([Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xff, 0xfe])]);
        bad.copy(m, at, 0, Math.min(bad.length, m.length - at));
        break;
      }
      case 7: {
        const t = b(r.pick(NASTY_TEXT) + '\0');
        t.copy(m, at, 0, Math.min(t.length, m.length - at));
        break;
      }
      case 8:
        m.fill(r.pick([0, 0xff]), at, Math.min(m.length, at + 1 + r.int(64)));
        break;
      default:
        if (opts.allowResize && r.next() < 0.3) {
          const len = r.pick([0, 1, 3, 4, 11, 13, 63, 65, m.length - 1, m.length + 1, m.length * 2, r.int(m.length + 64)]);
          const out = Buffer.alloc(len);
          m.copy(out, 0, 0, Math.min(len, m.length));
          m = out;
        } else m[at] = 0;
    }
  }
  return m;
}

/** fast-check: a whole KVP message built field by field (any op, pool, sizes, strings with or without NUL). */
export function kvpArbitrary(flavor: Flavor): fc.Arbitrary<Buffer> {
  const size = kvpMsgSize(flavor);
  const text = fc.oneof(
    fc.constantFrom(...NASTY_TEXT).map((s) => b(s)),
    fc.string({ maxLength: 40 }).map((s) => b(s)),
    fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
  );
  return fc
    .record({
      op: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 255 })),
      pool: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 255 })),
      pad: fc.integer({ min: 0, max: 0xffff }),
      words: fc.array(fc.oneof(fc.integer({ min: 0, max: 2100 }), fc.nat()), { minLength: 3, maxLength: 3 }),
      a: text,
      c: text,
      nul: fc.boolean(),
    })
    .map(({ op, pool, pad, words, a, c, nul }) => {
      const m = Buffer.alloc(size, nul ? 0 : 0x41);
      m.writeUInt8(op, 0);
      m.writeUInt8(pool, 1);
      m.writeUInt16LE(pad, 2);
      words.forEach((w, i) => m.writeUInt32LE(w >>> 0, 4 + i * 4));
      // Lay the strings at the exchange key/value offsets and at the IP-info field offsets alike.
      a.copy(m, 16, 0, Math.min(a.length, 512));
      a.copy(m, 4, 0, Math.min(a.length, 256));
      c.copy(m, 528, 0, Math.min(c.length, 2048));
      c.copy(m, 262, 0, Math.min(c.length, 2048));
      return m;
    });
}

/** fast-check: a VSS message of the flavor's size with any op and any other bytes. */
export function vssArbitrary(flavor: Flavor): fc.Arbitrary<Buffer> {
  const size = vssMsgSize(flavor);
  return fc.record({ op: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.nat()), rest: fc.uint8Array({ minLength: size, maxLength: size }) }).map(({ op, rest }) => {
    const m = Buffer.from(rest);
    if (flavor === 'linux') m.writeUInt8(op & 0xff, 0);
    else m.writeUInt32LE(op >>> 0, 0);
    return m;
  });
}
