/**
 * C struct layouts declared once, as tables of members; sizes, offsets,
 * encoding and decoding are all derived from the declaration.
 *
 * The placement rules are the C ones gcc applies on the little-endian LP64
 * and ILP32 targets Hyper-V guests run on: a member starts at the next
 * multiple of its alignment (1 everywhere in a packed aggregate), a struct's
 * size is rounded up to its alignment, a union is as large as its largest
 * member rounded up to the largest member alignment. Packing a struct
 * changes where its own members go, not the size of an unpacked aggregate
 * nested in it; that is exactly what makes the Linux hv_kvp_msg 7432 bytes.
 */

export type Scalar = 'u8' | 'u16' | 'u32' | 'i32' | 'u64';

const SCALAR_SIZE: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8 };

/** A member as declared, before placement. */
export type MemberDecl =
  | { name: string; type: Scalar }
  | { name: string; type: 'bytes'; size: number }
  | { name: string; type: 'nested'; layout: Layout };

/** A member after placement, offset relative to the start of its aggregate. */
export type Member = MemberDecl & { offset: number; size: number; align: number };

export interface Layout {
  name: string;
  kind: 'struct' | 'union';
  packed: boolean;
  size: number;
  align: number;
  members: readonly Member[];
}

/** One leaf field with its absolute offset and dotted path (for tests, tables and codecs). */
export interface Leaf {
  path: string;
  offset: number;
  size: number;
  type: Scalar | 'bytes';
}

export const u8 = (name: string): MemberDecl => ({ name, type: 'u8' });
export const u16 = (name: string): MemberDecl => ({ name, type: 'u16' });
export const u32 = (name: string): MemberDecl => ({ name, type: 'u32' });
export const i32 = (name: string): MemberDecl => ({ name, type: 'i32' });
export const u64 = (name: string): MemberDecl => ({ name, type: 'u64' });
export const bytes = (name: string, size: number): MemberDecl => ({ name, type: 'bytes', size });
export const nested = (name: string, layout: Layout): MemberDecl => ({ name, type: 'nested', layout });

function natural(m: MemberDecl): { size: number; align: number } {
  switch (m.type) {
    case 'bytes':
      return { size: m.size, align: 1 };
    case 'nested':
      return { size: m.layout.size, align: m.layout.align };
    default:
      return { size: SCALAR_SIZE[m.type], align: SCALAR_SIZE[m.type] };
  }
}

const roundUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Declare a C struct; members are placed in order. */
export function struct(name: string, decls: readonly MemberDecl[], opts: { packed: boolean }): Layout {
  let offset = 0;
  let align = 1;
  const members: Member[] = [];
  for (const d of decls) {
    const n = natural(d);
    const a = opts.packed ? 1 : n.align;
    offset = roundUp(offset, a);
    members.push({ ...d, offset, size: n.size, align: a });
    offset += n.size;
    align = Math.max(align, a);
  }
  return { name, kind: 'struct', packed: opts.packed, size: roundUp(offset, align), align, members };
}

/** Declare a C union; every member sits at offset 0. */
export function union(name: string, decls: readonly MemberDecl[], opts: { packed: boolean }): Layout {
  let size = 0;
  let align = 1;
  const members: Member[] = [];
  for (const d of decls) {
    const n = natural(d);
    const a = opts.packed ? 1 : n.align;
    members.push({ ...d, offset: 0, size: n.size, align: a });
    size = Math.max(size, n.size);
    align = Math.max(align, a);
  }
  return { name, kind: 'union', packed: opts.packed, size: roundUp(size, align), align, members };
}

/** Every leaf of a layout with absolute offsets; union members all appear. */
export function leaves(layout: Layout, base = 0, prefix = ''): Leaf[] {
  const out: Leaf[] = [];
  for (const m of layout.members) {
    const path = prefix ? `${prefix}.${m.name}` : m.name;
    if (m.type === 'nested') out.push(...leaves(m.layout, base + m.offset, path));
    else out.push({ path, offset: base + m.offset, size: m.size, type: m.type });
  }
  return out;
}

/** Find a member by dotted path; returns its absolute offset and layout. */
export function locate(layout: Layout, path: string): { offset: number; member: Member } {
  let base = 0;
  let cur: Layout = layout;
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    const m = cur.members.find((x) => x.name === parts[i]);
    if (!m) throw new Error(`${layout.name}: no member ${path}`);
    if (i === parts.length - 1) return { offset: base + m.offset, member: m };
    if (m.type !== 'nested') throw new Error(`${layout.name}: ${parts.slice(0, i + 1).join('.')} is not an aggregate`);
    base += m.offset;
    cur = m.layout;
  }
  throw new Error(`${layout.name}: empty path`);
}

/** Decoded value of a leaf: numbers for scalars (bigint for u64), a view for byte arrays. */
export type LeafValue = number | bigint | Buffer;

/** Values of the leaves of one aggregate, keyed by member name (nested aggregates nest). */
export interface Decoded {
  [name: string]: LeafValue | Decoded;
}

/** Read one little-endian scalar (bigint for u64). */
export function readScalar(buf: Buffer, off: number, type: Scalar): number | bigint {
  switch (type) {
    case 'u8':
      return buf.readUInt8(off);
    case 'u16':
      return buf.readUInt16LE(off);
    case 'u32':
      return buf.readUInt32LE(off);
    case 'i32':
      return buf.readInt32LE(off);
    case 'u64':
      return buf.readBigUInt64LE(off);
  }
}

/** Write one little-endian scalar. */
export function writeScalar(buf: Buffer, off: number, type: Scalar, v: number | bigint): void {
  switch (type) {
    case 'u8':
      buf.writeUInt8(Number(v), off);
      return;
    case 'u16':
      buf.writeUInt16LE(Number(v), off);
      return;
    case 'u32':
      buf.writeUInt32LE(Number(v), off);
      return;
    case 'i32':
      buf.writeInt32LE(Number(v), off);
      return;
    case 'u64':
      buf.writeBigUInt64LE(BigInt(v), off);
      return;
  }
}

/**
 * Read one aggregate at `base`. Only struct members are expanded; for a
 * union the caller names the member it wants with `pick` (a path below the
 * union), since C cannot tell which one is live either.
 * The buffer must hold base + layout.size bytes (callers check sizes first).
 */
export function readAggregate(buf: Buffer, layout: Layout, base = 0): Decoded {
  const out: Decoded = {};
  for (const m of layout.members) {
    const off = base + m.offset;
    if (m.type === 'nested') {
      if (m.layout.kind === 'union') continue;
      out[m.name] = readAggregate(buf, m.layout, off);
    } else if (m.type === 'bytes') {
      out[m.name] = buf.subarray(off, off + m.size);
    } else {
      out[m.name] = readScalar(buf, off, m.type);
    }
  }
  return out;
}

/**
 * Write values into one aggregate at `base`. Missing members stay as they
 * are in `buf` (callers start from a zeroed buffer). Byte arrays take a
 * Buffer no longer than the field; the rest of the field is zeroed.
 */
export function writeAggregate(buf: Buffer, layout: Layout, values: Decoded, base = 0): void {
  for (const m of layout.members) {
    const v = values[m.name];
    if (v === undefined) continue;
    const off = base + m.offset;
    if (m.type === 'nested') {
      if (Buffer.isBuffer(v) || typeof v !== 'object') throw new TypeError(`${layout.name}.${m.name}: expected an object`);
      writeAggregate(buf, m.layout, v as Decoded, off);
    } else if (m.type === 'bytes') {
      if (!Buffer.isBuffer(v)) throw new TypeError(`${layout.name}.${m.name}: expected bytes`);
      if (v.length > m.size) throw new RangeError(`${layout.name}.${m.name}: ${v.length} bytes do not fit in ${m.size}`);
      v.copy(buf, off);
      buf.fill(0, off + v.length, off + m.size);
    } else {
      if (typeof v !== 'number' && typeof v !== 'bigint') throw new TypeError(`${layout.name}.${m.name}: expected a number`);
      writeScalar(buf, off, m.type, v);
    }
  }
}
