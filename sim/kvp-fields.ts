/**
 * Where the fields the kernels convert live, looked up once from the
 * declared layouts. Offsets are the same in both flavors and in the host
 * form (spec/wire.md section 5); only the total size differs.
 */
import { MAX_ADAPTER_ID_SIZE, MAX_GATEWAY_SIZE, MAX_IP_ADDR_SIZE } from '../common/wire/constants.js';
import { locate, type Layout } from '../common/wire/layout.js';
import { HOST_KVP_IP_MSG, LAYOUTS } from '../common/wire/structs.js';

export interface Field {
  offset: number;
  size: number;
}

const MSG = LAYOUTS.freebsd.kvpMsg;

function at(layout: Layout, path: string): Field {
  const { offset, member } = locate(layout, path);
  return { offset, size: member.size };
}

/** One hv_kvp_exchg_msg_value inside a body member. */
export interface ExchangeFields {
  valueType: Field;
  keySize: Field;
  valueSize: Field;
  key: Field;
  value: Field;
}

function exchange(variant: string): ExchangeFields {
  const p = `body.${variant}.data`;
  return {
    valueType: at(MSG, `${p}.value_type`),
    keySize: at(MSG, `${p}.key_size`),
    valueSize: at(MSG, `${p}.value_size`),
    key: at(MSG, `${p}.key`),
    value: at(MSG, `${p}.value`),
  };
}

/** Header and body fields by op (offsets within hv_kvp_msg, host or daemon form). */
export const OP = at(MSG, 'header.kvp_hdr.operation');
export const POOL = at(MSG, 'header.kvp_hdr.pool');
export const GET = exchange('kvp_get');
export const SET = exchange('kvp_set');
export const ENUM = exchange('kvp_enum_data');
export const ENUM_INDEX = at(MSG, 'body.kvp_enum_data.index');
export const DELETE = { keySize: at(MSG, 'body.kvp_delete.key_size'), key: at(MSG, 'body.kvp_delete.key') };

/** The IP-info strings with their size on the host side in UTF-16 units (spec/wire.md section 6). */
export const IP_STRINGS = ['adapter_id', 'ip_addr', 'sub_net', 'gate_way', 'dns_addr'] as const;
export type IpString = (typeof IP_STRINGS)[number];

function ipFields(layout: Layout, prefix: string): Record<IpString | 'addr_family' | 'dhcp_enabled', Field> {
  const f = (n: string): Field => at(layout, `${prefix}.${n}`);
  return {
    adapter_id: f('adapter_id'),
    addr_family: f('addr_family'),
    dhcp_enabled: f('dhcp_enabled'),
    ip_addr: f('ip_addr'),
    sub_net: f('sub_net'),
    gate_way: f('gate_way'),
    dns_addr: f('dns_addr'),
  };
}

/** hv_kvp_ipaddr_value inside the daemon's hv_kvp_msg (UTF-8). */
export const DAEMON_IP = ipFields(MSG, 'body.kvp_ip_val');
/** hv_kvp_ipaddr_value inside the host's hv_kvp_ip_msg (UTF-16LE). */
export const HOST_IP = ipFields(HOST_KVP_IP_MSG, 'kvp_ip_val');

/** A view of one field. */
export const view = (buf: Buffer, f: Field): Buffer => buf.subarray(f.offset, f.offset + f.size);

/**
 * The bound both kernels pass for each IP string, in either direction:
 * source UTF-16 units and destination UTF-8 bytes host -> daemon,
 * destination UTF-16 units daemon -> host (MAX_ADAPTER_ID_SIZE etc.).
 */
export const IP_LIMITS: Record<IpString, number> = {
  adapter_id: MAX_ADAPTER_ID_SIZE,
  ip_addr: MAX_IP_ADDR_SIZE,
  sub_net: MAX_IP_ADDR_SIZE,
  gate_way: MAX_GATEWAY_SIZE,
  dns_addr: MAX_IP_ADDR_SIZE,
};
