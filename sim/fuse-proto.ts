/**
 * The channel between `hvsim serve --fuse` and its FUSE front-end
 * (sim/fuse/hvsim-fuse.c, whose header comment describes the same frames;
 * keep both in step). A stream of frames, little-endian:
 *
 *   u32 length (whole frame), u16 type, u16 0, u64 id, body
 *
 * The front-end sends READY once mounted, then one request frame per FUSE
 * call (OPEN, READ, WRITE, POLL, IOCTL: `id` names the request; RELEASE and
 * CANCEL are not answered). The simulator answers each request with one
 * REPLY (i64 result, then data: a file handle, count, revents or ioctl
 * value, or minus a Linux errno) and sends NOTIFY (id = file handle) when
 * a file's poll state changed.
 */
export const FF_OPEN = 1;
export const FF_READ = 2;
export const FF_WRITE = 3;
export const FF_POLL = 4;
export const FF_IOCTL = 5;
export const FF_RELEASE = 6;
export const FF_CANCEL = 7;
export const FF_READY = 9;
export const FF_REPLY = 128;
export const FF_NOTIFY = 129;

export const FF_HEADER = 16;
/** Largest frame either side accepts (a FUSE write is at most 1 MiB; KVP messages are 7.4 KB). */
export const FF_MAX_FRAME = 4 << 20;

export interface Frame {
  type: number;
  id: bigint;
  body: Buffer;
}

/** One frame with `body` and optional trailing `data`. */
export function encodeFrame(type: number, id: bigint, body: Buffer = Buffer.alloc(0), data?: Buffer): Buffer {
  const len = FF_HEADER + body.length + (data?.length ?? 0);
  const f = Buffer.alloc(len);
  f.writeUInt32LE(len, 0);
  f.writeUInt16LE(type, 4);
  f.writeBigUInt64LE(id, 8);
  body.copy(f, FF_HEADER);
  data?.copy(f, FF_HEADER + body.length);
  return f;
}

/** REPLY: `result` >= 0 on success, or minus an errno number. */
export function encodeReply(id: bigint, result: number | bigint, data?: Buffer): Buffer {
  const body = Buffer.alloc(8);
  body.writeBigInt64LE(BigInt(result), 0);
  return encodeFrame(FF_REPLY, id, body, data);
}

/** Splits a byte stream into frames; throws on a frame whose length cannot be right. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames: Frame[] = [];
    let off = 0;
    while (this.buf.length - off >= FF_HEADER) {
      const len = this.buf.readUInt32LE(off);
      if (len < FF_HEADER || len > FF_MAX_FRAME) throw new Error(`FUSE front-end channel: bad frame length ${len}`);
      if (this.buf.length - off < len) break;
      frames.push({ type: this.buf.readUInt16LE(off + 4), id: this.buf.readBigUInt64LE(off + 8), body: Buffer.from(this.buf.subarray(off + FF_HEADER, off + len)) });
      off += len;
    }
    this.buf = this.buf.subarray(off);
    return frames;
  }
}

/** Decoded request bodies (front-end -> simulator). */
export type FuseRequest =
  | { type: typeof FF_OPEN; id: bigint; node: number; pid: number; flags: number }
  | { type: typeof FF_READ; id: bigint; fh: bigint; count: number; flags: number }
  | { type: typeof FF_WRITE; id: bigint; fh: bigint; flags: number; data: Buffer }
  | { type: typeof FF_POLL; id: bigint; fh: bigint; events: number; notify: boolean }
  | { type: typeof FF_IOCTL; id: bigint; fh: bigint; cmd: number; outSize: number; data: Buffer }
  | { type: typeof FF_RELEASE; id: bigint; fh: bigint }
  | { type: typeof FF_CANCEL; id: bigint }
  | { type: typeof FF_READY; id: bigint };

/** A request frame decoded, or an Error naming what is wrong with it. */
export function decodeRequest(f: Frame): FuseRequest | Error {
  const b = f.body;
  const need = (n: number, what: string) => (b.length < n ? new Error(`FUSE front-end: ${what} frame of ${b.length} bytes, need ${n}`) : undefined);
  switch (f.type) {
    case FF_OPEN:
      return need(12, 'OPEN') ?? { type: FF_OPEN, id: f.id, node: b.readUInt32LE(0), pid: b.readUInt32LE(4), flags: b.readUInt32LE(8) };
    case FF_READ:
      return need(16, 'READ') ?? { type: FF_READ, id: f.id, fh: b.readBigUInt64LE(0), count: b.readUInt32LE(8), flags: b.readUInt32LE(12) };
    case FF_WRITE:
      return need(16, 'WRITE') ?? { type: FF_WRITE, id: f.id, fh: b.readBigUInt64LE(0), flags: b.readUInt32LE(8), data: b.subarray(16) };
    case FF_POLL:
      return need(16, 'POLL') ?? { type: FF_POLL, id: f.id, fh: b.readBigUInt64LE(0), events: b.readUInt32LE(8), notify: b.readUInt32LE(12) !== 0 };
    case FF_IOCTL:
      return need(16, 'IOCTL') ?? { type: FF_IOCTL, id: f.id, fh: b.readBigUInt64LE(0), cmd: b.readUInt32LE(8), outSize: b.readUInt32LE(12), data: b.subarray(16) };
    case FF_RELEASE:
      return need(8, 'RELEASE') ?? { type: FF_RELEASE, id: f.id, fh: b.readBigUInt64LE(0) };
    case FF_CANCEL:
      return { type: FF_CANCEL, id: f.id };
    case FF_READY:
      return { type: FF_READY, id: f.id };
    default:
      return new Error(`FUSE front-end: unknown frame type ${f.type}`);
  }
}
