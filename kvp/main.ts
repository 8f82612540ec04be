/**
 * hv_kvp_daemon entry point. The daemon itself is the subject of issue #3; until it
 * lands this build says so plainly instead of pretending to run.
 */

/** Run hv_kvp_daemon with argv; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const text = 'hv_kvp_daemon: not built yet in this version of hvguest (issue #3); nothing was started\n';
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(text);
    return 0;
  }
  process.stderr.write(text);
  return 69; // EX_UNAVAILABLE
}
