/**
 * The daemon <-> kernel structs of both flavors, each declared once
 * (spec/wire.md sections 5, 6 and 8). FreeBSD packs every KVP struct;
 * Linux leaves hv_kvp_msg_get/set/register/delete unpacked, and only the
 * delete body's 4-byte alignment changes anything: it pads the body union
 * from 7426 to 7428 bytes, so the Linux message is 7432 bytes, not 7430.
 */
import type { Flavor } from './constants.js';
import { bytes, nested, struct, u16, u32, u64, u8, i32, union, type Layout } from './layout.js';

/** All layouts of one flavor. */
export interface FlavorLayouts {
  kvpHdr: Layout;
  kvpHeader: Layout; // the header union: hv_kvp_hdr or the 32-bit error
  exchgValue: Layout;
  msgGet: Layout;
  msgSet: Layout;
  msgDelete: Layout;
  msgEnumerate: Layout;
  ipaddrValue: Layout;
  register: Layout;
  kvpBody: Layout;
  kvpMsg: Layout;
  /** Linux hv_vss_msg (12 bytes) or FreeBSD hv_vss_opt_msg (64 bytes). */
  vssMsg: Layout;
}

function declare(flavor: Flavor): FlavorLayouts {
  const fb = flavor === 'freebsd';
  const P = { packed: true };
  // On Linux these four are declared without __attribute__((packed)).
  const maybePacked = { packed: fb };

  const kvpHdr = struct('hv_kvp_hdr', [u8('operation'), u8('pool'), u16('pad')], P);
  const kvpHeader = union('kvp_hdr_error', [nested('kvp_hdr', kvpHdr), u32('error')], P);
  const exchgValue = struct(
    'hv_kvp_exchg_msg_value',
    [u32('value_type'), u32('key_size'), u32('value_size'), bytes('key', 512), bytes('value', 2048)],
    P,
  );
  const msgGet = struct('hv_kvp_msg_get', [nested('data', exchgValue)], maybePacked);
  const msgSet = struct('hv_kvp_msg_set', [nested('data', exchgValue)], maybePacked);
  const msgDelete = struct('hv_kvp_msg_delete', [u32('key_size'), bytes('key', 512)], maybePacked);
  const msgEnumerate = struct('hv_kvp_msg_enumerate', [u32('index'), nested('data', exchgValue)], P);
  const ipaddrValue = struct(
    'hv_kvp_ipaddr_value',
    [
      bytes('adapter_id', 256),
      u8('addr_family'),
      u8('dhcp_enabled'),
      bytes('ip_addr', 2048),
      bytes('sub_net', 2048),
      bytes('gate_way', 1024),
      bytes('dns_addr', 2048),
    ],
    P,
  );
  const register = struct('hv_kvp_register', [bytes('version', 512)], maybePacked);
  // FreeBSD declares the body as a packed union; Linux's anonymous union
  // inherits no packing, so its size is rounded to the delete body's alignment.
  const kvpBody = union(
    'kvp_body',
    [
      nested('kvp_get', msgGet),
      nested('kvp_set', msgSet),
      nested('kvp_delete', msgDelete),
      nested('kvp_enum_data', msgEnumerate),
      nested('kvp_ip_val', ipaddrValue),
      nested('kvp_register', register),
    ],
    { packed: fb },
  );
  const kvpMsg = struct('hv_kvp_msg', [nested('header', kvpHeader), nested('body', kvpBody)], P);

  const vssMsg = fb
    ? struct('hv_vss_opt_msg', [u32('opt'), u32('status'), u64('msgid'), bytes('reserved', 48)], { packed: false })
    : struct(
        'hv_vss_msg',
        [
          nested(
            'header',
            union(
              'vss_hdr_error',
              [nested('vss_hdr', struct('hv_vss_hdr', [u8('operation'), bytes('reserved', 7)], P)), i32('error')],
              P,
            ),
          ),
          nested('body', union('vss_body', [u32('flags')], P)),
        ],
        P,
      );

  return { kvpHdr, kvpHeader, exchgValue, msgGet, msgSet, msgDelete, msgEnumerate, ipaddrValue, register, kvpBody, kvpMsg, vssMsg };
}

export const LAYOUTS: Record<Flavor, FlavorLayouts> = { freebsd: declare('freebsd'), linux: declare('linux') };

/** Size of one KVP message for a flavor (7430 FreeBSD, 7432 Linux). */
export const kvpMsgSize = (flavor: Flavor): number => LAYOUTS[flavor].kvpMsg.size;

/** Size of one VSS message for a flavor (64 FreeBSD, 12 Linux). */
export const vssMsgSize = (flavor: Flavor): number => LAYOUTS[flavor].vssMsg.size;

/** Offset of the body union in hv_kvp_msg (after the 4-byte header). */
export const KVP_BODY_OFFSET = 4;

/** Size of the Linux VSS registration reply: a bare u32 = 129. */
export const LINUX_VSS_HANDSHAKE_REPLY_SIZE = 4;

/** Host-side hv_kvp_ip_msg (ops 4 and 5 on the wire to the host): op, pool, then hv_kvp_ipaddr_value. */
export const HOST_KVP_IP_MSG: Layout = struct(
  'hv_kvp_ip_msg',
  [u8('operation'), u8('pool'), nested('kvp_ip_val', LAYOUTS.freebsd.ipaddrValue)],
  { packed: true },
);

/** VMBus pipe header + IC message header (spec/wire.md section 10). */
export const IC_HEADER: Layout = struct(
  'vmbus_icmsg_hdr',
  [
    u32('pipe_flags'),
    u32('pipe_msgsize'),
    u16('fw_major'),
    u16('fw_minor'),
    u16('msgtype'),
    u16('msg_major'),
    u16('msg_minor'),
    u16('msgsize'),
    u32('status'),
    u8('transaction_id'),
    u8('flags'),
    bytes('reserved', 2),
  ],
  { packed: true },
);

/** IC negotiate payload header (followed by version pairs of u16 major, u16 minor). */
export const IC_NEGOTIATE: Layout = struct(
  'vmbus_icmsg_negotiate',
  [u16('fw_version_cnt'), u16('msg_version_cnt'), u32('reserved')],
  { packed: true },
);

/** Host-side VSS payload: operation, 7 reserved bytes, flags. */
export const HOST_VSS_MSG: Layout = struct(
  'vmbus_icmsg_vss',
  [u8('operation'), bytes('reserved', 7), u32('flags')],
  { packed: true },
);
