/** The KVP message protocol for the daemon loop: one whole hv_kvp_msg per read() and per write(). */
import type { Device } from '../device/types.js';
import { HV_E_FAIL, type Flavor } from '../wire/constants.js';
import type { WireError } from '../wire/errors.js';
import { decodeKvp, replyFrom, variantLayout, type KvpMessage, type KvpVariant } from '../wire/kvp.js';
import { writeAggregate, type Decoded } from '../wire/layout.js';
import { KVP_BODY_OFFSET, kvpMsgSize } from '../wire/structs.js';
import type { Protocol } from './loop.js';

/** What a KVP handler answers: a status word, and for GET/ENUMERATE/GET_IP_INFO the body fields to fill in. */
export interface KvpReply {
  status: number;
  variant?: KvpVariant;
  fields?: Decoded;
}

/** KVP protocol of one flavor. Replies start from the request bytes, as both C daemons do, with the status over bytes 0..3. */
export function kvpProtocol(flavor: Flavor): Protocol<KvpMessage, KvpReply> {
  const size = kvpMsgSize(flavor);
  return {
    receive: (dev: Device) => dev.read(size),
    decode: (raw) => decodeKvp(raw, flavor),
    failure: (raw: Buffer, _err: WireError | Error) => {
      // Whatever arrived, the kernel only accepts a whole message back: pad or cut to size.
      const buf = Buffer.alloc(size);
      raw.copy(buf, 0, 0, Math.min(raw.length, size));
      return replyFrom(buf, HV_E_FAIL);
    },
    encode: (res, req) => {
      const out = replyFrom(req.raw, res.status);
      if (res.variant && res.fields) writeAggregate(out, variantLayout(flavor, res.variant), res.fields, KVP_BODY_OFFSET);
      return out;
    },
    send: (dev, reply) => dev.write(reply),
  };
}
