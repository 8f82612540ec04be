import { describe, expect, it } from 'vitest';
import {
  FF_CANCEL,
  FF_IOCTL,
  FF_NOTIFY,
  FF_OPEN,
  FF_POLL,
  FF_READ,
  FF_RELEASE,
  FF_WRITE,
  FrameReader,
  decodeRequest,
  encodeFrame,
  encodeReply,
} from './fuse-proto.js';

/** A frame as the C front-end lays it out, built byte by byte. */
function cFrame(type: number, id: number, body: number[]): Buffer {
  const len = 16 + body.length;
  return Buffer.from([len & 0xff, len >> 8, 0, 0, type, 0, 0, 0, id, 0, 0, 0, 0, 0, 0, 0, ...body]);
}

const u32 = (v: number) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24];
const u64 = (v: number) => [...u32(v), 0, 0, 0, 0];

describe('FUSE front-end channel frames', () => {
  it('REPLY: header, i64 result, then the data', () => {
    expect(encodeReply(7n, -22, Buffer.from([0xaa]))).toEqual(
      Buffer.from([25, 0, 0, 0, 128, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0xea, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xaa]),
    );
    expect(encodeFrame(FF_NOTIFY, 3n)).toEqual(Buffer.from([16, 0, 0, 0, 129, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]));
  });

  it('decodes each request the C side sends', () => {
    const r = new FrameReader();
    const frames = r.push(
      Buffer.concat([
        cFrame(FF_OPEN, 1, [...u32(2), ...u32(4242), ...u32(0o4002)]),
        cFrame(FF_READ, 2, [...u64(9), ...u32(7432), ...u32(0o4002)]),
        cFrame(FF_WRITE, 3, [...u64(9), ...u32(2), ...u32(0), 1, 2, 3]),
        cFrame(FF_POLL, 4, [...u64(9), ...u32(1), ...u32(1)]),
        cFrame(FF_IOCTL, 5, [...u64(9), ...u32(0x80407602), ...u32(64)]),
        cFrame(FF_RELEASE, 0, u64(9)),
        cFrame(FF_CANCEL, 2, []),
      ]),
    );
    expect(frames.map(decodeRequest)).toEqual([
      { type: FF_OPEN, id: 1n, node: 2, pid: 4242, flags: 0o4002 },
      { type: FF_READ, id: 2n, fh: 9n, count: 7432, flags: 0o4002 },
      { type: FF_WRITE, id: 3n, fh: 9n, flags: 2, data: Buffer.from([1, 2, 3]) },
      { type: FF_POLL, id: 4n, fh: 9n, events: 1, notify: true },
      { type: FF_IOCTL, id: 5n, fh: 9n, cmd: 0x80407602, outSize: 64, data: Buffer.alloc(0) },
      { type: FF_RELEASE, id: 0n, fh: 9n },
      { type: FF_CANCEL, id: 2n },
    ]);
  });

  it('a frame split across chunks comes out once, whole', () => {
    const f = cFrame(FF_WRITE, 3, [...u64(1), ...u32(0), ...u32(0), ...Buffer.alloc(100, 7)]);
    const r = new FrameReader();
    const out = [];
    for (let i = 0; i < f.length; i += 13) out.push(...r.push(f.subarray(i, i + 13)));
    expect(out).toHaveLength(1);
    expect(out[0]!.body.equals(f.subarray(16))).toBe(true);
  });

  it('bad input: an impossible length throws, a short body or unknown type is an error naming it', () => {
    expect(() => new FrameReader().push(Buffer.from([4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/bad frame length 4/);
    expect(() => new FrameReader().push(Buffer.from([0, 0, 0, 0x7f, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/bad frame length/);
    const [short] = new FrameReader().push(cFrame(FF_READ, 1, u32(5)));
    expect(decodeRequest(short!)).toEqual(new Error('FUSE front-end: READ frame of 4 bytes, need 16'));
    const [odd] = new FrameReader().push(cFrame(77, 1, []));
    expect(decodeRequest(odd!)).toEqual(new Error('FUSE front-end: unknown frame type 77'));
  });
});
