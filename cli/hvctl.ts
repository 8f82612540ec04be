/**
 * hvctl: the administrator's tool: KVP pools (kvp), FreeBSD VF failover
 * (vf), the VSS daemon's freeze state (vss), raw protocol messages (msg).
 * The composition root: builds the command groups on the process's streams.
 */
import { Command, CommanderError } from 'commander';
import { msgCommand } from './msg.js';
import { kvpCommand } from './kvp.js';
import { vssCommand } from './vss.js';
import { vfCommand } from './vf.js';

/** Run hvctl with argv (without node and script); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  // Every group writes through the same streams and reports its exit status here; only main exits.
  const io = {
    writeOut: (t: string) => void process.stdout.write(t),
    writeErr: (t: string) => void process.stderr.write(t),
    setExitCode: (c: number) => void (code = c),
  };
  const readStdin = async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const program = new Command('hvctl')
    .description('Hyper-V guest integration: administration and protocol tools')
    .showHelpAfterError()
    .exitOverride()
    .addCommand(kvpCommand(io))
    .addCommand(vfCommand(io))
    .addCommand(vssCommand(io))
    .addCommand(msgCommand({ ...io, readStdin }));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    process.stderr.write(`hvctl: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  return code;
}
