/**
 * `hvctl msg`: turn one daemon <-> kernel message into its lossless JSON
 * form and back (common/wire/json.ts), for looking at captured traffic and
 * hand-crafting messages for the simulator.
 *
 *   msg decode --flavor F --service S [--reply] [--op N] [--variant V] [--hex HEX]
 *   msg encode [--flavor F] [--service S] [--reply]      (JSON on stdin)
 *
 * Errors go to stderr, name what is wrong and set exit code 2; commander's
 * own usage errors are rethrown as CommanderError with exit code 2 (help:
 * 0) for hvctl's main to turn into its exit, since only main exits.
 */
import { Command, CommanderError } from 'commander';
import { FLAVORS, type Flavor } from '../common/wire/constants.js';
import { WireError } from '../common/wire/errors.js';
import { fromJson, MSG_SERVICES, toJson, type JsonOptions, type MsgService } from '../common/wire/json.js';
import { KVP_VARIANTS, type KvpVariant } from '../common/wire/kvp.js';

/** Where the command reads and writes; tests pass their own. */
export interface MsgIo {
  readStdin(): Promise<Buffer>;
  writeOut(text: string): void;
  writeErr(text: string): void;
  setExitCode(code: number): void;
}

/** Exit code for every error the msg command reports. */
export const MSG_EXIT_USAGE = 2;

/** Options of `msg decode` as commander hands them over (strings, unchecked). */
export interface DecodeArgs {
  flavor?: string;
  service?: string;
  reply?: boolean;
  op?: string;
  variant?: string;
  hex?: string;
}

/** Options of `msg encode`; each one given must agree with the JSON, and fills in what the JSON leaves out. */
export interface EncodeArgs {
  flavor?: string;
  service?: string;
  reply?: boolean;
}

/** Text for stdout, or an error message for stderr. */
export type Outcome = { ok: true; out: string } | { ok: false; error: string };

const fail = (error: string): Outcome => ({ ok: false, error });

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

const processIo: MsgIo = {
  readStdin: () => readAll(process.stdin),
  writeOut: (t) => void process.stdout.write(t),
  writeErr: (t) => void process.stderr.write(t),
  setExitCode: (c) => {
    process.exitCode = c;
  },
};

type Checked<T> = { value: T | undefined } | { error: string };

function checkChoice<T extends string>(option: string, v: string | undefined, choices: readonly T[], required: boolean): Checked<T> {
  const list = choices.join(' or ');
  if (v === undefined) return required ? { error: `--${option} is required (${list})` } : { value: undefined };
  return choices.includes(v as T) ? { value: v as T } : { error: `--${option}: unknown ${option} "${v}" (expected ${list})` };
}

/** Parse hex text (whitespace allowed between digits) into bytes, or say what is wrong with it. */
export function parseHexText(text: string): Buffer | string {
  const s = text.replace(/\s+/g, '');
  const badAt = s.search(/[^0-9a-fA-F]/);
  if (badAt >= 0) return `not hex: "${s[badAt]}" at digit ${badAt + 1}`;
  if (s.length % 2 !== 0) return `not hex: odd number of digits (${s.length})`;
  return Buffer.from(s, 'hex');
}

/** Parse `--op`: decimal or 0x-hex, 0..255 (the op is one byte). */
function parseOp(text: string): number | string {
  const n = /^(?:0x[0-9a-f]+|[0-9]+)$/i.test(text) ? Number(text) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 255 ? n : `--op: expected an integer 0..255, got "${text}"`;
}

/** `msg decode`: bytes (from --hex, else `stdin`) to pretty JSON. */
export function runDecode(args: DecodeArgs, stdin: Buffer | undefined): Outcome {
  const flavor = checkChoice<Flavor>('flavor', args.flavor, FLAVORS, true);
  if ('error' in flavor) return fail(flavor.error);
  const service = checkChoice<MsgService>('service', args.service, MSG_SERVICES, true);
  if ('error' in service) return fail(service.error);
  const opts: JsonOptions = { flavor: flavor.value as Flavor, service: service.value as MsgService, reply: args.reply === true };
  if (args.op !== undefined) {
    const op = parseOp(args.op);
    if (typeof op === 'string') return fail(op);
    opts.op = op;
  }
  if (args.variant !== undefined) {
    if (args.variant !== 'none' && !KVP_VARIANTS.includes(args.variant as KvpVariant)) {
      return fail(`--variant: unknown variant "${args.variant}" (expected ${KVP_VARIANTS.join(', ')} or none)`);
    }
    opts.variant = args.variant as KvpVariant | 'none';
  }
  let bytes: Buffer;
  if (args.hex !== undefined) {
    const b = parseHexText(args.hex);
    if (typeof b === 'string') return fail(`--hex: ${b}`);
    bytes = b;
  } else {
    bytes = stdin ?? Buffer.alloc(0);
  }
  const j = toJson(bytes, opts);
  if (j instanceof WireError) {
    const from = args.hex !== undefined ? '--hex' : 'stdin';
    return fail(`${from}: ${j.message}${bytes.length === 0 && from === 'stdin' ? ' (nothing on stdin; pass --hex or pipe the raw bytes)' : ''}`);
  }
  return { ok: true, out: `${JSON.stringify(j, null, 2)}\n` };
}

/** `msg encode`: JSON text to one line of lowercase hex. */
export function runEncode(args: EncodeArgs, stdinText: string): Outcome {
  const flavor = checkChoice<Flavor>('flavor', args.flavor, FLAVORS, false);
  if ('error' in flavor) return fail(flavor.error);
  const service = checkChoice<MsgService>('service', args.service, MSG_SERVICES, false);
  if ('error' in service) return fail(service.error);
  let obj: unknown;
  try {
    obj = JSON.parse(stdinText);
  } catch (e) {
    return fail(`stdin: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return fail('stdin: expected one JSON object (the output of msg decode)');
  const msg: Record<string, unknown> = { ...(obj as Record<string, unknown>) };
  const given: [string, unknown][] = [
    ['flavor', flavor.value],
    ['service', service.value],
    ['reply', args.reply === true ? true : undefined],
  ];
  for (const [key, v] of given) {
    if (v === undefined) continue;
    if (msg[key] === undefined) msg[key] = v;
    else if (msg[key] !== v) return fail(`--${key} ${String(v)} disagrees with the JSON's ${key} ${JSON.stringify(msg[key])}`);
  }
  const buf = fromJson(msg);
  if (buf instanceof WireError) return fail(`stdin: ${buf.message}`);
  return { ok: true, out: `${buf.toString('hex')}\n` };
}

/** Commander reports usage errors with exit code 1; this command uses 2 for every usage error. */
function rethrowAsUsage(err: CommanderError): never {
  if (err.exitCode === 1) throw new CommanderError(MSG_EXIT_USAGE, err.code, err.message);
  throw err;
}

/** The `msg` command with `decode` and `encode` subcommands, ready for hvctl's program.addCommand(). */
export function msgCommand(io: MsgIo = processIo): Command {
  const report = (o: Outcome): void => {
    if (o.ok) io.writeOut(o.out);
    else {
      io.writeErr(`msg: ${o.error}\n`);
      io.setExitCode(MSG_EXIT_USAGE);
    }
  };

  const decode = new Command('decode')
    .description('print one message as lossless JSON (bytes from --hex, or raw bytes on stdin)')
    .option('--flavor <flavor>', 'freebsd or linux (required)')
    .option('--service <service>', 'kvp or vss (required)')
    .option('--reply', 'a daemon reply: bytes 0..3 are the status word')
    .option('--op <n>', 'KVP: the request op a reply answers (chooses the body variant)')
    .option('--variant <name>', `KVP: force the body variant (${KVP_VARIANTS.join(', ')}, none)`)
    .option('--hex <hex>', 'the message as hex instead of raw bytes on stdin')
    .action(async (opts: DecodeArgs) => {
      // Reading stdin only when needed: with --hex and a terminal on stdin, reading would block.
      const stdin = opts.hex === undefined ? await io.readStdin() : undefined;
      report(runDecode(opts, stdin));
    });

  const encode = new Command('encode')
    .description('read the JSON of msg decode on stdin and print the message as one line of hex')
    .option('--flavor <flavor>', 'freebsd or linux (must match the JSON when both give it)')
    .option('--service <service>', 'kvp or vss (must match the JSON when both give it)')
    .option('--reply', 'a daemon reply (must match the JSON when both give it)')
    .action(async (opts: EncodeArgs) => {
      report(runEncode(opts, (await io.readStdin()).toString('utf8')));
    });

  const msg = new Command('msg').description('decode or encode one daemon <-> kernel message (lossless JSON)');
  msg.addCommand(decode);
  msg.addCommand(encode);
  // addCommand() copies no settings from a parent, so each command gets its own.
  for (const c of [msg, decode, encode]) {
    c.exitOverride(rethrowAsUsage).configureOutput({ writeOut: io.writeOut, writeErr: io.writeErr });
  }
  return msg;
}
