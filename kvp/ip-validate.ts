/**
 * Validation of a SET_IP_INFO request (spec/kvp.md section 8). Every string
 * here comes from the host and ends up in config files and helper argv, so it
 * is parsed into typed values before anything is written or run (pitfalls
 * F8, F32, L20). Nothing in this file touches the machine.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { SetIpRequest } from './types.js';
import { MAX_ADAPTER_ID_SIZE, MAX_GATEWAY_SIZE, MAX_IP_ADDR_SIZE } from '../common/wire/constants.js';

export type IpFamily = 4 | 6;

/** One validated address, text as the host sent it (after C-style leading-space trim). */
export interface IpAddr {
  family: IpFamily;
  text: string;
}

/** An interface address with the prefix length taken from its paired subnet item. */
export interface IfAddr extends IpAddr {
  prefix: number;
}

/** What the adapter id turned out to be: a VMBus instance GUID, or an ifname the FreeBSD kernel mapped it to. */
export type AdapterRef = { kind: 'guid'; guid: string } | { kind: 'ifname'; name: string };

/** A SET_IP_INFO request whose every field has been checked. */
export interface ValidSetIp {
  adapter: AdapterRef;
  dhcp: boolean;
  /** i-th ip_addr item paired with the i-th sub_net item. */
  addresses: IfAddr[];
  gateways: IpAddr[];
  dns: IpAddr[];
}

export type Checked<T> = { ok: true; value: T } | { ok: false; detail: string };

/** Byte limits per field, terminator included: the FreeBSD kernel cuts the UTF-8 text here (pitfall F8). */
const FIELD_LIMITS = {
  adapter_id: MAX_ADAPTER_ID_SIZE,
  ip_addr: MAX_IP_ADDR_SIZE,
  sub_net: MAX_IP_ADDR_SIZE,
  gate_way: MAX_GATEWAY_SIZE,
  dns_addr: MAX_IP_ADDR_SIZE,
} as const;
type FieldName = keyof typeof FIELD_LIMITS;

/** Characters a field may contain at all; everything else (shell metacharacters, controls, non-ASCII) is refused up front. */
const FIELD_CHARS: Record<FieldName, RegExp> = {
  adapter_id: /^[0-9A-Za-z{}_-]*$/,
  ip_addr: /^[0-9A-Fa-f.:; ]*$/,
  sub_net: /^[0-9A-Fa-f.:;/ ]*$/,
  gate_way: /^[0-9A-Fa-f.:; ]*$/,
  dns_addr: /^[0-9A-Fa-f.:; ]*$/,
};

/** Longest address text (INET6_ADDRSTRLEN - 1); longer items are refused before parsing. */
const MAX_ITEM = 45;

const GUID_RE = /^\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?$/;
/** Interface names as the kernels allow them (IFNAMSIZ 16 with the NUL); no "/", no leading "." and no "..". */
const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
/** What the FreeBSD kernel writes into adapter_id after mapping the GUID (hn0, or a renamed interface). */
const HOST_IFNAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,14}$/;
const MAC_RE = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;
const V4_OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
/** Dotted quad without leading zeros: "010.0.0.1" is octal to inet_aton but decimal to inet_pton. */
const STRICT_V4_RE = new RegExp(`^${V4_OCTET}(\\.${V4_OCTET}){3}$`);
const DECIMAL_RE = /^(0|[1-9][0-9]{0,2})$/;

/** Show a host string in a detail message: printable ASCII only, bounded, quoted. */
export function show(s: string, max = 48): string {
  const cut = s.length > max ? s.slice(0, max) : s;
  const esc = [...cut]
    .map((c) => {
      const n = c.codePointAt(0)!;
      if (c === '"' || c === '\\') return `\\${c}`;
      if (n >= 0x20 && n < 0x7f) return c;
      return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
    })
    .join('');
  return `"${esc}"${s.length > max ? '...' : ''}`;
}

/** True for an interface name safe to use in a file name and an argv slot. */
export const isIfName = (s: string): boolean => IFNAME_RE.test(s) && !s.includes('..');

/** True for a six-byte colon-separated MAC text. */
export const isMac = (s: string): boolean => MAC_RE.test(s);

/** The 36-character lowercase GUID inside `s` (braces optional), or undefined. */
export function normalizeGuid(s: string): string | undefined {
  const m = GUID_RE.exec(s.trim());
  if (!m) return undefined;
  // Braces must be balanced: "{abc..." without "}" is not a GUID.
  if (s.trim().startsWith('{') !== s.trim().endsWith('}')) return undefined;
  return m[1]!.toLowerCase();
}

/** The family of a strictly written IPv4/IPv6 address, or undefined (zones, leading zeros, brackets refused). */
export function addressFamily(s: string): IpFamily | undefined {
  if (STRICT_V4_RE.test(s) && isIPv4(s)) return 4;
  // Node's isIPv6 accepts a zone index ("fe80::1%eth0"); zones name host-side
  // interfaces that mean nothing in this guest, so they are refused.
  if (!s.includes('%') && isIPv6(s)) return 6;
  return undefined;
}

/** The 16 bytes of a valid IPv6 text (embedded IPv4 tail allowed). */
function ipv6Bytes(s: string): number[] {
  let text = s;
  let tail: number[] = [];
  const v4 = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tail = v4[1]!.split('.').map(Number);
    text = `${text.slice(0, v4.index)}:0:0`; // two placeholder groups, replaced below
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const fill = rest === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  const groups = [...left, ...fill, ...right].map((g) => parseInt(g, 16));
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** IPv6 text fully expanded: eight groups of four lowercase hex digits (what the C ifcfg writer emits). */
export function expandIPv6(s: string): string {
  const b = ipv6Bytes(s);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16).padStart(4, '0'));
  return groups.join(':');
}

/** Dotted IPv4 mask for a prefix length 0..32. */
export function prefixToMask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 0xff).join('.');
}

/** Prefix length of a contiguous dotted IPv4 mask, undefined for "255.0.255.0" and friends. */
export function maskToPrefix(mask: string): number | undefined {
  if (addressFamily(mask) !== 4) return undefined;
  const bits = mask.split('.').reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);
  const inv = ~bits >>> 0;
  // Contiguous means the inverted mask is 2^k - 1.
  if ((inv & (inv + 1)) !== 0) return undefined;
  return Math.clz32(inv); // inv = 2^(32-prefix) - 1
}

/** Addresses that make no sense as an interface address, gateway or DNS server. */
function unusable(a: IpAddr): string | undefined {
  if (a.family === 4) {
    const first = Number(a.text.split('.')[0]);
    if (a.text === '0.0.0.0') return 'unspecified address';
    if (a.text === '255.255.255.255') return 'broadcast address';
    if (first >= 224 && first <= 239) return 'multicast address';
    return undefined;
  }
  const b = ipv6Bytes(a.text);
  if (b.every((x) => x === 0)) return 'unspecified address';
  if (b[0] === 0xff) return 'multicast address';
  return undefined;
}

/** Split a ";" list the way the C daemons do (leading spaces of an item dropped, one trailing ";" allowed) but refuse empty middle items. */
function splitList(field: FieldName, s: string): Checked<string[]> {
  if (s === '') return { ok: true, value: [] };
  const raw = s.split(';');
  if (raw.length > 1 && raw[raw.length - 1]!.replace(/^ +/, '') === '') raw.pop();
  const items: string[] = [];
  for (const [i, r] of raw.entries()) {
    const item = r.replace(/^ +/, '');
    if (item === '') return { ok: false, detail: `${field}: item ${i + 1} is empty` };
    if (item.length > MAX_ITEM) return { ok: false, detail: `${field}: item ${i + 1} ${show(item)} is too long` };
    items.push(item);
  }
  return { ok: true, value: items };
}

/** Character set, length and truncation checks common to every string field. */
function checkField(field: FieldName, s: unknown): Checked<string> {
  if (typeof s !== 'string') return { ok: false, detail: `${field}: not a string` };
  const bad = [...s].find((c) => !FIELD_CHARS[field].test(c));
  if (bad !== undefined) return { ok: false, detail: `${field}: character ${show(bad)} not allowed in ${show(s)}` };
  const limit = FIELD_LIMITS[field];
  const bytes = Buffer.byteLength(s, 'utf8');
  if (bytes > limit - 1) return { ok: false, detail: `${field}: ${bytes} bytes, over the ${limit - 1}-byte field` };
  // A list that fills its field up to the kernel's cut may have lost the end
  // of its last item ("10.0.0.12" cut to "10.0.0.1" still parses), so it is
  // accepted only when it visibly ends on a separator.
  if (field !== 'adapter_id' && bytes === limit - 1 && !s.endsWith(';')) {
    return { ok: false, detail: `${field}: fills the ${limit - 1}-byte field without a final ";": last item may be truncated` };
  }
  return { ok: true, value: s };
}

function parseAddrList(field: FieldName, s: string): Checked<IpAddr[]> {
  const items = splitList(field, s);
  if (!items.ok) return items;
  const out: IpAddr[] = [];
  for (const [i, text] of items.value.entries()) {
    const family = addressFamily(text);
    if (!family) return { ok: false, detail: `${field}: item ${i + 1} ${show(text)} is not an IPv4 or IPv6 address` };
    const why = unusable({ family, text });
    if (why) return { ok: false, detail: `${field}: item ${i + 1} ${show(text)} is a ${why}` };
    out.push({ family, text });
  }
  return { ok: true, value: out };
}

/** Prefix length for the subnet item paired with an address of `family`. */
function parseSubnet(item: string, family: IpFamily): Checked<number> {
  const plain = item.startsWith('/') ? item.slice(1) : item;
  if (DECIMAL_RE.test(plain)) {
    const n = Number(plain);
    const max = family === 4 ? 32 : 128;
    if (n > max) return { ok: false, detail: `prefix length ${n} over ${max} for an IPv${family} address` };
    return { ok: true, value: n };
  }
  if (item.startsWith('/')) return { ok: false, detail: `${show(item)} is not a prefix length` };
  const maskFamily = addressFamily(item);
  if (maskFamily === 4 && family === 6) return { ok: false, detail: `IPv4 mask ${show(item)} paired with an IPv6 address` };
  if (maskFamily === 6) return { ok: false, detail: `${show(item)}: IPv6 subnets must be prefix lengths` };
  if (maskFamily !== 4) return { ok: false, detail: `${show(item)} is neither a dotted mask nor a prefix length` };
  const p = maskToPrefix(item);
  if (p === undefined) return { ok: false, detail: `mask ${show(item)} is not contiguous` };
  return { ok: true, value: p };
}

function parseAdapter(s: string, flavor: 'freebsd' | 'linux'): Checked<AdapterRef> {
  if (s === '') return { ok: false, detail: 'adapter_id: empty' };
  const guid = normalizeGuid(s);
  if (guid) return { ok: true, value: { kind: 'guid', guid } };
  // Only FreeBSD's kernel replaces the GUID with an interface name.
  if (flavor === 'freebsd' && HOST_IFNAME_RE.test(s)) return { ok: true, value: { kind: 'ifname', name: s } };
  return { ok: false, detail: `adapter_id: ${show(s)} is not a GUID${flavor === 'freebsd' ? ' or interface name' : ''}` };
}

/** Check every field of a SET_IP_INFO request; the first problem found is the detail. */
export function validateSetIp(req: SetIpRequest, flavor: 'freebsd' | 'linux'): Checked<ValidSetIp> {
  const fields: Array<[FieldName, unknown]> = [
    ['adapter_id', req.adapterId],
    ['ip_addr', req.ipAddr],
    ['sub_net', req.subNet],
    ['gate_way', req.gateWay],
    ['dns_addr', req.dnsAddr],
  ];
  for (const [name, value] of fields) {
    const c = checkField(name, value);
    if (!c.ok) return c;
  }
  if (req.dhcpEnabled !== 0 && req.dhcpEnabled !== 1) return { ok: false, detail: `dhcp_enabled: ${String(req.dhcpEnabled)} is not 0 or 1` };
  const adapter = parseAdapter(req.adapterId, flavor);
  if (!adapter.ok) return adapter;
  const ips = parseAddrList('ip_addr', req.ipAddr);
  if (!ips.ok) return ips;
  const subnets = splitList('sub_net', req.subNet);
  if (!subnets.ok) return subnets;
  if (subnets.value.length !== ips.value.length) {
    return { ok: false, detail: `sub_net: ${subnets.value.length} item(s) for ${ips.value.length} address(es); they must pair up` };
  }
  const addresses: IfAddr[] = [];
  for (const [i, ip] of ips.value.entries()) {
    const p = parseSubnet(subnets.value[i]!, ip.family);
    if (!p.ok) return { ok: false, detail: `sub_net: item ${i + 1}: ${p.detail}` };
    addresses.push({ ...ip, prefix: p.value });
  }
  const gateways = parseAddrList('gate_way', req.gateWay);
  if (!gateways.ok) return gateways;
  const dns = parseAddrList('dns_addr', req.dnsAddr);
  if (!dns.ok) return dns;
  return { ok: true, value: { adapter: adapter.value, dhcp: req.dhcpEnabled === 1, addresses, gateways: gateways.value, dns: dns.value } };
}
