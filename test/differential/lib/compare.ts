/**
 * Running a scripted session against one daemon and comparing two runs:
 * outcome, status word, what the host decodes (through the simulator's
 * Linux kernel conversion), and every byte of the reply, each differing
 * byte named by the field it belongs to and marked when the host cannot
 * see it (after the string's terminator).
 */
import { HV_S_OK, ICMSG_HDR, KVP_OP, statusName } from '../../../common/wire/constants.js';
import { decodeHostIpMsg, decodeHostKvp } from '../../../common/wire/host.js';
import { isWireError } from '../../../common/wire/errors.js';
import { controlRequest } from '../../../sim/control.js';
import { kvpPacket } from '../../../sim/host-requests.js';
import { receiveBuffer } from '../../../sim/ic-reply.js';
import { linuxToHost } from '../../../sim/kvp-convert-linux.js';
import { DAEMON_IP, DELETE, ENUM, GET, type Field } from '../../../sim/kvp-fields.js';
import { MSG_SIZE, type Step } from './kvp-session.js';

export interface StepResult {
  label: string;
  outcome: string;
  status?: number;
  reply?: Buffer;
}

/** Send every step raw to the simulator at `simDir`; a daemon that reopened the device gets up to `waitMs` to register again. */
export async function runSession(simDir: string, steps: Step[], waitMs = 10_000): Promise<StepResult[]> {
  const out: StepResult[] = [];
  for (const s of steps) {
    const res = await controlRequest(simDir, { cmd: 'raw', service: 'kvp', hex: s.request.toString('hex'), opts: { waitForDaemonMs: waitMs } });
    if (!res.ok) throw new Error(`${s.label}: ${res.error}`);
    const r = res.result as { outcome: string; status?: number; reply?: string };
    out.push({ label: s.label, outcome: r.outcome, ...(r.status !== undefined ? { status: r.status >>> 0 } : {}), ...(r.reply ? { reply: Buffer.from(r.reply, 'hex') } : {}) });
  }
  return out;
}

interface NamedField extends Field {
  name: string;
  /** NUL-terminated text: bytes after the first NUL never reach the host. */
  text: boolean;
}

const named = (name: string, f: Field, text = false): NamedField => ({ name, text, ...f });
const exchangeFields = (v: string, f: typeof GET): NamedField[] => [
  named(`${v}.value_type`, f.valueType),
  named(`${v}.key_size`, f.keySize),
  named(`${v}.value_size`, f.valueSize),
  named(`${v}.key`, f.key, true),
  named(`${v}.value`, f.value, true),
];

/** The fields a reply to `op` carries, by the request's op (the reply's byte 0 is the status). */
function fieldsFor(op: number): NamedField[] {
  switch (op) {
    case KVP_OP.GET:
    case KVP_OP.SET:
      // Linux's kernel reads a GET reply's value through the ENUMERATE view (offset 532).
      return [...exchangeFields('get', GET), ...(op === KVP_OP.GET ? [named('enum.value', ENUM.value, true)] : [])];
    case KVP_OP.DELETE:
      return [named('delete.key_size', DELETE.keySize), named('delete.key', DELETE.key, true)];
    case KVP_OP.ENUMERATE:
      return [named('enum.index', { offset: 4, size: 4 }), ...exchangeFields('enum', ENUM)];
    case KVP_OP.GET_IP_INFO:
    case KVP_OP.SET_IP_INFO:
      return Object.entries(DAEMON_IP).map(([n, f]) => named(`ip.${n}`, f, f.size > 1));
    default:
      return [];
  }
}

/** Where byte `i` of a reply to `op` lives, and whether the host can see it in these two replies. */
function locateByte(op: number, i: number, a: Buffer, b: Buffer): { field: string; hidden: boolean } {
  if (i < 4) return { field: 'header', hidden: false };
  // GET's value overlaps the ENUMERATE value by 4 bytes; the later (enum) view is the one the kernel reads.
  const f = fieldsFor(op).filter((x) => i >= x.offset && i < x.offset + x.size).pop();
  if (!f) return { field: i >= ENUM.value.offset + ENUM.value.size ? 'padding' : 'unused', hidden: true };
  if (!f.text) return { field: f.name, hidden: op !== KVP_OP.GET_IP_INFO && op !== KVP_OP.ENUMERATE && op !== KVP_OP.GET };
  const end = (x: Buffer) => {
    const n = x.subarray(f.offset, f.offset + f.size).indexOf(0);
    return f.offset + (n < 0 ? f.size : n);
  };
  return { field: f.name, hidden: i > end(a) && i > end(b) };
}

/** What the host receives for a host step's reply (status and decoded strings), through the Linux kernel conversion. */
export function hostView(step: Step, r: StepResult): Record<string, unknown> {
  const view: Record<string, unknown> = { outcome: r.outcome, status: r.status === undefined ? undefined : statusName(r.status) };
  if (!step.host || !r.reply || r.status !== HV_S_OK || r.reply.length !== MSG_SIZE) return view;
  const hostBuf = receiveBuffer(kvpPacket(step.host, 1), ICMSG_HDR + MSG_SIZE).subarray(ICMSG_HDR);
  const hostOp = hostBuf.readUInt8(0);
  const st = linuxToHost(hostBuf, r.reply, hostOp, { getValueAtEnumOffset: true }) >>> 0;
  view.hostStatus = statusName(st);
  if (st !== HV_S_OK) return view;
  if (hostOp === KVP_OP.GET || hostOp === KVP_OP.ENUMERATE) {
    const x = decodeHostKvp(hostBuf, hostOp);
    if (!isWireError(x)) Object.assign(view, { key: x.key, value: x.value });
  } else if (hostOp === KVP_OP.GET_IP_INFO) {
    const ip = decodeHostIpMsg(hostBuf);
    if (!isWireError(ip)) Object.assign(view, { ip: { ...ip, operation: undefined, pool: undefined } });
  }
  return view;
}

export interface Difference {
  label: string;
  /** outcome | status | host (what the host decodes) | bytes (host-visible reply bytes) | hidden (bytes the host never sees) */
  kind: 'outcome' | 'status' | 'host' | 'bytes' | 'hidden';
  detail: string;
}

/** Every difference between the C daemon's result `c` and ours `o` for one step. */
export function compareStep(step: Step, c: StepResult, o: StepResult): Difference[] {
  const d: Difference[] = [];
  const add = (kind: Difference['kind'], detail: string) => d.push({ label: step.label, kind, detail });
  if (c.outcome !== o.outcome) add('outcome', `C ${c.outcome}, ours ${o.outcome}`);
  if (c.status !== o.status) add('status', `C ${c.status === undefined ? '-' : statusName(c.status)}, ours ${o.status === undefined ? '-' : statusName(o.status)}`);
  if (d.length) return d;
  const hc = hostView(step, c);
  const ho = hostView(step, o);
  if (JSON.stringify(hc) !== JSON.stringify(ho)) add('host', `C ${JSON.stringify(hc)}, ours ${JSON.stringify(ho)}`);
  if (!c.reply || !o.reply) {
    if (c.reply || o.reply) add('bytes', `reply present: C ${!!c.reply}, ours ${!!o.reply}`);
    return d;
  }
  if (c.reply.length !== o.reply.length) {
    add('bytes', `reply length C ${c.reply.length}, ours ${o.reply.length}`);
    return d;
  }
  const op = step.request.readUInt8(0);
  const byField = new Map<string, { hidden: boolean; n: number; first: number }>();
  for (let i = 0; i < c.reply.length; i++) {
    if (c.reply[i] === o.reply[i]) continue;
    const { field, hidden } = locateByte(op, i, c.reply, o.reply);
    const k = `${field}${hidden ? ' (hidden)' : ''}`;
    const e = byField.get(k) ?? { hidden, n: 0, first: i };
    e.n++;
    byField.set(k, e);
  }
  for (const [k, e] of byField) add(e.hidden ? 'hidden' : 'bytes', `${k}: ${e.n} byte(s) differ from offset ${e.first}`);
  return d;
}

/** A deliberate difference: which steps and kinds it explains, and its section in docs/compatibility.md. */
export interface Deliberate {
  /** Anchor of the section in docs/compatibility.md that gives the reason. */
  doc: string;
  label: RegExp;
  kinds: Difference['kind'][];
  /** Optional extra test on the detail text. */
  detail?: RegExp;
}

/** Split differences into those a deliberate rule explains and the rest; also reports rules that explained nothing. */
export function explain(diffs: Difference[], rules: Deliberate[]): { explained: Map<string, Difference[]>; unexplained: Difference[]; unused: string[] } {
  const explained = new Map<string, Difference[]>();
  const unexplained: Difference[] = [];
  const used = new Set<Deliberate>();
  for (const x of diffs) {
    const r = rules.find((r) => r.label.test(x.label) && r.kinds.includes(x.kind) && (!r.detail || r.detail.test(x.detail)));
    if (!r) unexplained.push(x);
    else {
      used.add(r);
      explained.set(r.doc, [...(explained.get(r.doc) ?? []), x]);
    }
  }
  const unused = rules.filter((r) => !used.has(r)).map((r) => `${r.doc} ${String(r.label)}`);
  return { explained, unexplained, unused };
}
