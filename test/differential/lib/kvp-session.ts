/**
 * The scripted host session both KVP daemons answer: daemon-level
 * requests (7432-byte Linux hv_kvp_msg) delivered raw through the
 * simulated driver, so each daemon reads exactly the same bytes and its
 * reply comes back exactly as it wrote it. Requests the kernel would build
 * are made by the simulator's own kernel conversion (host packet ->
 * linuxToDaemon); edge and malformed ones are built by hand at the offsets
 * of spec/wire.md.
 */
import { ICMSG_HDR, KVP_OP, REG_U32, REG_U64, type Flavor } from '../../../common/wire/constants.js';
import { kvpMsgSize } from '../../../common/wire/structs.js';
import type { KvpHostRequest } from '../../../sim/host-api.js';
import { kvpPacket } from '../../../sim/host-requests.js';
import { receiveBuffer } from '../../../sim/ic-reply.js';
import { linuxToDaemon } from '../../../sim/kvp-convert-linux.js';
import { DELETE, ENUM, ENUM_INDEX, GET, SET } from '../../../sim/kvp-fields.js';
import { GUEST } from './guest-ns.js';

const FLAVOR: Flavor = 'linux';
export const MSG_SIZE = kvpMsgSize(FLAVOR);

export interface Step {
  /** Unique, stable name: differences are reported and explained by it. */
  label: string;
  /** The bytes the daemon reads. */
  request: Buffer;
  /** The host request the kernel turned into `request`, when there was one. */
  host?: KvpHostRequest;
  /**
   * ENUMERATE steps of one walk over a pool share this name: their records
   * are compared by key, and an order that differs is one difference of
   * kind 'order' (writers may order records differently, spec/kvp.md 1).
   */
  walk?: string;
}

/** What the Linux kernel hands the daemon for a host request. */
export function kernelRequest(req: KvpHostRequest): Buffer {
  return linuxToDaemon(receiveBuffer(kvpPacket(req, 1), ICMSG_HDR + MSG_SIZE).subarray(ICMSG_HDR));
}

/** A GET/SET/ENUMERATE/DELETE message built field by field (sizes as given, strings as raw bytes). */
export function handMade(o: { op: number; pool: number; key?: Buffer; keySize?: number; value?: Buffer; valueSize?: number; valueType?: number; index?: number; size?: number }): Buffer {
  const b = Buffer.alloc(o.size ?? MSG_SIZE);
  b.writeUInt8(o.op, 0);
  b.writeUInt8(o.pool, 1);
  const f = o.op === KVP_OP.DELETE ? { keySize: DELETE.keySize, key: DELETE.key } : o.op === KVP_OP.ENUMERATE ? ENUM : o.op === KVP_OP.GET ? GET : SET;
  const put = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof RangeError)) throw e; // a short malformed message simply ends early
    }
  };
  if (o.index !== undefined) put(() => b.writeUInt32LE(o.index! >>> 0, ENUM_INDEX.offset));
  if (o.key) {
    put(() => b.writeUInt32LE(o.keySize ?? o.key!.length + 1, f.keySize.offset));
    o.key.copy(b, f.key.offset, 0, Math.min(o.key.length, f.key.size));
  }
  if (o.value && 'value' in f) {
    put(() => b.writeUInt32LE(o.valueSize ?? o.value!.length + 1, f.valueSize.offset));
    if (o.valueType !== undefined) put(() => b.writeUInt32LE(o.valueType!, f.valueType.offset));
    o.value.copy(b, f.value.offset, 0, Math.min(o.value.length, f.value.size));
  }
  return b;
}

const text = (s: string) => Buffer.from(s, 'utf8');
const fill = (n: number, seed: string) => seed.repeat(Math.ceil(n / seed.length)).slice(0, n);

/** A value of `n` printable characters, different for every key. */
const valueFor = (i: number, n: number) => fill(n, `v${i}-abcdefghijklmnopqrstuvwxyz0123456789.`);

/** The whole session, in order. */
export function kvpSession(): Step[] {
  const steps: Step[] = [];
  const host = (label: string, req: KvpHostRequest, walk?: string) => steps.push({ label, request: kernelRequest(req), host: req, ...(walk ? { walk } : {}) });
  const raw = (label: string, request: Buffer) => steps.push({ label, request });
  const enumAll = (tag: string, pool: number, upTo: number) => {
    for (let index = 0; index <= upTo; index++) host(`${tag} enum pool ${pool} #${index}`, { op: 'enum', pool, index }, pool === 2 ? undefined : `${tag} walk of pool ${pool}`);
  };

  // Fresh pools: nothing to enumerate; the Auto pool's intrinsic keys and past its end.
  for (const pool of [0, 1, 3, 4]) host(`empty enum pool ${pool} #0`, { op: 'enum', pool, index: 0 });
  enumAll('intrinsic', 2, 11);
  host('intrinsic enum pool 2 #255', { op: 'enum', pool: 2, index: 255 });
  raw('intrinsic enum pool 2 #0xffffffff', handMade({ op: KVP_OP.ENUMERATE, pool: 2, index: 0xffffffff }));

  // The host's usual writes into the External pool, values of many lengths.
  const lengths = [0, 1, 2, 7, 31, 100, 255, 256, 511, 512, 1000, 1021, 1022];
  for (let i = 0; i < 30; i++) host(`set pool 0 Key-${i}`, { op: 'set', pool: 0, key: `Key-${i}`, value: valueFor(i, lengths[i % lengths.length]!) });
  for (let i = 0; i < 30; i += 3) host(`get pool 0 Key-${i}`, { op: 'get', pool: 0, key: `Key-${i}` });
  host('get pool 0 missing', { op: 'get', pool: 0, key: 'NoSuchKey' });
  host('get pool 0 wrong case', { op: 'get', pool: 0, key: 'key-1' });
  host('get pool 0 prefix of a key', { op: 'get', pool: 0, key: 'Key-' });
  // Overwrites with shorter and longer values: the C daemon keeps stale bytes after the terminator.
  host('overwrite pool 0 Key-10 shorter', { op: 'set', pool: 0, key: 'Key-10', value: 'short' });
  host('overwrite pool 0 Key-2 longer', { op: 'set', pool: 0, key: 'Key-2', value: valueFor(99, 700) });
  host('get pool 0 Key-10 after overwrite', { op: 'get', pool: 0, key: 'Key-10' });
  enumAll('after sets', 0, 31);

  // Deletes: first, middle, last, missing; then the order left behind.
  host('delete pool 0 Key-0 (first)', { op: 'delete', pool: 0, key: 'Key-0' });
  host('delete pool 0 Key-15 (middle)', { op: 'delete', pool: 0, key: 'Key-15' });
  host('delete pool 0 Key-29 (last)', { op: 'delete', pool: 0, key: 'Key-29' });
  host('delete pool 0 missing', { op: 'delete', pool: 0, key: 'Key-15' });
  host('get pool 0 deleted Key-15', { op: 'get', pool: 0, key: 'Key-15' });
  enumAll('after deletes', 0, 28);

  // The other pools, including writes the host does not normally make.
  for (const pool of [1, 3]) {
    host(`set pool ${pool} one`, { op: 'set', pool, key: `Pool${pool}Key`, value: `pool ${pool} value` });
    host(`get pool ${pool} one`, { op: 'get', pool, key: `Pool${pool}Key` });
    enumAll(`pool ${pool}`, pool, 1);
  }
  host('set pool 2 (Auto)', { op: 'set', pool: 2, key: 'AutoKey', value: 'not an intrinsic' });
  host('get pool 2 (Auto)', { op: 'get', pool: 2, key: 'AutoKey' });
  host('enum pool 2 #0 after set', { op: 'enum', pool: 2, index: 0 });
  host('delete pool 2 (Auto)', { op: 'delete', pool: 2, key: 'AutoKey' });

  // Integer values, rendered as text by the kernel; non-ASCII text.
  host('set u32', { op: 'set', pool: 0, key: 'U32', value: 4294967295, valueType: 'u32' });
  host('set u64', { op: 'set', pool: 0, key: 'U64', value: 18446744073709551615n, valueType: 'u64' });
  host('get u32', { op: 'get', pool: 0, key: 'U32' });
  host('set non-ASCII', { op: 'set', pool: 0, key: 'Schlüssel-日本', value: 'Wert é ✓ 😀' });
  host('get non-ASCII', { op: 'get', pool: 0, key: 'Schlüssel-日本' });

  // Edge sizes, in pool 4 so that what the C daemon does with them (stores
  // records without a terminator, overwrites the first record for key_size
  // 0) cannot change the other pools' later answers.
  const E = 4;
  host('edge: set a first record', { op: 'set', pool: E, key: 'First', value: 'first value' });
  host('edge: set a second record', { op: 'set', pool: E, key: 'Second', value: 'second value' });
  host('edge: set empty key', { op: 'set', pool: E, key: '', value: 'value of the empty key' });
  host('edge: get empty key', { op: 'get', pool: E, key: '' });
  host('edge: delete empty key', { op: 'delete', pool: E, key: '' });
  host('edge: set empty value', { op: 'set', pool: E, key: 'EmptyValue', value: '' });
  host('edge: get empty value', { op: 'get', pool: E, key: 'EmptyValue' });
  const maxKey = fill(511, 'K0123456789');
  const maxValue = fill(2047, 'V0123456789abcdef');
  raw('edge: set max key and value', handMade({ op: KVP_OP.SET, pool: E, key: text(maxKey), value: text(maxValue) }));
  raw('edge: get max key', handMade({ op: KVP_OP.GET, pool: E, key: text(maxKey) }));
  raw('edge: set key_size 513', handMade({ op: KVP_OP.SET, pool: E, key: text('Big'), keySize: 513, value: text('x') }));
  raw('edge: set value_size 2049', handMade({ op: KVP_OP.SET, pool: E, key: text('Big'), value: text('x'), valueSize: 2049 }));
  raw('edge: get key_size larger than the string', handMade({ op: KVP_OP.GET, pool: E, key: text('First'), keySize: 40 }));
  raw('edge: get with value_size 2048', handMade({ op: KVP_OP.GET, pool: E, key: text('First'), value: Buffer.alloc(0), valueSize: 2048 }));
  raw('edge: set value_type REG_U32 raw', handMade({ op: KVP_OP.SET, pool: E, key: text('Typed'), value: text('7'), valueType: REG_U32 }));
  raw('edge: set value_type REG_U64 raw', handMade({ op: KVP_OP.SET, pool: E, key: text('Typed64'), value: text('8'), valueType: REG_U64 }));
  raw('edge: set key_size 0', handMade({ op: KVP_OP.SET, pool: E, key: text('ZeroSize'), keySize: 0, value: text('zero') }));
  raw('edge: get key_size 0', handMade({ op: KVP_OP.GET, pool: E, key: text('Second'), keySize: 0 }));
  enumAll('edge: sizes', E, 8);
  raw('edge: set value without terminator', handMade({ op: KVP_OP.SET, pool: E, key: text('NoNul'), value: text(fill(2048, 'N')), valueSize: 2048 }));
  raw('edge: set key without terminator', handMade({ op: KVP_OP.SET, pool: E, key: text(fill(512, 'k')), keySize: 512, value: text('x') }));
  enumAll('edge: no terminator', E, 10);
  raw('edge: delete key_size 0', handMade({ op: KVP_OP.DELETE, pool: E, key: text('Nothing'), keySize: 0 }));
  raw('edge: delete key without terminator', handMade({ op: KVP_OP.DELETE, pool: E, key: text(fill(512, 'k')), keySize: 512 }));
  raw('edge: delete value without terminator', handMade({ op: KVP_OP.DELETE, pool: E, key: text('NoNul') }));
  enumAll('edge: after deletes', E, 10);

  // Malformed and unknown messages.
  for (const op of [6, 7, 99, 100, 127, 255]) raw(`unknown op ${op}`, handMade({ op, pool: 0 }));
  for (const pool of [5, 6, 255]) {
    raw(`get pool ${pool}`, handMade({ op: KVP_OP.GET, pool, key: text('Key-1') }));
    raw(`set pool ${pool}`, handMade({ op: KVP_OP.SET, pool, key: text('OutOfRange'), value: text('x') }));
    raw(`enum pool ${pool}`, handMade({ op: KVP_OP.ENUMERATE, pool, index: 0 }));
    raw(`delete pool ${pool}`, handMade({ op: KVP_OP.DELETE, pool, key: text('Key-1') }));
  }
  raw('pad bytes set', (() => {
    const b = handMade({ op: KVP_OP.GET, pool: 0, key: text('Key-1') });
    b.writeUInt16LE(0xbeef, 2);
    return b;
  })());
  raw('garbage body enum', (() => {
    // Pool 3 holds one record, so the answer does not depend on how deletes ordered pool 0.
    const b = handMade({ op: KVP_OP.ENUMERATE, pool: 3, index: 0 });
    for (let i = ENUM.key.offset; i < MSG_SIZE; i++) b[i] = (i * 7) & 0xff;
    return b;
  })());
  raw('short message (100 bytes)', handMade({ op: KVP_OP.GET, pool: 0, key: text('Key-1'), size: 100 }));
  host('after short message', { op: 'get', pool: 0, key: 'Key-1' });
  raw('long message (8000 bytes)', handMade({ op: KVP_OP.GET, pool: 0, key: text('Key-1'), size: 8000 }));
  host('after long message', { op: 'get', pool: 0, key: 'Key-1' });

  // Many records: past the C daemon's 50-record allocation block.
  for (let i = 0; i < 60; i++) host(`bulk set pool 1 #${i}`, { op: 'set', pool: 1, key: `Bulk-${String(i).padStart(2, '0')}`, value: valueFor(i, 10 + i) });
  enumAll('bulk', 1, 62);
  host('bulk get pool 1 last', { op: 'get', pool: 1, key: 'Bulk-59' });

  // IP information of the guest's NIC, and IP injection.
  const mac = GUEST.mac.toUpperCase();
  for (const family of [0, 1, 2, 3]) host(`ipinfo family ${family}`, { op: 'ipinfo', mac, addrFamily: family });
  host('ipinfo lower-case MAC', { op: 'ipinfo', mac: GUEST.mac, addrFamily: 3 });
  host('ipinfo peer MAC', { op: 'ipinfo', mac: GUEST.peerMac.toUpperCase(), addrFamily: 3 });
  host('ipinfo unknown MAC', { op: 'ipinfo', mac: '00:15:5D:00:00:99', addrFamily: 3 });
  host('ipinfo empty adapter id', { op: 'ipinfo', mac: '', addrFamily: 3 });
  const inject = { adapterId: GUEST.vmbusId, gateway: '192.0.2.1', dns: '192.0.2.53', dhcp: false } as const;
  host('setip static IPv4', { op: 'setip', ...inject, ip: '192.0.2.20', subnet: '255.255.255.0' });
  host('setip two IPv4 and IPv6', { op: 'setip', ...inject, ip: '192.0.2.20;192.0.2.21;2001:db8:d1f::20', subnet: '255.255.255.0;255.255.255.128;64', gateway: '192.0.2.1;2001:db8:d1f::1', dns: '192.0.2.53;2001:db8:d1f::53' });
  host('setip DHCP', { op: 'setip', ...inject, ip: '', subnet: '', gateway: '', dns: '', dhcp: true });
  host('setip unknown GUID', { op: 'setip', ...inject, adapterId: '{00000000-0000-0000-0000-000000000000}', ip: '192.0.2.20', subnet: '255.255.255.0' });
  host('setip upper-case GUID', { op: 'setip', ...inject, adapterId: GUEST.vmbusId.toUpperCase(), ip: '192.0.2.20', subnet: '255.255.255.0' });
  host('setip invalid address', { op: 'setip', ...inject, ip: '192.0.2.300', subnet: '255.255.255.0' });
  host('setip invalid gateway', { op: 'setip', ...inject, ip: '192.0.2.20', subnet: '255.255.255.0', gateway: 'not-an-address' });

  // The host reads everything once more at the end.
  enumAll('final intrinsic', 2, 10);
  enumAll('final', 0, 28);
  return steps;
}

/** Read-only steps for a pool written by the other daemon: every pool walked past its end, and GETs of keys it holds. */
export function readBackSession(keys: { pool: number; key: string }[], counts: number[]): Step[] {
  const steps: Step[] = [];
  for (let pool = 0; pool < 5; pool++) {
    if (pool === 2) continue;
    for (let index = 0; index <= (counts[pool] ?? 0); index++) {
      const req: KvpHostRequest = { op: 'enum', pool, index };
      steps.push({ label: `readback enum pool ${pool} #${index}`, request: kernelRequest(req), host: req, walk: `readback walk of pool ${pool}` });
    }
  }
  for (const { pool, key } of keys) {
    const req: KvpHostRequest = { op: 'get', pool, key };
    steps.push({ label: `readback get pool ${pool} ${key.slice(0, 40)}`, request: kernelRequest(req), host: req });
  }
  return steps;
}
