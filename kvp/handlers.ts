/**
 * One handler per KVP operation (a table, as FreeBSD's kvp_op_hdlrs[]),
 * over an injected pool store, Auto-pool intrinsics and IP functions.
 *
 * Statuses follow the C daemons where the host depends on them (pitfall
 * L2: HV_S_CONT for not found and for a rejected GET/SET/DELETE), and fix
 * what they got wrong: pool numbers above 4 get HV_E_FAIL (L3), unknown
 * ops HV_ERROR_NOT_SUPPORTED on both flavors (L14), GET returns the stored
 * value whatever value_size the kernel sent (F4/L25), keys are matched by
 * the string inside the field, not by key_size (F5), and values are cut at
 * a character boundary so the host's UTF-16 limits hold (F7).
 */
import type { Logger } from 'pino';
import type { KvpReply } from '../common/serve/kvp.js';
import { HV_ERROR_NOT_SUPPORTED, HV_E_FAIL, HV_S_CONT, HV_S_OK, KVP_MAX_KEY_SIZE, KVP_MAX_VALUE_SIZE, KVP_OP, KVP_OP_NAMES, KVP_POOL_AUTO, KVP_POOL_COUNT, KVP_POOL_NAMES, REG_SZ, statusName, type Flavor } from '../common/wire/constants.js';
import { WireError } from '../common/wire/errors.js';
import { getValueTarget, readExchange, readVariant, type KvpMessage } from '../common/wire/kvp.js';
import type { Decoded } from '../common/wire/layout.js';
import { readCString } from '../common/wire/strings.js';
import type { Intrinsics, IpInfo, IpInfoRequest, PoolRecord, PoolStore, SetIpRequest } from './types.js';

/** The host shows at most 254 UTF-16 units of a key and 1022 of a value (spec/wire.md section 7). */
export const HOST_KEY_UNITS = 254;
export const HOST_VALUE_UNITS = 1022;

export interface KvpHandlerDeps {
  flavor: Flavor;
  store: PoolStore;
  intrinsics: Intrinsics;
  getIpInfo: (req: IpInfoRequest) => Promise<IpInfo | { error: string }>;
  setIpInfo: (req: SetIpRequest) => Promise<{ status: number; detail: string }>;
  log: Logger;
  /** Log keys (never values) at info level; values only with debug. */
  debug?: boolean;
}

/** Cut text to at most `units` UTF-16 code units without splitting a surrogate pair. */
export function limitUnits(text: string, units: number): string {
  if (text.length <= units) return text;
  let end = units;
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // would split a pair
  return text.slice(0, end);
}

/** Fields of an exchange reply (GET/ENUMERATE): strings NUL-terminated, sizes counting the NUL. */
function exchangeFields(key: string, value: string): Decoded {
  const k = Buffer.from(limitUnits(key, HOST_KEY_UNITS), 'utf8').subarray(0, KVP_MAX_KEY_SIZE - 1);
  const v = Buffer.from(limitUnits(value, HOST_VALUE_UNITS), 'utf8').subarray(0, KVP_MAX_VALUE_SIZE - 1);
  return { value_type: REG_SZ, key_size: k.length + 1, value_size: v.length + 1, key: k, value: v };
}

/** Text of a stored record for the host; bytes that are not UTF-8 become U+FFFD rather than failing the walk. */
const recordText = (r: PoolRecord) => ({ key: r.key.toString('utf8'), value: r.value.toString('utf8') });

type OpHandler = (m: KvpMessage) => Promise<KvpReply> | KvpReply;

/** Build the KVP request handler for the daemon loop. */
export function createKvpHandler(d: KvpHandlerDeps): (m: KvpMessage) => Promise<KvpReply> {
  const poolName = (p: number) => KVP_POOL_NAMES[p] ?? String(p);
  const reject = (m: KvpMessage, status: number, why: string, key?: string): KvpReply => {
    d.log.warn({ op: KVP_OP_NAMES[m.operation] ?? m.operation, pool: m.pool, key, status: statusName(status) }, why);
    return { status };
  };

  /** The key and (for SET) value of a request, checked: NUL inside the field, UTF-8, non-empty key, sizes within the fields. */
  const keyOf = (m: KvpMessage, variant: 'kvp_get' | 'kvp_set'): { key: string; value: string } | string => {
    const ex = readExchange(m, variant);
    if (ex.keySize > KVP_MAX_KEY_SIZE || ex.valueSize > KVP_MAX_VALUE_SIZE) {
      return `key_size ${ex.keySize} or value_size ${ex.valueSize} larger than the field`;
    }
    const key = readCString(ex.key, 'key');
    if (key instanceof WireError) return key.message;
    if (key === '') return 'empty key';
    if (variant === 'kvp_get') return { key, value: '' };
    const value = readCString(ex.value, 'value');
    if (value instanceof WireError) return value.message;
    return { key, value };
  };

  const handlers: Record<number, OpHandler> = {
    [KVP_OP.SET]: (m) => {
      if (m.pool === KVP_POOL_AUTO) return reject(m, HV_S_CONT, 'the host may not write the Auto pool');
      const kv = keyOf(m, 'kvp_set');
      if (typeof kv === 'string') return reject(m, HV_S_CONT, `SET rejected: ${kv}`);
      d.store.set(m.pool, Buffer.from(kv.key, 'utf8'), Buffer.from(kv.value, 'utf8'));
      d.log.info({ op: 'set', pool: poolName(m.pool), key: kv.key, ...(d.debug ? { value: kv.value } : { bytes: Buffer.byteLength(kv.value) }) }, 'host set a key');
      return { status: HV_S_OK };
    },
    [KVP_OP.GET]: async (m) => {
      const kv = keyOf(m, 'kvp_get');
      if (typeof kv === 'string') return reject(m, HV_S_CONT, `GET rejected: ${kv}`);
      let found: { key: string; value: string } | undefined;
      if (m.pool === KVP_POOL_AUTO) {
        // The Auto pool has no file of ours: answer from the intrinsic values.
        for (let i = 0; !found; i++) {
          const item = await d.intrinsics.at(i);
          if (!item) break;
          if (item.key === kv.key) found = item;
        }
      } else {
        const r = d.store.get(m.pool, Buffer.from(kv.key, 'utf8'));
        if (r) found = recordText(r);
      }
      if (!found) return { status: HV_S_CONT };
      const fields = exchangeFields(found.key, found.value);
      // The value goes where this flavor's kernel reads it (see getValueTarget); Linux reads nothing else.
      if (getValueTarget(d.flavor).variant === 'kvp_enum_data') return { status: HV_S_OK, variant: 'kvp_enum_data', fields: { data: { value: fields.value! } } };
      return { status: HV_S_OK, variant: 'kvp_get', fields: { data: fields } };
    },
    [KVP_OP.DELETE]: (m) => {
      if (m.pool === KVP_POOL_AUTO) return reject(m, HV_S_CONT, 'the host may not delete from the Auto pool');
      const body = readVariant(m, 'kvp_delete');
      const key = readCString(body.key as Buffer, 'key');
      if (key instanceof WireError || key === '' || (body.key_size as number) > KVP_MAX_KEY_SIZE) {
        return reject(m, HV_S_CONT, `DELETE rejected: ${key instanceof WireError ? key.message : 'bad key'}`);
      }
      if (!d.store.delete(m.pool, Buffer.from(key, 'utf8'))) return { status: HV_S_CONT };
      d.log.info({ op: 'delete', pool: poolName(m.pool), key }, 'host deleted a key');
      return { status: HV_S_OK };
    },
    [KVP_OP.ENUMERATE]: async (m) => {
      const index = readExchange(m, 'kvp_enum_data').index ?? 0;
      const item = m.pool === KVP_POOL_AUTO ? await d.intrinsics.at(index) : ((r) => (r ? recordText(r) : undefined))(d.store.at(m.pool, index));
      // HV_S_CONT past the end is how the host's walk ends: not an error.
      if (!item) return { status: HV_S_CONT };
      return { status: HV_S_OK, variant: 'kvp_enum_data', fields: { index, data: exchangeFields(item.key, item.value) } };
    },
    [KVP_OP.GET_IP_INFO]: async (m) => {
      const body = readVariant(m, 'kvp_ip_val');
      const adapterId = readCString(body.adapter_id as Buffer, 'adapter_id');
      if (adapterId instanceof WireError) return reject(m, HV_E_FAIL, `GET_IP_INFO rejected: ${adapterId.message}`);
      const info = await d.getIpInfo({ adapterId, addrFamily: body.addr_family as number });
      if ('error' in info) return reject(m, HV_E_FAIL, `GET_IP_INFO ${adapterId}: ${info.error}`);
      const s = (t: string) => Buffer.from(t, 'utf8');
      return {
        status: HV_S_OK,
        variant: 'kvp_ip_val',
        fields: {
          adapter_id: s(info.adapterId),
          addr_family: info.addrFamily,
          dhcp_enabled: info.dhcpEnabled,
          ip_addr: s(info.ipAddr),
          sub_net: s(info.subNet),
          gate_way: s(info.gateWay),
          dns_addr: s(info.dnsAddr),
        },
      };
    },
    [KVP_OP.SET_IP_INFO]: async (m) => {
      const body = readVariant(m, 'kvp_ip_val');
      const text: Record<string, string> = {};
      for (const f of ['adapter_id', 'ip_addr', 'sub_net', 'gate_way', 'dns_addr']) {
        const v = readCString(body[f] as Buffer, f);
        if (v instanceof WireError) return reject(m, HV_E_FAIL, `SET_IP_INFO rejected: ${v.message}`);
        text[f] = v;
      }
      const r = await d.setIpInfo({
        adapterId: text.adapter_id!,
        addrFamily: body.addr_family as number,
        dhcpEnabled: body.dhcp_enabled as number,
        ipAddr: text.ip_addr!,
        subNet: text.sub_net!,
        gateWay: text.gate_way!,
        dnsAddr: text.dns_addr!,
      });
      const level = r.status === HV_S_OK ? 'info' : 'warn';
      d.log[level]({ op: 'set_ip_info', adapter: text.adapter_id, status: statusName(r.status) }, `IP injection: ${r.detail}`);
      return { status: r.status };
    },
  };

  return async (m) => {
    if (m.pool >= KVP_POOL_COUNT && m.operation !== KVP_OP.GET_IP_INFO && m.operation !== KVP_OP.SET_IP_INFO) {
      return reject(m, HV_E_FAIL, `pool ${m.pool} does not exist (0-4)`);
    }
    const h = handlers[m.operation];
    if (!h) return reject(m, HV_ERROR_NOT_SUPPORTED, `operation ${m.operation} is not supported`);
    return h(m);
  };
}
