/**
 * The simulator's socket transport: each system call the daemon makes on a
 * device node travels as one SOCK_SEQPACKET datagram to the simulator,
 * which answers with one datagram. Calls that block in the kernel (read,
 * poll) block here too: the answer comes when the simulated driver has
 * something, so the daemon-side code path is the same as on a real node.
 *
 * Request:  u8 call, u8 0, u16 0, u32 arg, payload
 *   call OPEN (arg = pid), READ (arg = count), WRITE (payload = data),
 *   POLL (arg = events), IOCTL (arg = request number, payload = in buffer),
 *   CANCEL (ends a pending POLL with revents 0; no answer of its own).
 * Answer:   u8 call, u8 errno-name length, u16 0, i32 result, errno name, payload
 *   result >= 0: success (READ/WRITE count, POLL revents, IOCTL value) and
 *   payload = the bytes read / copied out; otherwise the errno name says
 *   why (names, not numbers: the FreeBSD driver's "-EBUSY" survives).
 */
export const SP_OPEN = 1;
export const SP_READ = 2;
export const SP_WRITE = 3;
export const SP_POLL = 4;
export const SP_IOCTL = 5;
export const SP_CANCEL = 6;

export const SP_CALL_NAMES: Record<number, string> = {
  [SP_OPEN]: 'open',
  [SP_READ]: 'read',
  [SP_WRITE]: 'write',
  [SP_POLL]: 'poll',
  [SP_IOCTL]: 'ioctl',
  [SP_CANCEL]: 'cancel',
};

/** Largest datagram either side sends: a KVP message plus headers, with room to spare. */
export const SP_MAX_DATAGRAM = 65536;

const REQ_HDR = 8;
const ANS_HDR = 8;

export interface SpRequest {
  call: number;
  arg: number;
  payload: Buffer;
}

export interface SpAnswer {
  call: number;
  result: number;
  errno?: string;
  payload: Buffer;
}

export function encodeRequest(call: number, arg: number, payload?: Buffer): Buffer {
  const buf = Buffer.alloc(REQ_HDR + (payload?.length ?? 0));
  buf.writeUInt8(call, 0);
  buf.writeUInt32LE(arg >>> 0, 4);
  payload?.copy(buf, REQ_HDR);
  return buf;
}

/** Undefined when the datagram is too short to be a request. */
export function decodeRequest(buf: Buffer): SpRequest | undefined {
  if (buf.length < REQ_HDR) return undefined;
  return { call: buf.readUInt8(0), arg: buf.readUInt32LE(4), payload: buf.subarray(REQ_HDR) };
}

export function encodeAnswer(call: number, result: number, errno?: string, payload?: Buffer): Buffer {
  const e = Buffer.from(errno ?? '', 'ascii');
  const buf = Buffer.alloc(ANS_HDR + e.length + (payload?.length ?? 0));
  buf.writeUInt8(call, 0);
  buf.writeUInt8(e.length, 1);
  buf.writeInt32LE(errno ? -1 : result, 4);
  e.copy(buf, ANS_HDR);
  payload?.copy(buf, ANS_HDR + e.length);
  return buf;
}

/** Undefined when the datagram is not a well-formed answer. */
export function decodeAnswer(buf: Buffer): SpAnswer | undefined {
  if (buf.length < ANS_HDR) return undefined;
  const elen = buf.readUInt8(1);
  if (buf.length < ANS_HDR + elen) return undefined;
  const result = buf.readInt32LE(4);
  const errno = elen ? buf.subarray(ANS_HDR, ANS_HDR + elen).toString('ascii') : undefined;
  return { call: buf.readUInt8(0), result, errno, payload: buf.subarray(ANS_HDR + elen) };
}
