/**
 * How both kernels answer the host: in the host's own receive buffer, with
 * the IC status set and flags TRANSACTION|RESPONSE, sent back with the
 * length that was received.
 */
import { HV_E_FAIL, HV_S_OK, ICMSGHDRFLAG_RESPONSE, ICMSGHDRFLAG_TRANSACTION, ICMSG_HDR, type IcVersion } from '../common/wire/constants.js';
import { decodeNegotiate, encodeNegotiate } from '../common/wire/host.js';
import { isWireError } from '../common/wire/errors.js';
import { locate } from '../common/wire/layout.js';
import { IC_HEADER } from '../common/wire/structs.js';
import type { RingPacket, SimChannel } from './channel.js';

const STATUS_AT = locate(IC_HEADER, 'status').offset;
const FLAGS_AT = locate(IC_HEADER, 'flags').offset;
const MSGTYPE_AT = locate(IC_HEADER, 'msgtype').offset;

/**
 * The kernel's copy of a host packet, zero-padded to at least `size` bytes.
 * Real receive buffers hold stale bytes past the packet; zeros keep the
 * simulation deterministic (both kernels read fixed-size structs from it).
 */
export function receiveBuffer(packet: Buffer, size: number): Buffer {
  const b = Buffer.alloc(Math.max(size, packet.length));
  packet.copy(b);
  return b;
}

/** IC message type of a packet already known to hold the 28 header bytes (zero-padded otherwise). */
export const icMsgType = (buf: Buffer): number => (buf.length >= MSGTYPE_AT + 2 ? buf.readUInt16LE(MSGTYPE_AT) : 0);

/** Set status and response flags in the receive buffer; the answer is its first `length` bytes. */
export function finishReply(buf: Buffer, status: number, length: number): Buffer {
  buf.writeUInt32LE(status >>> 0, STATUS_AT);
  buf.writeUInt8(ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE, FLAGS_AT);
  return Buffer.from(buf.subarray(0, length));
}

/** Versions a kernel accepts, in its order of preference. */
export interface IcVersions {
  framework: readonly IcVersion[];
  message: readonly IcVersion[];
}

const same = (a: IcVersion, b: IcVersion): boolean => a.major === b.major && a.minor === b.minor;

/**
 * Answer a NEGOTIATE in the kernel: the first framework and message
 * versions of ours that the host offers, written back as one pair each
 * (counts 1/1, S_OK); no common version → counts 0/0 and HV_E_FAIL.
 */
export function negotiateReply(packet: Buffer, ours: IcVersions): { packet: Buffer; status: number } {
  const buf = receiveBuffer(packet, ICMSG_HDR);
  const offered = decodeNegotiate(buf.subarray(ICMSG_HDR));
  const fw = isWireError(offered) ? undefined : ours.framework.find((v) => offered.framework.some((o) => same(o, v)));
  const msg = isWireError(offered) ? undefined : ours.message.find((v) => offered.message.some((o) => same(o, v)));
  const ok = fw !== undefined && msg !== undefined;
  const chosen = encodeNegotiate(ok ? { framework: [fw], message: [msg] } : { framework: [], message: [] });
  // Only within what was received: the answer is sent with the received length.
  chosen.copy(buf, ICMSG_HDR, 0, Math.min(chosen.length, Math.max(0, packet.length - ICMSG_HDR)));
  const status = ok ? HV_S_OK : HV_E_FAIL;
  return { packet: finishReply(buf, status, packet.length), status };
}

/** Answer a NEGOTIATE from the kernel (outcome 'kernel'), as every driver does: it never reaches a daemon. */
export function answerNegotiate(channel: SimChannel, pkt: RingPacket, ours: IcVersions): void {
  const r = negotiateReply(pkt.data, ours);
  channel.answer(pkt.id, { status: r.status, outcome: 'kernel', packet: r.packet });
}
