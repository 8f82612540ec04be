/**
 * The control socket of `hvsim serve` (DIR/hvsim.ctl): host commands from
 * other processes reach the running simulator as one JSON line and get one
 * JSON line back. Buffers travel as hex, 64-bit integers as decimal text.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { HostRequestOptions, KvpHostRequest, SimHost, VssHostOp } from './host-api.js';

export const CONTROL_NAME = 'hvsim.ctl';

export const controlPath = (dir: string): string => join(dir, CONTROL_NAME);

export type ControlRequest =
  | { cmd: 'kvp'; req: KvpHostRequest; opts?: HostRequestOptions }
  | { cmd: 'vss'; op: VssHostOp; opts?: HostRequestOptions }
  | { cmd: 'raw'; service: 'kvp' | 'vss'; hex: string; opts?: HostRequestOptions }
  | { cmd: 'status' }
  | { cmd: 'remove' }
  | { cmd: 'restore' }
  | { cmd: 'stop' };

export type ControlResponse = { ok: true; result: unknown } | { ok: false; error: string };

/** JSON-safe copy: Buffers to hex, bigints to text. */
export function toPlain(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(toPlain);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toPlain(x);
    return out;
  }
  return v;
}

/** Largest control line accepted (a raw KVP message in hex is ~15 KB). */
const MAX_LINE = 1 << 20;

async function dispatch(host: SimHost, r: ControlRequest, onStop: () => void): Promise<unknown> {
  switch (r.cmd) {
    case 'kvp': {
      const q = r.req;
      // Integers crossed the socket as text; the host encodes them as REG_U32/REG_U64.
      if (q.op === 'set' && typeof q.value === 'string' && (q.valueType === 'u32' || q.valueType === 'u64')) {
        if (!/^\d+$/.test(q.value)) throw new Error(`kvp set: value ${JSON.stringify(q.value)} is not an unsigned integer`);
        const v = BigInt(q.value);
        const max = q.valueType === 'u32' ? 0xffffffffn : 0xffffffffffffffffn;
        if (v > max) throw new Error(`kvp set: value ${q.value} does not fit in ${q.valueType}`);
        return host.kvp({ ...q, value: q.valueType === 'u32' ? Number(v) : v }, r.opts);
      }
      return host.kvp(q, r.opts);
    }
    case 'vss':
      return host.vss(r.op, r.opts);
    case 'raw': {
      if (!/^([0-9a-fA-F]{2})*$/.test(r.hex)) throw new Error('raw: --hex must be an even number of hex digits');
      return host.raw(r.service, Buffer.from(r.hex, 'hex'), r.opts);
    }
    case 'status':
      return host.status();
    case 'remove':
      host.remove();
      return {};
    case 'restore':
      host.restore();
      return {};
    case 'stop':
      setImmediate(onStop);
      return {};
    default:
      throw new Error(`unknown control command ${JSON.stringify((r as { cmd?: unknown }).cmd)}`);
  }
}

/** Serve the control socket for a simulator; `onStop` runs when a client asks the simulator to stop. */
export function serveControl(dir: string, host: SimHost, onStop: () => void): Promise<Server> {
  const path = controlPath(dir);
  rmSync(path, { force: true });
  const server = createServer((sock: Socket) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE) {
        sock.end(JSON.stringify({ ok: false, error: 'control request too long' }) + '\n');
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let req: ControlRequest;
        try {
          req = JSON.parse(line) as ControlRequest;
        } catch {
          sock.write(JSON.stringify({ ok: false, error: 'control request is not JSON' }) + '\n');
          continue;
        }
        dispatch(host, req, onStop).then(
          (result) => sock.writable && sock.write(JSON.stringify({ ok: true, result: toPlain(result) }) + '\n'),
          (e: unknown) => sock.writable && sock.write(JSON.stringify({ ok: false, error: e instanceof Error ? e.message : String(e) }) + '\n'),
        );
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Send one request to a running simulator; rejects with a clear message when none listens at `dir`. */
export function controlRequest(dir: string, req: ControlRequest): Promise<ControlResponse> {
  const path = controlPath(dir);
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(toPlain(req)) + '\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        sock.end();
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as ControlResponse);
        } catch {
          reject(new Error(`malformed answer from the simulator at ${path}`));
        }
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? ' (is `hvsim serve` running there?)' : '';
      reject(new Error(`no simulator at ${dir}: ${e.code ?? e.message}${why}`));
    });
    sock.on('close', () => reject(new Error(`the simulator at ${dir} closed the connection without answering`)));
  });
}
