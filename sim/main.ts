/**
 * hvsim: the simulated Hyper-V host. `hvsim serve` runs simulated kernel
 * drivers behind device nodes under a directory; the other commands act as
 * the host against a running `hvsim serve` and print what the host saw.
 *
 * Exit status: 0 the host got success, 1 the host got a failure status,
 * 2 no daemon / timeout / usage error / no simulator.
 */
import { Command, CommanderError, Option } from 'commander';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FLAVORS, HV_S_CONT, HV_S_OK, KVP_POOL_NAMES, parsePool, statusName, type Flavor } from '../common/wire/constants.js';
import type { HostRequestOptions, KvpHostRequest, SimTimeouts, VssHostOp } from './host-api.js';
import { controlPath, controlRequest, serveControl, type ControlRequest } from './control.js';
import { FuseServer, cleanStaleMounts, fuseUnavailable } from './fuse-server.js';
import { SocketServer } from './socket-server.js';
import { createSimulator } from './simulator.js';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_NO_ANSWER = 2;

class UsageError extends Error {}

interface GlobalOpts {
  dir?: string;
  json?: boolean;
  wait?: string;
  timeout?: string;
}

/** Seconds from an option, as milliseconds. */
function seconds(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name}: expected a number of seconds, got ${JSON.stringify(text)}`);
  return Math.round(n * 1000);
}

function poolArg(text: string): number {
  const p = parsePool(text);
  if (p === undefined) throw new UsageError(`POOL must be 0-4 or one of ${KVP_POOL_NAMES.join(', ')}; got ${JSON.stringify(text)}`);
  return p;
}

type Plain = Record<string, unknown>;

/** Exit status from what the host saw. */
function exitFor(r: Plain): number {
  if (r.outcome !== 'answered' && r.outcome !== 'kernel') return EXIT_NO_ANSWER;
  return r.status === HV_S_OK ? EXIT_OK : EXIT_FAILED;
}

function describe(r: Plain): string {
  const name = statusName(Number(r.status ?? 0));
  if (r.outcome === 'answered' || r.outcome === 'kernel') return name;
  const why: Record<string, string> = {
    'no-daemon': 'no daemon registered with the device',
    timeout: 'the daemon did not answer within the kernel timeout',
    'daemon-closed': 'the daemon closed the device with the request outstanding',
    dropped: 'the kernel never answered (request dropped)',
  };
  return `${r.status === undefined ? 'no answer' : name}: ${why[String(r.outcome)] ?? String(r.outcome)}`;
}

class Cli {
  out: string[] = [];
  err: string[] = [];
  code = EXIT_OK;

  constructor(private readonly g: () => GlobalOpts) {}

  private dir(): string {
    const d = this.g().dir ?? process.env.HVSIM_DIR;
    if (!d) throw new UsageError('--dir DIR is required (or set HVSIM_DIR)');
    return resolve(d);
  }

  private hostOpts(): HostRequestOptions {
    const o: HostRequestOptions = {};
    const w = seconds('--wait', this.g().wait);
    const t = seconds('--timeout', this.g().timeout);
    if (w !== undefined) o.waitForDaemonMs = w;
    if (t !== undefined) o.hostTimeoutMs = t;
    return o;
  }

  private async send(req: ControlRequest): Promise<Plain> {
    const res = await controlRequest(this.dir(), req);
    if (!res.ok) throw new UsageError(res.error);
    return res.result as Plain;
  }

  private emit(json: unknown, text: string[]): void {
    if (this.g().json) this.out.push(JSON.stringify(json, null, 2));
    else this.out.push(...text);
  }

  /** One host request whose result is printed as is. */
  async single(req: ControlRequest, text: (r: Plain) => string[]): Promise<void> {
    const r = await this.send(req);
    this.code = exitFor(r);
    const ok = this.code === EXIT_OK;
    this.emit(r, ok ? text(r) : []);
    if (!ok && !this.g().json) this.err.push(`hvsim: ${describe(r)}`);
  }

  async kvp(req: KvpHostRequest, text: (r: Plain) => string[]): Promise<void> {
    await this.single({ cmd: 'kvp', req, opts: this.hostOpts() }, text);
  }

  /** ENUMERATE from index 0 until the host gets a non-OK status, as the host walks a pool. */
  async walk(pool: number): Promise<void> {
    const items: { index: number; key: string; value: string }[] = [];
    for (let index = 0; ; index++) {
      const r = await this.send({ cmd: 'kvp', req: { op: 'enum', pool, index }, opts: this.hostOpts() });
      const code = exitFor(r);
      if (code === EXIT_OK) {
        items.push({ index, key: String(r.key ?? ''), value: String(r.value ?? '') });
        continue;
      }
      // HV_S_CONT from the daemon is the normal end of the walk.
      this.code = code === EXIT_FAILED && r.status === HV_S_CONT ? EXIT_OK : code;
      if (this.code !== EXIT_OK) this.err.push(`hvsim: enumerate stopped at index ${index}: ${describe(r)}`);
      break;
    }
    this.emit(
      items,
      items.map((i) => `${i.key}\t${i.value}`),
    );
  }

  async serve(o: { flavor: string; dir: string; fuse?: boolean; kvpTimeout?: string; vssTimeout?: string; vssFreezeTimeout?: string }): Promise<void> {
    if (!FLAVORS.includes(o.flavor as Flavor)) throw new UsageError(`--flavor must be freebsd or linux, got ${JSON.stringify(o.flavor)}`);
    const timeouts: Partial<SimTimeouts> = {};
    const k = seconds('--kvp-timeout', o.kvpTimeout);
    const v = seconds('--vss-timeout', o.vssTimeout);
    const f = seconds('--vss-freeze-timeout', o.vssFreezeTimeout);
    if (k !== undefined) timeouts.kvp = k;
    if (v !== undefined) timeouts.vss = v;
    if (f !== undefined) timeouts.vssFreeze = f;
    const dir = resolve(o.dir);
    const fuseWhy = o.fuse ? fuseUnavailable() : undefined;
    if (fuseWhy) throw new Error(`serve --fuse: ${fuseWhy}`);
    const onError = (e: unknown) => process.stderr.write(`hvsim: ${e instanceof Error ? e.message : String(e)}\n`);
    // FUSE: DIR becomes the mount, so the control socket lives beside it and DIR/hvsim.ctl links to it.
    const ctlDir = o.fuse ? join(tmpdir(), `hvsim-${createHash('sha256').update(dir).digest('hex').slice(0, 16)}`) : dir;
    if (o.fuse) {
      cleanStaleMounts(dir);
      mkdirSync(ctlDir, { recursive: true, mode: 0o700 });
    }
    mkdirSync(dir, { recursive: true });
    const host = createSimulator({ flavor: o.flavor as Flavor, timeouts });
    let stopped!: () => void;
    const done = new Promise<void>((r) => (stopped = r));
    let crashed: string | undefined;
    const control = await serveControl(ctlDir, host, () => stopped());
    const server = o.fuse
      ? new FuseServer(dir, host.nodes, { controlTarget: controlPath(ctlDir), onError, onExit: (why) => ((crashed = why), stopped()) })
      : new SocketServer(dir, host.nodes, onError);
    const onSignal = () => stopped();
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    try {
      await server.start();
      process.stdout.write(`hvsim: ready flavor=${o.flavor} dir=${dir} nodes=${host.nodes.map((n) => n.name).join(',')} transport=${o.fuse ? 'fuse' : 'socket'}\n`);
      await done;
    } finally {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      control.close();
      await server.stop();
      host.close();
      if (o.fuse) rmSync(ctlDir, { recursive: true, force: true });
    }
    if (crashed) throw new Error(`${crashed}; the device nodes are gone, stopping`);
  }
}

function program(cli: Cli): Command {
  const p = new Command('hvsim')
    .description('Simulated Hyper-V host: serves simulated device nodes and sends host requests to the daemons')
    .option('--dir <DIR>', 'directory of a running `hvsim serve` (default: $HVSIM_DIR)')
    .option('--json', 'print what the host saw as JSON')
    .option('--wait <SEC>', 'how long the host waits for a daemon to register (default 5)')
    .option('--timeout <SEC>', 'how long the host waits for any answer (default: the kernel timeout + 5)')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText(
      'after',
      '\nExit status: 0 the host got success, 1 the host got a failure status,\n2 no daemon, timeout, usage error or no simulator.\nPOOL is 0-4 or external, guest, auto, auto_external, auto_internal.',
    );
  const g = () => p.opts<GlobalOpts>();

  p.command('serve')
    .description('serve simulated device nodes under DIR (Unix sockets, or with --fuse files of a FUSE mount) until SIGTERM/SIGINT; prints one ready line')
    .addOption(new Option('--flavor <FLAVOR>', 'kernel to simulate').choices(['freebsd', 'linux']).makeOptionMandatory())
    .option('--dir <DIR>', 'directory for the device nodes and the control socket')
    .option('--fuse', 'mount DIR as a FUSE file system whose files behave like the kernel devices (blocking reads, short-read EINVAL, _IOR/_IOW ioctls); needs Linux, root and /dev/fuse')
    .option('--kvp-timeout <SEC>', 'KVP kernel timeout (FreeBSD 5, Linux 30)')
    .option('--vss-timeout <SEC>', 'VSS kernel timeout (FreeBSD 15 for the whole chain, Linux 30)')
    .option('--vss-freeze-timeout <SEC>', 'VSS FREEZE timeout (FreeBSD 15, Linux 900)')
    .action(async (o) => {
      const dir = o.dir ?? g().dir ?? process.env.HVSIM_DIR;
      if (!dir) throw new UsageError('serve: --dir DIR is required');
      await cli.serve({ ...o, dir });
    });

  const kvp = p.command('kvp').description('Key-Value Pair requests, as the host sends them');
  kvp
    .command('set <POOL> <KEY> <VALUE>')
    .description('host SET (normally pool 0, external)')
    .addOption(new Option('--type <TYPE>', 'value type').choices(['sz', 'u32', 'u64']).default('sz'))
    .action((pool: string, key: string, value: string, o: { type: 'sz' | 'u32' | 'u64' }) =>
      cli.kvp({ op: 'set', pool: poolArg(pool), key, value, valueType: o.type }, (r) => [String(r.statusName)]),
    );
  kvp
    .command('get <POOL> <KEY>')
    .description('host GET of one key')
    .action((pool: string, key: string) => cli.kvp({ op: 'get', pool: poolArg(pool), key }, (r) => [String(r.value ?? '')]));
  kvp
    .command('delete <POOL> <KEY>')
    .description('host DELETE of one key')
    .action((pool: string, key: string) => cli.kvp({ op: 'delete', pool: poolArg(pool), key }, (r) => [String(r.statusName)]));
  kvp
    .command('enum <POOL> [INDEX]')
    .description('host ENUMERATE of one index, or without INDEX the whole pool from 0 to the end')
    .action(async (pool: string, index: string | undefined) => {
      const pn = poolArg(pool);
      if (index === undefined) return cli.walk(pn);
      if (!/^\d+$/.test(index)) throw new UsageError(`INDEX must be a non-negative integer, got ${JSON.stringify(index)}`);
      return cli.kvp({ op: 'enum', pool: pn, index: Number(index) }, (r) => [`${String(r.key)}\t${String(r.value)}`]);
    });
  kvp
    .command('ipinfo <MAC>')
    .description('host GET_IP_INFO for the adapter with this MAC address')
    .option('--family <N>', 'address family bits the host asks for (0-3)', '0')
    .action((mac: string, o: { family: string }) => {
      if (!/^[0-3]$/.test(o.family)) throw new UsageError('--family must be 0-3');
      return cli.kvp({ op: 'ipinfo', mac, addrFamily: Number(o.family) }, (r) => {
        const i = (r.ipInfo ?? {}) as Plain;
        return Object.entries(i).map(([k, v]) => `${k}: ${String(v)}`);
      });
    });
  kvp
    .command('setip <MAC>')
    .description('host SET_IP_INFO (IP injection); MAC is the adapter id the host sends (the NIC\'s VMBus instance GUID on a real host)')
    .requiredOption('--ip <LIST>', "';'-separated addresses")
    .requiredOption('--subnet <LIST>', "';'-separated masks or prefix lengths")
    .option('--gateway <LIST>', "';'-separated gateways", '')
    .option('--dns <LIST>', "';'-separated DNS servers", '')
    .option('--dhcp', 'enable DHCP', false)
    .action((adapterId: string, o: { ip: string; subnet: string; gateway: string; dns: string; dhcp: boolean }) =>
      cli.kvp({ op: 'setip', adapterId, ip: o.ip, subnet: o.subnet, gateway: o.gateway, dns: o.dns, dhcp: o.dhcp }, (r) => [String(r.statusName)]),
    );

  const vss = p.command('vss').description('backup (VSS) requests, as the host sends them');
  for (const [name, op, what] of [
    ['check', 'check', 'HOT_BACKUP: can the guest take a consistent backup?'],
    ['freeze', 'freeze', 'FREEZE the guest file systems'],
    ['thaw', 'thaw', 'THAW them'],
  ] as const) {
    vss
      .command(name)
      .description(what)
      .action(() =>
        cli.single({ cmd: 'vss', op: op as VssHostOp, opts: {} }, (r) => [
          `${String(r.statusName)}${r.flags !== undefined ? ` flags=0x${Number(r.flags).toString(16)}` : ''}`,
        ]),
      );
  }

  p.command('raw')
    .description("deliver exact bytes to the daemon as the driver would and print the daemon's reply")
    .addOption(new Option('--service <SERVICE>', 'which device').choices(['kvp', 'vss']).makeOptionMandatory())
    .requiredOption('--hex <HEX>', 'the message bytes in hex')
    .action(async (o: { service: 'kvp' | 'vss'; hex: string }) => {
      const hex = o.hex.replace(/\s+/g, '');
      if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new UsageError('--hex must be an even number of hex digits');
      await cli.single({ cmd: 'raw', service: o.service, hex, opts: {} }, (r) => [
        `status 0x${(Number(r.status) >>> 0).toString(16).padStart(8, '0')} ${String(r.statusName)}`,
        `reply ${String(r.reply ?? '')}`,
      ]);
    });

  p.command('status')
    .description('what the simulated drivers see: open, registered, request outstanding')
    .action(async () => {
      const res = await controlRequest(dirOf(g), { cmd: 'status' });
      if (!res.ok) throw new UsageError(res.error);
      cli.out.push(JSON.stringify(res.result, null, 2));
    });
  for (const [name, what] of [
    ['remove', 'simulate the driver going away (detach): the daemons see the device vanish'],
    ['restore', 'bring the driver back after remove'],
    ['stop', 'stop the running `hvsim serve`'],
  ] as const) {
    p.command(name)
      .description(what)
      .action(async () => {
        const res = await controlRequest(dirOf(g), { cmd: name });
        if (!res.ok) throw new UsageError(res.error);
      });
  }
  return p;
}

function dirOf(g: () => GlobalOpts): string {
  const d = g().dir ?? process.env.HVSIM_DIR;
  if (!d) throw new UsageError('--dir DIR is required (or set HVSIM_DIR)');
  return resolve(d);
}

/** Run hvsim with argv (without node and script); returns the exit status. Output goes to the process's streams. */
export async function main(argv: string[]): Promise<number> {
  let cli!: Cli;
  const p = program((cli = new Cli(() => p.opts<GlobalOpts>())));
  try {
    await p.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_NO_ANSWER;
    process.stderr.write(`hvsim: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_NO_ANSWER;
  } finally {
    if (cli.out.length) process.stdout.write(cli.out.join('\n') + '\n');
    if (cli.err.length) process.stderr.write(cli.err.join('\n') + '\n');
  }
  return cli.code;
}
