import { describe, expect, it } from 'vitest';
import { HV_E_FAIL, HV_S_OK } from '../common/wire/constants.js';
import { decodeIcPacket, decodeNegotiate, encodeIcPacket, encodeNegotiate } from '../common/wire/host.js';
import { finishReply, negotiateReply, receiveBuffer } from './ic-reply.js';

const v = (major: number, minor = 0) => ({ major, minor });
const ours = { framework: [v(3)], message: [v(4), v(3), v(1)] };

describe('kernel NEGOTIATE answer', () => {
  it('picks the first of our versions the host offers and writes back one pair each', () => {
    const pkt = encodeIcPacket({ msgtype: 0, transactionId: 4 }, encodeNegotiate({ framework: [v(1), v(3)], message: [v(3), v(1)] }));
    const r = negotiateReply(pkt, ours);
    expect(r.status).toBe(HV_S_OK);
    expect(r.packet.length).toBe(pkt.length);
    const d = decodeIcPacket(r.packet);
    if ('code' in d) throw new Error('bad packet');
    expect(d.header).toMatchObject({ status: HV_S_OK, flags: 5, transactionId: 4 });
    expect(decodeNegotiate(d.payload)).toEqual({ framework: [v(3)], message: [v(3)] });
  });

  it('no common version: counts 0/0 and HV_E_FAIL; a garbled payload too', () => {
    const r = negotiateReply(encodeIcPacket({ msgtype: 0 }, encodeNegotiate({ framework: [v(2)], message: [v(4)] })), ours);
    expect(r.status).toBe(HV_E_FAIL);
    const d = decodeIcPacket(r.packet);
    expect('payload' in d && [...d.payload.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    expect(negotiateReply(encodeIcPacket({ msgtype: 0 }, Buffer.from([9, 0])), ours).status).toBe(HV_E_FAIL);
  });
});

describe('reply framing', () => {
  it('the receive buffer is zero-padded; the answer keeps the received length with status and flags 5', () => {
    const pkt = encodeIcPacket({ msgtype: 2, flags: 3 }, Buffer.from([1, 2]));
    const buf = receiveBuffer(pkt, 100);
    expect(buf.length).toBe(100);
    const out = finishReply(buf, HV_E_FAIL, pkt.length);
    expect(out.length).toBe(30);
    expect([out.readUInt32LE(20), out[25], out[28], out[29]]).toEqual([HV_E_FAIL, 5, 1, 2]);
  });
});
