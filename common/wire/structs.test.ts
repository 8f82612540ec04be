/**
 * The declarations in structs.ts against the numbers in spec/wire.md.
 * Every expected table below is copied by hand from the spec (sections 5,
 * 6, 8.1, 8.2, 10), never derived from the code under test, so a wrong
 * declaration cannot agree with itself.
 */
import { describe, expect, it } from 'vitest';
import { ICMSG_HDR, type Flavor } from './constants.js';
import { leaves, locate, type Layout } from './layout.js';
import {
  HOST_KVP_IP_MSG,
  HOST_VSS_MSG,
  IC_HEADER,
  IC_NEGOTIATE,
  KVP_BODY_OFFSET,
  LAYOUTS,
  LINUX_VSS_HANDSHAKE_REPLY_SIZE,
  kvpMsgSize,
  vssMsgSize,
} from './structs.js';

/** [dotted path, absolute offset, size, type] */
type Row = [string, number, number, string];

const byPath = (rows: readonly Row[]): Map<string, Row> => new Map(rows.map((r) => [r[0], r]));

/** Every leaf of `layout` placed at `base` must be exactly the rows, no more, no fewer. */
function expectLeaves(layout: Layout, rows: readonly Row[], base = 0): void {
  const got = leaves(layout, base).map((l): Row => [l.path, l.offset, l.size, l.type]);
  expect(byPath(got)).toEqual(byPath(rows));
  expect(got).toHaveLength(rows.length);
}

/** Each row also through locate(), which walks the declaration a different way than leaves(). */
function expectLocate(layout: Layout, rows: readonly Row[], base = 0): void {
  for (const [path, offset, size] of rows) {
    const { offset: off, member } = locate(layout, path);
    expect({ path, offset: base + off, size: member.size }).toEqual({ path, offset, size });
  }
}

// spec/wire.md section 5, header table and body-variants table (absolute offsets).
const KVP_MSG_ROWS: readonly Row[] = [
  ['header.kvp_hdr.operation', 0, 1, 'u8'],
  ['header.kvp_hdr.pool', 1, 1, 'u8'],
  ['header.kvp_hdr.pad', 2, 2, 'u16'],
  ['header.error', 0, 4, 'u32'],
  // kvp_get, kvp_set (ops 0, 1)
  ['body.kvp_get.data.value_type', 4, 4, 'u32'],
  ['body.kvp_get.data.key_size', 8, 4, 'u32'],
  ['body.kvp_get.data.value_size', 12, 4, 'u32'],
  ['body.kvp_get.data.key', 16, 512, 'bytes'],
  ['body.kvp_get.data.value', 528, 2048, 'bytes'],
  ['body.kvp_set.data.value_type', 4, 4, 'u32'],
  ['body.kvp_set.data.key_size', 8, 4, 'u32'],
  ['body.kvp_set.data.value_size', 12, 4, 'u32'],
  ['body.kvp_set.data.key', 16, 512, 'bytes'],
  ['body.kvp_set.data.value', 528, 2048, 'bytes'],
  // kvp_delete (op 2)
  ['body.kvp_delete.key_size', 4, 4, 'u32'],
  ['body.kvp_delete.key', 8, 512, 'bytes'],
  // kvp_enum_data (op 3)
  ['body.kvp_enum_data.index', 4, 4, 'u32'],
  ['body.kvp_enum_data.data.value_type', 8, 4, 'u32'],
  ['body.kvp_enum_data.data.key_size', 12, 4, 'u32'],
  ['body.kvp_enum_data.data.value_size', 16, 4, 'u32'],
  ['body.kvp_enum_data.data.key', 20, 512, 'bytes'],
  ['body.kvp_enum_data.data.value', 532, 2048, 'bytes'],
  // kvp_ip_val (ops 4, 5)
  ['body.kvp_ip_val.adapter_id', 4, 256, 'bytes'],
  ['body.kvp_ip_val.addr_family', 260, 1, 'u8'],
  ['body.kvp_ip_val.dhcp_enabled', 261, 1, 'u8'],
  ['body.kvp_ip_val.ip_addr', 262, 2048, 'bytes'],
  ['body.kvp_ip_val.sub_net', 2310, 2048, 'bytes'],
  ['body.kvp_ip_val.gate_way', 4358, 1024, 'bytes'],
  ['body.kvp_ip_val.dns_addr', 5382, 2048, 'bytes'],
  // kvp_register (op 4; Linux also 100)
  ['body.kvp_register.version', 4, 512, 'bytes'],
];

// "ends" column of the body-variants table: where each variant's last field stops.
const VARIANT_ENDS: Record<string, number> = {
  kvp_get: 2576,
  kvp_set: 2576,
  kvp_delete: 520,
  kvp_enum_data: 2580,
  kvp_ip_val: 7430,
  kvp_register: 516,
};

// Member sizes, body-variants table "Member size" column (delete: 516 on both flavors).
const VARIANT_SIZES: Record<string, number> = {
  kvp_get: 2572,
  kvp_set: 2572,
  kvp_delete: 516,
  kvp_enum_data: 2576,
  kvp_ip_val: 7426,
  kvp_register: 512,
};

const SPEC: Record<Flavor, { msg: number; body: number; bodyAlign: number; deleteAlign: number; vss: number; vssAlign: number }> = {
  freebsd: { msg: 7430, body: 7426, bodyAlign: 1, deleteAlign: 1, vss: 64, vssAlign: 8 },
  linux: { msg: 7432, body: 7428, bodyAlign: 4, deleteAlign: 4, vss: 12, vssAlign: 1 },
};

describe.each(['freebsd', 'linux'] as const)('%s hv_kvp_msg (spec section 5)', (flavor) => {
  const L = LAYOUTS[flavor];
  const s = SPEC[flavor];

  it(`is ${s.msg} bytes with a ${s.body}-byte body union at offset 4`, () => {
    expect(L.kvpMsg.size).toBe(s.msg);
    expect(kvpMsgSize(flavor)).toBe(s.msg);
    expect(L.kvpBody.size).toBe(s.body);
    expect(L.kvpBody.align).toBe(s.bodyAlign);
    expect(locate(L.kvpMsg, 'body').offset).toBe(4);
    expect(KVP_BODY_OFFSET).toBe(4);
    expect(L.kvpHeader.size).toBe(4);
    expect(L.kvpHdr.size).toBe(4);
    // The message itself is packed in both flavors: no tail padding beyond the body.
    expect(L.kvpMsg.align).toBe(1);
  });

  it('has exactly the leaves of the spec tables, at the spec offsets', () => {
    expectLeaves(L.kvpMsg, KVP_MSG_ROWS);
    expectLocate(L.kvpMsg, KVP_MSG_ROWS);
  });

  it('body variants have the spec member sizes and end where the spec says', () => {
    for (const [variant, size] of Object.entries(VARIANT_SIZES)) {
      const { offset, member } = locate(L.kvpMsg, `body.${variant}`);
      expect({ variant, offset, size: member.size }).toEqual({ variant, offset: 4, size });
      const last = leaves(L.kvpMsg).filter((l) => l.path.startsWith(`body.${variant}.`));
      expect({ variant, end: Math.max(...last.map((l) => l.offset + l.size)) }).toEqual({ variant, end: VARIANT_ENDS[variant] });
    }
  });

  it('has the spec sizes for every nested struct', () => {
    expect(L.exchgValue.size).toBe(2572);
    expect(L.msgGet.size).toBe(2572);
    expect(L.msgSet.size).toBe(2572);
    expect(L.msgDelete.size).toBe(516);
    expect(L.msgDelete.align).toBe(s.deleteAlign);
    expect(L.msgEnumerate.size).toBe(2576);
    expect(L.ipaddrValue.size).toBe(7426);
    expect(L.register.size).toBe(512);
  });

  it('hv_kvp_exchg_msg_value has the relative offsets of the spec', () => {
    const rows: Row[] = [
      ['value_type', 0, 4, 'u32'],
      ['key_size', 4, 4, 'u32'],
      ['value_size', 8, 4, 'u32'],
      ['key', 12, 512, 'bytes'],
      ['value', 524, 2048, 'bytes'],
    ];
    expectLeaves(L.exchgValue, rows);
  });

  it('packs exactly the structs the spec says are packed', () => {
    // Section 1: FreeBSD packs every KVP struct; Linux leaves get/set/register/delete unpacked.
    const fb = flavor === 'freebsd';
    expect(L.kvpMsg.packed).toBe(true);
    expect(L.kvpHdr.packed).toBe(true);
    expect(L.exchgValue.packed).toBe(true);
    expect(L.msgEnumerate.packed).toBe(true);
    expect(L.ipaddrValue.packed).toBe(true);
    for (const l of [L.msgGet, L.msgSet, L.register, L.msgDelete]) expect({ name: l.name, packed: l.packed }).toEqual({ name: l.name, packed: fb });
  });
});

describe('hv_kvp_ipaddr_value and host-side hv_kvp_ip_msg (spec section 6)', () => {
  it.each(['freebsd', 'linux'] as const)('%s hv_kvp_ipaddr_value: 7426 bytes, spec relative offsets', (flavor) => {
    const rows: Row[] = [
      ['adapter_id', 0, 256, 'bytes'],
      ['addr_family', 256, 1, 'u8'],
      ['dhcp_enabled', 257, 1, 'u8'],
      ['ip_addr', 258, 2048, 'bytes'],
      ['sub_net', 2306, 2048, 'bytes'],
      ['gate_way', 4354, 1024, 'bytes'],
      ['dns_addr', 5378, 2048, 'bytes'],
    ];
    expect(LAYOUTS[flavor].ipaddrValue.size).toBe(7426);
    expectLeaves(LAYOUTS[flavor].ipaddrValue, rows);
  });

  it('hv_kvp_ip_msg: 7428 bytes, no pad, IP block at 2', () => {
    const rows: Row[] = [
      ['operation', 0, 1, 'u8'],
      ['pool', 1, 1, 'u8'],
      ['kvp_ip_val.adapter_id', 2, 256, 'bytes'],
      ['kvp_ip_val.addr_family', 258, 1, 'u8'],
      ['kvp_ip_val.dhcp_enabled', 259, 1, 'u8'],
      ['kvp_ip_val.ip_addr', 260, 2048, 'bytes'],
      ['kvp_ip_val.sub_net', 2308, 2048, 'bytes'],
      ['kvp_ip_val.gate_way', 4356, 1024, 'bytes'],
      ['kvp_ip_val.dns_addr', 5380, 2048, 'bytes'],
    ];
    expect(HOST_KVP_IP_MSG.size).toBe(7428);
    expectLeaves(HOST_KVP_IP_MSG, rows);
    expectLocate(HOST_KVP_IP_MSG, rows);
    expect(5380 + 2048).toBe(HOST_KVP_IP_MSG.size); // "ends 7428"
  });
});

describe('VSS messages (spec section 8)', () => {
  it('Linux hv_vss_msg: 12 bytes, packed, error overlays the header (8.1)', () => {
    const rows: Row[] = [
      ['header.vss_hdr.operation', 0, 1, 'u8'],
      ['header.vss_hdr.reserved', 1, 7, 'bytes'],
      ['header.error', 0, 4, 'i32'],
      ['body.flags', 8, 4, 'u32'],
    ];
    const l = LAYOUTS.linux.vssMsg;
    expect(l.size).toBe(12);
    expect(vssMsgSize('linux')).toBe(12);
    expect(l.packed).toBe(true);
    expectLeaves(l, rows);
    expectLocate(l, rows);
    expect(LINUX_VSS_HANDSHAKE_REPLY_SIZE).toBe(4);
  });

  it('FreeBSD hv_vss_opt_msg: 64 bytes, alignment 8, not packed (8.2)', () => {
    const rows: Row[] = [
      ['opt', 0, 4, 'u32'],
      ['status', 4, 4, 'u32'],
      ['msgid', 8, 8, 'u64'],
      ['reserved', 16, 48, 'bytes'],
    ];
    const l = LAYOUTS.freebsd.vssMsg;
    expect(l.size).toBe(64);
    expect(vssMsgSize('freebsd')).toBe(64);
    expect(l.align).toBe(8);
    expect(l.packed).toBe(false);
    expectLeaves(l, rows);
    expectLocate(l, rows);
  });

  it.each(['freebsd', 'linux'] as const)('%s VSS alignment matches the spec', (flavor) => {
    expect(LAYOUTS[flavor].vssMsg.align).toBe(SPEC[flavor].vssAlign);
    expect(LAYOUTS[flavor].vssMsg.size).toBe(SPEC[flavor].vss);
  });
});

describe('host-side framing (spec section 10)', () => {
  it('pipe + IC header is 28 bytes with the spec absolute offsets', () => {
    const rows: Row[] = [
      ['pipe_flags', 0, 4, 'u32'],
      ['pipe_msgsize', 4, 4, 'u32'],
      ['fw_major', 8, 2, 'u16'],
      ['fw_minor', 10, 2, 'u16'],
      ['msgtype', 12, 2, 'u16'],
      ['msg_major', 14, 2, 'u16'],
      ['msg_minor', 16, 2, 'u16'],
      ['msgsize', 18, 2, 'u16'],
      ['status', 20, 4, 'u32'],
      ['transaction_id', 24, 1, 'u8'],
      ['flags', 25, 1, 'u8'],
      ['reserved', 26, 2, 'bytes'],
    ];
    expect(IC_HEADER.size).toBe(28);
    expect(ICMSG_HDR).toBe(28);
    expectLeaves(IC_HEADER, rows);
    expectLocate(IC_HEADER, rows);
  });

  it('negotiate payload: counts at 28 and 30, reserved at 32, version pairs from 36', () => {
    const rows: Row[] = [
      ['fw_version_cnt', 28, 2, 'u16'],
      ['msg_version_cnt', 30, 2, 'u16'],
      ['reserved', 32, 4, 'u32'],
    ];
    expectLeaves(IC_NEGOTIATE, rows, ICMSG_HDR);
    expectLocate(IC_NEGOTIATE, rows, ICMSG_HDR);
    expect(ICMSG_HDR + IC_NEGOTIATE.size).toBe(36);
  });

  it('VSS host payload: operation at 28, 7 reserved bytes, flags at 36', () => {
    const rows: Row[] = [
      ['operation', 28, 1, 'u8'],
      ['reserved', 29, 7, 'bytes'],
      ['flags', 36, 4, 'u32'],
    ];
    expectLeaves(HOST_VSS_MSG, rows, ICMSG_HDR);
    expectLocate(HOST_VSS_MSG, rows, ICMSG_HDR);
  });
});
