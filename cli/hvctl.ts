/**
 * hvctl: the administrator's tool. For now: `hvctl msg decode|encode`,
 * raw protocol messages to lossless JSON and back. Pools, status and VF
 * actions join it with the daemons that own them.
 */
import { Command, CommanderError } from 'commander';
import { msgCommand } from './msg.js';
import { kvpCommand } from './kvp.js';

/** Run hvctl with argv (without node and script); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('hvctl')
    .description('Hyper-V guest integration: administration and protocol tools')
    .showHelpAfterError()
    .exitOverride()
    .addCommand(
      msgCommand({
        readStdin: async () => {
          const chunks: Buffer[] = [];
          for await (const c of process.stdin) chunks.push(c as Buffer);
          return Buffer.concat(chunks);
        },
        writeOut: (t) => process.stdout.write(t),
        writeErr: (t) => process.stderr.write(t),
        setExitCode: (c) => (code = c),
      }),
    );
  program.addCommand(kvpCommand({ writeOut: (t) => void process.stdout.write(t), writeErr: (t) => void process.stderr.write(t), setExitCode: (c) => (code = c) }));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    process.stderr.write(`hvctl: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  return code;
}
