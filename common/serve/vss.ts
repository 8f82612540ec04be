/**
 * The VSS message protocols for the daemon loop: Linux moves 12-byte
 * hv_vss_msg with read()/write(); FreeBSD fetches and answers a 64-byte
 * hv_vss_opt_msg with the IOCHVVSSREAD/IOCHVVSSWRITE ioctls.
 */
import { ioctlNumbers } from '../device/ioctl.js';
import type { Device } from '../device/types.js';
import {
  HV_E_FAIL,
  HV_S_OK,
  HV_VSS_CHECK,
  HV_VSS_FREEZE,
  HV_VSS_THAW,
  VSS_FAIL,
  VSS_OP_FREEZE,
  VSS_OP_HOT_BACKUP,
  VSS_OP_THAW,
  VSS_SUCCESS,
  type Flavor,
} from '../wire/constants.js';
import { WireError } from '../wire/errors.js';
import { decodeFreebsdVss, decodeLinuxVss, encodeFreebsdVss } from '../wire/vss.js';
import { vssMsgSize } from '../wire/structs.js';
import type { Protocol } from './loop.js';

export type VssKind = 'check' | 'freeze' | 'thaw' | 'unknown';

/** A VSS request, the same shape for both flavors. */
export interface VssRequest {
  kind: VssKind;
  /** The op as the flavor numbers it (Linux host op, FreeBSD user op). */
  op: number;
  /** FreeBSD transaction id. */
  msgid?: bigint;
}

/** A VSS answer: HV_S_OK or a failure status (FreeBSD maps it to VSS_SUCCESS/VSS_FAIL). */
export interface VssReply {
  status: number;
}

const LINUX_KINDS: Record<number, VssKind> = { [VSS_OP_HOT_BACKUP]: 'check', [VSS_OP_FREEZE]: 'freeze', [VSS_OP_THAW]: 'thaw' };
const FREEBSD_KINDS: Record<number, VssKind> = { [HV_VSS_CHECK]: 'check', [HV_VSS_FREEZE]: 'freeze', [HV_VSS_THAW]: 'thaw' };

function linuxProtocol(): Protocol<VssRequest, VssReply> {
  const size = vssMsgSize('linux');
  const withStatus = (raw: Buffer, status: number) => {
    const out = Buffer.alloc(size);
    raw.copy(out, 0, 0, Math.min(raw.length, size));
    out.writeUInt32LE(status >>> 0, 0);
    return out;
  };
  return {
    receive: (dev: Device) => dev.read(size),
    decode: (raw) => {
      const m = decodeLinuxVss(raw);
      if (m instanceof WireError) return m;
      return { kind: LINUX_KINDS[m.operation] ?? 'unknown', op: m.operation };
    },
    failure: (raw) => withStatus(raw, HV_E_FAIL),
    encode: (res, _req, raw) => withStatus(raw, res.status),
    send: (dev, reply) => dev.write(reply),
  };
}

function freebsdProtocol(): Protocol<VssRequest, VssReply> {
  const { IOCHVVSSREAD, IOCHVVSSWRITE } = ioctlNumbers();
  const answer = (raw: Buffer, ok: boolean) => {
    const m = decodeFreebsdVss(raw);
    if (m instanceof WireError) return undefined;
    return encodeFreebsdVss({ opt: m.opt, msgid: m.msgid, status: ok ? VSS_SUCCESS : VSS_FAIL });
  };
  return {
    receive: async (dev: Device) => {
      const out = await dev.ioctl(IOCHVVSSREAD, Buffer.alloc(vssMsgSize('freebsd')));
      // status 1 from IOCHVVSSREAD: the queue was empty (the request timed out meanwhile).
      return out.readUInt32LE(4) === 0 ? out : undefined;
    },
    decode: (raw) => {
      const m = decodeFreebsdVss(raw);
      if (m instanceof WireError) return m;
      return { kind: FREEBSD_KINDS[m.opt] ?? 'unknown', op: m.opt, msgid: m.msgid };
    },
    failure: (raw) => answer(raw, false),
    encode: (res, _req, raw) => answer(raw, res.status === HV_S_OK)!,
    send: async (dev, reply) => {
      await dev.ioctl(IOCHVVSSWRITE, reply);
    },
  };
}

/** The VSS protocol of one flavor. */
export const vssProtocol = (flavor: Flavor): Protocol<VssRequest, VssReply> =>
  flavor === 'linux' ? linuxProtocol() : freebsdProtocol();
