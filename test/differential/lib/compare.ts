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
  /** The daemon died on this request (how it ended, e.g. "signal SIGSEGV"); the runner started it again. */
  died?: string;
}

/**
 * Send every step raw to the simulator at `simDir`; a daemon that reopened
 * the device gets up to `waitMs` to register again. After each step
 * `afterStep` may report that the daemon died (and restart it, as a service
 * manager would), so one crash does not turn the rest of the session into
 * timeouts.
 */
export async function runSession(
  simDir: string,
  steps: readonly Pick<Step, 'label' | 'request'>[],
  afterStep: (outcome: string, index: number) => Promise<string | undefined> = async () => undefined,
  o: { waitMs?: number; service?: 'kvp' | 'vss' } = {},
): Promise<StepResult[]> {
  const out: StepResult[] = [];
  for (const [i, s] of steps.entries()) {
    const res = await controlRequest(simDir, { cmd: 'raw', service: o.service ?? 'kvp', hex: s.request.toString('hex'), opts: { waitForDaemonMs: o.waitMs ?? 10_000 } });
    if (!res.ok) throw new Error(`${s.label}: ${res.error}`);
    const r = res.result as { outcome: string; status?: number; reply?: string };
    const died = await afterStep(r.outcome, i);
    out.push({
      label: s.label,
      outcome: r.outcome,
      ...(r.status !== undefined ? { status: r.status >>> 0 } : {}),
      ...(r.reply ? { reply: Buffer.from(r.reply, 'hex') } : {}),
      ...(died ? { died } : {}),
    });
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

/** The field byte `i` of a reply to `op` belongs to. */
function fieldOf(op: number, i: number): string {
  if (i < 4) return 'header';
  // GET's value overlaps the ENUMERATE value by 4 bytes; the later (enum) view is the one the Linux kernel reads.
  const f = fieldsFor(op).filter((x) => i >= x.offset && i < x.offset + x.size).pop();
  if (f) return f.name;
  return i >= ENUM.value.offset + ENUM.value.size ? 'padding' : 'unused';
}

/** What the host receives for a host step's reply (status and decoded strings), through the Linux kernel conversion. */
export function hostView(step: Step, r: StepResult): Record<string, unknown> {
  const view: Record<string, unknown> = { outcome: r.outcome, status: r.status === undefined ? undefined : statusName(r.status) };
  if (!r.reply || r.status !== HV_S_OK || r.reply.length !== MSG_SIZE) return view;
  // A raw step had no host packet: the host buffer of the same op, zeroed, as the kernel would fill it.
  const hostBuf = step.host ? receiveBuffer(kvpPacket(step.host, 1), ICMSG_HDR + MSG_SIZE).subarray(ICMSG_HDR) : Buffer.alloc(MSG_SIZE);
  if (!step.host) step.request.copy(hostBuf, 0, 0, 2);
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
  kind: 'outcome' | 'status' | 'host' | 'bytes' | 'hidden' | 'order' | 'records';
  detail: string;
}

/** Every difference between the C daemon's result `c` and ours `o` for one step (reported under `label`). */
export function compareStep(step: Step, c: StepResult, o: StepResult, label = step.label): Difference[] {
  const d: Difference[] = [];
  const add = (kind: Difference['kind'], detail: string) => d.push({ label, kind, detail });
  if (c.died !== o.died) add('outcome', `daemon died: C ${c.died ?? 'no'}, ours ${o.died ?? 'no'}`);
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
  // The host view is everything the host receives (status, and the strings the
  // kernel converts); when it is the same, the differing bytes never leave the guest.
  const hidden = !d.some((x) => x.kind === 'host');
  const op = step.request.readUInt8(0);
  const byField = new Map<string, { n: number; first: number }>();
  for (let i = 0; i < c.reply.length; i++) {
    if (c.reply[i] === o.reply[i]) continue;
    const field = fieldOf(op, i);
    const e = byField.get(field) ?? { n: 0, first: i };
    e.n++;
    byField.set(field, e);
  }
  for (const [k, e] of byField) add(hidden ? 'hidden' : 'bytes', `${k}: ${e.n} byte(s) differ from offset ${e.first}`);
  return d;
}

/** The key the host reads from an ENUMERATE reply, or undefined when the reply is not a record. */
function enumKey(step: Step, r: StepResult): string | undefined {
  const v = hostView(step, r);
  return typeof v.key === 'string' ? v.key : undefined;
}

/**
 * Every difference between the two runs of a session. Steps of one walk
 * (Step.walk) are compared record by record, matched by key: a different
 * order is one 'order' difference, a record only one side has is a
 * 'records' difference, and matched records are compared like single
 * steps (labelled "WALK key=KEY").
 */
export function compareSession(steps: Step[], c: StepResult[], o: StepResult[]): Difference[] {
  const out: Difference[] = [];
  const walks = new Map<string, number[]>();
  steps.forEach((s, i) => {
    if (!s.walk) out.push(...compareStep(s, c[i]!, o[i]!));
    else walks.set(s.walk, [...(walks.get(s.walk) ?? []), i]);
  });
  for (const [walk, idx] of walks) {
    const add = (kind: Difference['kind'], detail: string) => out.push({ label: walk, kind, detail });
    const keysC = idx.map((i) => enumKey(steps[i]!, c[i]!));
    const keysO = idx.map((i) => enumKey(steps[i]!, o[i]!));
    const recC = keysC.filter((k): k is string => k !== undefined);
    const recO = keysO.filter((k): k is string => k !== undefined);
    const used = new Set<number>();
    for (const [n, i] of idx.entries()) {
      const k = keysC[n];
      if (k === undefined) continue;
      const m = idx.findIndex((_, j) => !used.has(j) && keysO[j] === k);
      if (m < 0) {
        add('records', `record only in C: ${JSON.stringify(k.slice(0, 60))}`);
        continue;
      }
      used.add(m);
      // The same record at another index: the replies echo different indexes, which says nothing about the daemons.
      const mine = o[idx[m]!]!;
      const theirs = c[i]!;
      const aligned = mine.reply && theirs.reply && mine.reply.length >= 8 && theirs.reply.length >= 8 ? { ...mine, reply: Buffer.concat([mine.reply.subarray(0, 4), theirs.reply.subarray(4, 8), mine.reply.subarray(8)]) } : mine;
      out.push(...compareStep(steps[i]!, theirs, aligned, `${walk} key=${k.slice(0, 60)}`));
    }
    for (const [j, k] of keysO.entries()) if (k !== undefined && !used.has(j)) add('records', `record only in ours: ${JSON.stringify(k.slice(0, 60))}`);
    if (recC.length === recO.length && recC.join('\0') !== recO.join('\0') && [...recC].sort().join('\0') === [...recO].sort().join('\0')) add('order', 'same records, different order');
    // Past the last record: the end of the walk must look the same.
    const endC = idx.filter((_, n) => keysC[n] === undefined).map((i) => `${c[i]!.outcome}/${c[i]!.status}`);
    const endO = idx.filter((_, n) => keysO[n] === undefined).map((i) => `${o[i]!.outcome}/${o[i]!.status}`);
    if (recC.length === recO.length && endC.join() !== endO.join()) add('status', `end of walk: C ${endC.join()}, ours ${endO.join()}`);
  }
  return out;
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
