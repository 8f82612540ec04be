/**
 * What the simulated host puts on the wire for each SimHost request, and
 * how it reads the answer back (common/wire/host.ts does the encoding).
 */
import { ADDR_FAMILY_IPV4, ADDR_FAMILY_IPV6, HV_S_OK, ICMSGTYPE_KVPEXCHANGE, ICMSGTYPE_NEGOTIATE, ICMSGTYPE_VSS, IC_FRAMEWORK_VERSION, KVP_MSG_VERSION_WIN8, KVP_OP, VSS_MSG_VERSION, VSS_OP_AUTO_RECOVER, VSS_OP_BU_COMPLETE, VSS_OP_CREATE, VSS_OP_DELETE, VSS_OP_FREEZE, VSS_OP_GET_DM_INFO, VSS_OP_HOT_BACKUP, VSS_OP_THAW, statusName } from '../common/wire/constants.js';
import { isWireError } from '../common/wire/errors.js';
import {
  decodeHostIpMsg,
  decodeHostKvp,
  decodeHostVss,
  decodeIcPacket,
  encodeHostIpMsg,
  encodeHostKvp,
  encodeHostVss,
  encodeIcPacket,
  encodeNegotiate,
  type HostKvpValue,
} from '../common/wire/host.js';
import type { HostResultBase, KvpHostRequest, KvpHostResult, RawResult, VssHostOp, VssHostResult } from './host-api.js';
import type { HostCallResult } from './host-port.js';

/** Host VSS op names -> op codes (host payload byte 0). */
export const VSS_HOST_OPS: Record<VssHostOp, number> = {
  check: VSS_OP_HOT_BACKUP,
  freeze: VSS_OP_FREEZE,
  thaw: VSS_OP_THAW,
  create: VSS_OP_CREATE,
  delete: VSS_OP_DELETE,
  get_dm_info: VSS_OP_GET_DM_INFO,
  bu_complete: VSS_OP_BU_COMPLETE,
  auto_recover: VSS_OP_AUTO_RECOVER,
};

const KVP_HOST_OPS: Record<KvpHostRequest['op'], number> = {
  get: KVP_OP.GET,
  set: KVP_OP.SET,
  delete: KVP_OP.DELETE,
  enum: KVP_OP.ENUMERATE,
  ipinfo: KVP_OP.GET_IP_INFO,
  setip: KVP_OP.SET_IP_INFO,
};

/** The NEGOTIATE the host sends first on a channel: framework 3.0 and the service's message version. */
export function negotiatePacket(service: 'kvp' | 'vss'): Buffer {
  const message = [service === 'kvp' ? KVP_MSG_VERSION_WIN8 : VSS_MSG_VERSION];
  return encodeIcPacket({ msgtype: ICMSGTYPE_NEGOTIATE }, encodeNegotiate({ framework: [IC_FRAMEWORK_VERSION], message }));
}

function setValue(req: Extract<KvpHostRequest, { op: 'set' }>): HostKvpValue {
  const type = req.valueType ?? (typeof req.value === 'string' ? 'sz' : typeof req.value === 'bigint' ? 'u64' : 'u32');
  if (type === 'sz') return { type, text: String(req.value) };
  if (type === 'u64') return { type, value: BigInt(req.value) };
  const n = Number(req.value);
  if (!Number.isInteger(n)) throw new RangeError(`set: ${String(req.value)} is not an integer for a u32 value`);
  return { type, value: n };
}

/** The IC packet for a KVP request; throws RangeError when a field does not fit. */
export function kvpPacket(req: KvpHostRequest, transactionId: number): Buffer {
  const operation = KVP_HOST_OPS[req.op];
  const both = ADDR_FAMILY_IPV4 | ADDR_FAMILY_IPV6;
  let payload;
  switch (req.op) {
    case 'get':
    case 'delete':
      payload = encodeHostKvp({ operation, pool: req.pool, key: req.key });
      break;
    case 'set':
      payload = encodeHostKvp({ operation, pool: req.pool, key: req.key, value: setValue(req) });
      break;
    case 'enum':
      payload = encodeHostKvp({ operation, pool: req.pool, index: req.index });
      break;
    case 'ipinfo':
      payload = encodeHostIpMsg({ operation, pool: 0, adapterId: req.mac, addrFamily: req.addrFamily ?? both, dhcpEnabled: 0, ipAddr: '', subNet: '', gateWay: '', dnsAddr: '' });
      break;
    case 'setip':
      payload = encodeHostIpMsg({
        operation,
        pool: 0,
        adapterId: req.adapterId,
        addrFamily: req.addrFamily ?? both,
        dhcpEnabled: req.dhcp ? 1 : 0,
        ipAddr: req.ip,
        subNet: req.subnet,
        gateWay: req.gateway,
        dnsAddr: req.dns,
      });
      break;
  }
  if (isWireError(payload)) throw new RangeError(`${req.op}: ${payload.message}`);
  return encodeIcPacket({ msgtype: ICMSGTYPE_KVPEXCHANGE, msgVersion: KVP_MSG_VERSION_WIN8, transactionId }, payload);
}

/** The IC packet for a VSS request. */
export function vssPacket(op: VssHostOp, transactionId: number): Buffer {
  return encodeIcPacket({ msgtype: ICMSGTYPE_VSS, msgVersion: VSS_MSG_VERSION, transactionId }, encodeHostVss({ operation: VSS_HOST_OPS[op] }));
}

function base(r: HostCallResult): HostResultBase {
  const status = r.answer?.status;
  return { outcome: r.outcome, ms: r.ms, ...(status !== undefined ? { status, statusName: statusName(status) } : {}) };
}

function payloadOf(r: HostCallResult): Buffer | undefined {
  const p = r.answer?.packet ? decodeIcPacket(r.answer.packet) : undefined;
  return p && !isWireError(p) ? p.payload : undefined;
}

/** What the host read back for a KVP request: key/value for GET and ENUMERATE, addresses for GET_IP_INFO (on HV_S_OK). */
export function kvpResult(req: KvpHostRequest, r: HostCallResult): KvpHostResult {
  const out: KvpHostResult = base(r);
  const payload = payloadOf(r);
  if (!payload || r.answer?.status !== HV_S_OK) return out;
  if (req.op === 'get' || req.op === 'enum') {
    const x = decodeHostKvp(payload, KVP_HOST_OPS[req.op]);
    if (!isWireError(x)) Object.assign(out, { key: x.key, value: x.value, keySize: x.keySize, valueSize: x.valueSize, valueType: x.valueType });
  } else if (req.op === 'ipinfo') {
    const ip = decodeHostIpMsg(payload);
    if (!isWireError(ip)) {
      const { adapterId, addrFamily, dhcpEnabled, ipAddr, subNet, gateWay, dnsAddr } = ip;
      out.ipInfo = { adapterId, addrFamily, dhcpEnabled, ipAddr, subNet, gateWay, dnsAddr };
    }
  }
  return out;
}

/** What the host read back for a VSS request; flags for CHECK and GET_DM_INFO. */
export function vssResult(op: VssHostOp, r: HostCallResult): VssHostResult {
  const out: VssHostResult = base(r);
  const payload = payloadOf(r);
  if (payload && (op === 'check' || op === 'get_dm_info')) {
    const m = decodeHostVss(payload);
    if (!isWireError(m)) out.flags = m.flags;
  }
  return out;
}

/** A raw request's result: the daemon's reply bytes exactly as written, when it replied in time. */
export function rawResult(r: HostCallResult): RawResult {
  return { ...base(r), ...(r.answer?.reply ? { reply: r.answer.reply } : {}) };
}
