/**
 * A lossless JSON form of daemon <-> kernel messages, for `hvctl msg`.
 *
 * Lossless means fromJson(toJson(bytes)) gives back exactly `bytes` for any
 * buffer of the right size, garbage included: size fields are shown as sent
 * (never recomputed), a string field that is not a clean C string is shown
 * as the hex of the whole field, and bytes no field of the chosen body
 * variant covers are kept as hex. Names next to numbers (operationName,
 * poolName, statusName, optName) are for people; fromJson ignores them.
 *
 * Shapes (`?` = present only when non-zero or known):
 * - KVP request: { flavor, service: "kvp", reply: false, operation, operationName?,
 *   pool, poolName?, pad, variant, body, trailer? }
 * - KVP reply: { flavor, service: "kvp", reply: true, status, statusName, variant, body, trailer? }
 *   (bytes 0..3 are the status; op and pool are not in a reply)
 * - `variant` null: `body` is { hex } of the whole body union; otherwise `body`
 *   holds the variant's fields as declared in structs.ts and `trailer` the
 *   rest of the body union (Linux: including its 2 padding bytes).
 * - Linux VSS: { flavor: "linux", service: "vss", reply, operation | status, flags, reserved? };
 *   the 4-byte registration reply is { ..., handshake }.
 * - FreeBSD VSS: { flavor: "freebsd", service: "vss", reply, opt, status, msgid, reserved? }
 *   (msgid is a decimal string: it does not fit a JSON number).
 * Area hex (`trailer`, `reserved`, a variant-less body) omits trailing zero
 * bytes; fromJson zero-fills every field and area it is given short.
 */
import {
  FLAVORS,
  HV_VSS_OPT_NAMES,
  KVP_OP_NAMES,
  KVP_POOL_NAMES,
  VSS_FAIL,
  VSS_OP_NAMES,
  VSS_SUCCESS,
  statusName,
  type Flavor,
} from './constants.js';
import { WireError } from './errors.js';
import { KVP_VARIANTS, decodeKvp, variantForOp, variantLayout, type KvpVariant } from './kvp.js';
import { readScalar, writeScalar, type Layout, type Scalar } from './layout.js';
import { readCString } from './strings.js';
import { KVP_BODY_OFFSET, LAYOUTS, LINUX_VSS_HANDSHAKE_REPLY_SIZE, kvpMsgSize, vssMsgSize } from './structs.js';
import { decodeFreebsdVss, decodeLinuxVss } from './vss.js';

/** The kernel services `hvctl msg` knows (FreeBSD's two VSS nodes share one struct). */
export type MsgService = 'kvp' | 'vss';
export const MSG_SERVICES: readonly MsgService[] = ['kvp', 'vss'];

/** How to read a buffer: the bytes alone do not say which flavor, service or direction they are. */
export interface JsonOptions {
  flavor: Flavor;
  service: MsgService;
  /** Daemon -> kernel reply: bytes 0..3 are a status word (KVP, Linux VSS). */
  reply?: boolean;
  /** KVP: the request op a reply answers (replies do not carry it); overrides byte 0 in a request. */
  op?: number;
  /** KVP: force a body variant; 'none' shows the body as hex. */
  variant?: KvpVariant | 'none';
}

/** One leaf in JSON: a number, a decimal string for u64, a clean C string, or hex of the whole field. */
export type FieldJson = number | string | { hex: string };

/** The fields of one aggregate, nested as declared. */
export interface FieldsJson {
  [name: string]: FieldJson | FieldsJson;
}

export interface KvpJson {
  flavor: Flavor;
  service: 'kvp';
  reply: boolean;
  operation?: number;
  operationName?: string;
  pool?: number;
  poolName?: string;
  pad?: number;
  status?: number;
  statusName?: string;
  variant: KvpVariant | null;
  body: FieldsJson | { hex: string };
  trailer?: string;
}

export interface LinuxVssJson {
  flavor: 'linux';
  service: 'vss';
  reply: boolean;
  operation?: number;
  operationName?: string;
  status?: number;
  statusName?: string;
  flags: number;
  reserved?: string;
}

export interface LinuxVssHandshakeJson {
  flavor: 'linux';
  service: 'vss';
  reply: boolean;
  handshake: number;
}

export interface FreebsdVssJson {
  flavor: 'freebsd';
  service: 'vss';
  reply: boolean;
  opt: number;
  optName?: string;
  status: number;
  statusName?: string;
  msgid: string;
  reserved?: string;
}

export type MsgJson = KvpJson | LinuxVssJson | LinuxVssHandshakeJson | FreebsdVssJson;

const FREEBSD_VSS_STATUS_NAMES: Record<number, string> = { [VSS_SUCCESS]: 'success', [VSS_FAIL]: 'fail' };

/** Hex of an area without its trailing zero bytes ('' when all zero). */
function trimmedHex(area: Buffer): string {
  let end = area.length;
  while (end > 0 && area[end - 1] === 0) end--;
  return area.subarray(0, end).toString('hex');
}

/** A string field shown as text only when text -> bytes gives back exactly these bytes. */
function stringOrHex(field: Buffer): string | { hex: string } {
  const end = field.indexOf(0);
  if (end >= 0 && trimmedHex(field.subarray(end)) === '') {
    const s = readCString(field);
    if (typeof s === 'string') return s;
  }
  return { hex: field.toString('hex') };
}

/** u64 goes out as decimal text: it does not fit in a JSON number. */
function scalarToJson(buf: Buffer, off: number, type: Scalar): number | string {
  const v = readScalar(buf, off, type);
  return typeof v === 'bigint' ? v.toString() : v;
}

function fieldsToJson(buf: Buffer, layout: Layout, base: number): FieldsJson {
  const out: FieldsJson = {};
  for (const m of layout.members) {
    const off = base + m.offset;
    if (m.type === 'nested') {
      // A union member would need a choice the JSON cannot record; no body variant declares one.
      if (m.layout.kind === 'union') throw new Error(`${layout.name}.${m.name}: unions inside a body variant are not supported`);
      out[m.name] = fieldsToJson(buf, m.layout, off);
    } else if (m.type === 'bytes') {
      out[m.name] = stringOrHex(buf.subarray(off, off + m.size));
    } else {
      out[m.name] = scalarToJson(buf, off, m.type);
    }
  }
  return out;
}

function chooseVariant(opts: JsonOptions, requestOp: number | undefined): KvpVariant | null | WireError {
  if (opts.variant === 'none') return null;
  if (opts.variant !== undefined) {
    if (!KVP_VARIANTS.includes(opts.variant)) {
      return new WireError('EVALUE', `variant: unknown "${String(opts.variant)}" (expected one of ${KVP_VARIANTS.join(', ')}, none)`, 'variant');
    }
    return opts.variant;
  }
  const op = opts.op ?? requestOp;
  return op === undefined ? null : (variantForOp(op) ?? null);
}

function kvpToJson(buf: Buffer, opts: JsonOptions): KvpJson | WireError {
  const msg = decodeKvp(buf, opts.flavor);
  if (msg instanceof WireError) return msg;
  const reply = opts.reply ?? false;
  const variant = chooseVariant(opts, reply ? undefined : msg.operation);
  if (variant instanceof WireError) return variant;

  const out: Partial<KvpJson> = { flavor: opts.flavor, service: 'kvp', reply };
  if (reply) {
    out.status = msg.error;
    out.statusName = statusName(msg.error);
  } else {
    out.operation = msg.operation;
    if (KVP_OP_NAMES[msg.operation] !== undefined) out.operationName = KVP_OP_NAMES[msg.operation];
    out.pool = msg.pool;
    if (KVP_POOL_NAMES[msg.pool] !== undefined) out.poolName = KVP_POOL_NAMES[msg.pool];
    out.pad = msg.pad;
  }
  out.variant = variant;
  const bodyEnd = KVP_BODY_OFFSET + LAYOUTS[opts.flavor].kvpBody.size;
  if (variant === null) {
    out.body = { hex: trimmedHex(buf.subarray(KVP_BODY_OFFSET, bodyEnd)) };
  } else {
    const layout = variantLayout(opts.flavor, variant);
    out.body = fieldsToJson(buf, layout, KVP_BODY_OFFSET);
    const trailer = trimmedHex(buf.subarray(KVP_BODY_OFFSET + layout.size, bodyEnd));
    if (trailer) out.trailer = trailer;
  }
  return out as KvpJson;
}

function linuxVssToJson(buf: Buffer, reply: boolean): LinuxVssJson | LinuxVssHandshakeJson | WireError {
  // The kernel's registration answer is a bare u32, not an hv_vss_msg; any value is kept so the tool can show a bad one.
  if (buf.length === LINUX_VSS_HANDSHAKE_REPLY_SIZE) {
    return { flavor: 'linux', service: 'vss', reply, handshake: buf.readUInt32LE(0) };
  }
  const m = decodeLinuxVss(buf);
  if (m instanceof WireError) {
    return new WireError('ESIZE', `hv_vss_msg: ${buf.length} bytes, expected ${vssMsgSize('linux')} (or ${LINUX_VSS_HANDSHAKE_REPLY_SIZE} for the handshake reply)`);
  }
  const out: Partial<LinuxVssJson> = { flavor: 'linux', service: 'vss', reply };
  let reserved: string;
  if (reply) {
    // Linux declares the status signed; shown unsigned like the KVP status so HRESULTs read as 0x8...
    out.status = m.error >>> 0;
    out.statusName = statusName(m.error);
    reserved = trimmedHex(buf.subarray(4, 8));
  } else {
    out.operation = m.operation;
    if (VSS_OP_NAMES[m.operation] !== undefined) out.operationName = VSS_OP_NAMES[m.operation];
    reserved = trimmedHex(m.reserved);
  }
  out.flags = m.flags;
  if (reserved) out.reserved = reserved;
  return out as LinuxVssJson;
}

function freebsdVssToJson(buf: Buffer, reply: boolean): FreebsdVssJson | WireError {
  const m = decodeFreebsdVss(buf);
  if (m instanceof WireError) return m;
  const optName = HV_VSS_OPT_NAMES[m.opt];
  const name = FREEBSD_VSS_STATUS_NAMES[m.status];
  const reserved = trimmedHex(m.reserved);
  // Spreads keep each name next to its number in the printed JSON.
  return {
    flavor: 'freebsd',
    service: 'vss',
    reply,
    opt: m.opt,
    ...(optName !== undefined && { optName }),
    status: m.status,
    ...(name !== undefined && { statusName: name }),
    msgid: m.msgid.toString(),
    ...(reserved !== '' && { reserved }),
  };
}

/** Decode one whole message into its lossless JSON form; a wrong size or bad option is a returned WireError. */
export function toJson(bytes: Buffer, opts: JsonOptions): MsgJson | WireError {
  if (!FLAVORS.includes(opts.flavor)) return new WireError('EVALUE', `flavor: unknown "${String(opts.flavor)}" (expected freebsd or linux)`, 'flavor');
  const reply = opts.reply ?? false;
  switch (opts.service) {
    case 'kvp':
      return kvpToJson(bytes, opts);
    case 'vss':
      return opts.flavor === 'linux' ? linuxVssToJson(bytes, reply) : freebsdVssToJson(bytes, reply);
    default:
      return new WireError('EVALUE', `service: unknown "${String(opts.service)}" (expected kvp or vss)`, 'service');
  }
}

// ---- JSON -> bytes ----

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const bad = (field: string, what: string): WireError => new WireError('EVALUE', `${field}: ${what}`, field);

function checkKeys(obj: Obj, allowed: readonly string[], where: string): WireError | undefined {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) return bad(where ? `${where}.${k}` : k, `not a field here (expected ${allowed.join(', ')})`);
  }
  return undefined;
}

/** Parse hex of at most `max` bytes. */
function parseHex(v: unknown, max: number, field: string): Buffer | WireError {
  if (typeof v !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(v)) return bad(field, 'expected a string of hex digit pairs');
  const b = Buffer.from(v, 'hex');
  if (b.length > max) return new WireError('ETOOLONG', `${field}: ${b.length} bytes of hex do not fit in ${max}`, field);
  return b;
}

const SCALAR_RANGE: Record<Exclude<Scalar, 'u64'>, [number, number]> = {
  u8: [0, 0xff],
  u16: [0, 0xffff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

function parseIntField(v: unknown, type: Exclude<Scalar, 'u64'>, field: string): number | WireError {
  const [min, max] = SCALAR_RANGE[type];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return bad(field, `expected an integer ${min}..${max} (${type})`);
  return v;
}

function parseU64(v: unknown, field: string): bigint | WireError {
  let n: bigint;
  if (typeof v === 'string' && /^[0-9]+$/.test(v)) n = BigInt(v);
  else if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) n = BigInt(v);
  else return bad(field, 'expected a decimal string or a non-negative integer (u64)');
  if (n >= 1n << 64n) return bad(field, 'does not fit in 64 bits');
  return n;
}

function writeScalarJson(buf: Buffer, off: number, type: Scalar, v: unknown, field: string): WireError | undefined {
  if (type === 'u64') {
    const n = parseU64(v, field);
    if (n instanceof WireError) return n;
    writeScalar(buf, off, type, n);
    return undefined;
  }
  const n = parseIntField(v, type, field);
  if (n instanceof WireError) return n;
  writeScalar(buf, off, type, n);
  return undefined;
}

function writeStringField(buf: Buffer, off: number, size: number, v: unknown, field: string): WireError | undefined {
  let b: Buffer | WireError;
  if (typeof v === 'string') {
    b = Buffer.from(v, 'utf8');
    // Lone surrogates would silently become U+FFFD; refuse instead of writing other bytes than asked for.
    if (b.toString('utf8') !== v) return bad(field, 'text is not valid Unicode (lone surrogate)');
    if (b.includes(0)) return bad(field, 'text contains a NUL character (use { "hex": ... } for raw bytes)');
    if (b.length + 1 > size) return new WireError('ETOOLONG', `${field}: ${b.length} bytes + NUL do not fit in ${size}`, field);
  } else if (isObj(v)) {
    const k = checkKeys(v, ['hex'], field);
    if (k) return k;
    b = parseHex(v.hex, size, `${field}.hex`);
    if (b instanceof WireError) return b;
  } else {
    return bad(field, 'expected a string or { "hex": ... }');
  }
  b.copy(buf, off);
  return undefined;
}

/** Write the fields of `obj` into a zeroed buffer; missing fields stay zero, unknown ones are an error. */
function fieldsFromJson(buf: Buffer, layout: Layout, base: number, obj: unknown, where: string): WireError | undefined {
  if (!isObj(obj)) return bad(where, `expected an object with the fields of ${layout.name}`);
  const names = layout.members.map((m) => m.name);
  const k = checkKeys(obj, names, where);
  if (k) return k;
  for (const m of layout.members) {
    const v = obj[m.name];
    if (v === undefined) continue;
    const field = `${where}.${m.name}`;
    const off = base + m.offset;
    let err: WireError | undefined;
    if (m.type === 'nested') err = fieldsFromJson(buf, m.layout, off, v, field);
    else if (m.type === 'bytes') err = writeStringField(buf, off, m.size, v, field);
    else err = writeScalarJson(buf, off, m.type, v, field);
    if (err) return err;
  }
  return undefined;
}

/** Copy an area's hex (zero-filled when short) at `off`. */
function writeArea(buf: Buffer, off: number, size: number, v: unknown, field: string): WireError | undefined {
  if (v === undefined) return undefined;
  const b = parseHex(v, size, field);
  if (b instanceof WireError) return b;
  b.copy(buf, off);
  return undefined;
}

function required(obj: Obj, key: string, what: string): WireError | undefined {
  return obj[key] === undefined ? bad(key, `missing (${what})`) : undefined;
}

const KVP_COMMON = ['flavor', 'service', 'reply', 'variant', 'body', 'trailer'];

function kvpFromJson(obj: Obj, flavor: Flavor, reply: boolean): Buffer | WireError {
  const keys = reply ? [...KVP_COMMON, 'status', 'statusName'] : [...KVP_COMMON, 'operation', 'operationName', 'pool', 'poolName', 'pad'];
  const k = checkKeys(obj, keys, '');
  if (k) return reply && 'operation' in obj ? bad('operation', 'not part of a reply (bytes 0..3 hold the status)') : k;
  const buf = Buffer.alloc(kvpMsgSize(flavor));
  const errs: (WireError | undefined)[] = [];
  if (reply) {
    errs.push(required(obj, 'status', 'the status word of a reply'));
    errs.push(writeScalarJson(buf, 0, 'u32', obj.status, 'status'));
  } else {
    errs.push(required(obj, 'operation', 'the KVP op code'));
    errs.push(writeScalarJson(buf, 0, 'u8', obj.operation, 'operation'));
    errs.push(writeScalarJson(buf, 1, 'u8', obj.pool ?? 0, 'pool'));
    errs.push(writeScalarJson(buf, 2, 'u16', obj.pad ?? 0, 'pad'));
  }
  const e = errs.find((x) => x !== undefined);
  if (e) return e;

  let variant: KvpVariant | null;
  if (obj.variant === undefined) variant = reply ? null : (variantForOp(obj.operation as number) ?? null);
  else if (obj.variant === null) variant = null;
  else if (typeof obj.variant === 'string' && KVP_VARIANTS.includes(obj.variant as KvpVariant)) variant = obj.variant as KvpVariant;
  else return bad('variant', `expected null or one of ${KVP_VARIANTS.join(', ')}`);

  const bodySize = LAYOUTS[flavor].kvpBody.size;
  if (variant === null) {
    if (obj.trailer !== undefined) return bad('trailer', 'only with a body variant (the body hex already covers it)');
    if (obj.body === undefined) return buf;
    if (!isObj(obj.body)) return bad('body', 'expected { "hex": ... } when variant is null');
    const bk = checkKeys(obj.body, ['hex'], 'body');
    if (bk) return bad('body', 'expected { "hex": ... } when variant is null (name a variant to give fields)');
    return writeArea(buf, KVP_BODY_OFFSET, bodySize, obj.body.hex, 'body.hex') ?? buf;
  }
  const layout = variantLayout(flavor, variant);
  if (obj.body !== undefined) {
    const be = fieldsFromJson(buf, layout, KVP_BODY_OFFSET, obj.body, 'body');
    if (be) return be;
  }
  return writeArea(buf, KVP_BODY_OFFSET + layout.size, bodySize - layout.size, obj.trailer, 'trailer') ?? buf;
}

function linuxVssFromJson(obj: Obj, reply: boolean): Buffer | WireError {
  if (obj.handshake !== undefined) {
    const k = checkKeys(obj, ['flavor', 'service', 'reply', 'handshake'], '');
    if (k) return k;
    const buf = Buffer.alloc(LINUX_VSS_HANDSHAKE_REPLY_SIZE);
    return writeScalarJson(buf, 0, 'u32', obj.handshake, 'handshake') ?? buf;
  }
  const common = ['flavor', 'service', 'reply', 'flags', 'reserved'];
  const k = checkKeys(obj, reply ? [...common, 'status', 'statusName'] : [...common, 'operation', 'operationName'], '');
  if (k) return k;
  const buf = Buffer.alloc(vssMsgSize('linux'));
  const errs: (WireError | undefined)[] = [];
  if (reply) {
    errs.push(required(obj, 'status', 'the status word of a reply'));
    errs.push(writeScalarJson(buf, 0, 'u32', obj.status, 'status'));
    errs.push(writeArea(buf, 4, 4, obj.reserved, 'reserved'));
  } else {
    errs.push(required(obj, 'operation', 'the VSS op code'));
    errs.push(writeScalarJson(buf, 0, 'u8', obj.operation, 'operation'));
    errs.push(writeArea(buf, 1, 7, obj.reserved, 'reserved'));
  }
  errs.push(writeScalarJson(buf, 8, 'u32', obj.flags ?? 0, 'flags'));
  return errs.find((x) => x !== undefined) ?? buf;
}

function freebsdVssFromJson(obj: Obj): Buffer | WireError {
  const k = checkKeys(obj, ['flavor', 'service', 'reply', 'opt', 'optName', 'status', 'statusName', 'msgid', 'reserved'], '');
  if (k) return k;
  const buf = Buffer.alloc(vssMsgSize('freebsd'));
  const errs = [
    required(obj, 'opt', 'the user VSS op'),
    writeScalarJson(buf, 0, 'u32', obj.opt, 'opt'),
    writeScalarJson(buf, 4, 'u32', obj.status ?? 0, 'status'),
    writeScalarJson(buf, 8, 'u64', obj.msgid ?? '0', 'msgid'),
    writeArea(buf, 16, 48, obj.reserved, 'reserved'),
  ];
  return errs.find((x) => x !== undefined) ?? buf;
}

/** Encode the JSON form back to the exact bytes; a malformed object is a returned WireError naming the field. */
export function fromJson(obj: unknown): Buffer | WireError {
  if (!isObj(obj)) return bad('message', 'expected a JSON object');
  if (!FLAVORS.includes(obj.flavor as Flavor)) return bad('flavor', `expected "freebsd" or "linux", got ${JSON.stringify(obj.flavor) ?? 'nothing'}`);
  if (!MSG_SERVICES.includes(obj.service as MsgService)) return bad('service', `expected "kvp" or "vss", got ${JSON.stringify(obj.service) ?? 'nothing'}`);
  if (obj.reply !== undefined && typeof obj.reply !== 'boolean') return bad('reply', 'expected true or false');
  const flavor = obj.flavor as Flavor;
  const reply = obj.reply === true;
  if (obj.service === 'kvp') return kvpFromJson(obj, flavor, reply);
  return flavor === 'linux' ? linuxVssFromJson(obj, reply) : freebsdVssFromJson(obj);
}
