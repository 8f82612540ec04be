/**
 * hv_vss_daemon entry point. The daemon itself is the subject of issue #4; until it
 * lands this build says so plainly instead of pretending to run.
 */

/** Run hv_vss_daemon with argv; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const text = 'hv_vss_daemon: not built yet in this version of hvguest (issue #4); nothing was started\n';
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(text);
    return 0;
  }
  process.stderr.write(text);
  return 69; // EX_UNAVAILABLE
}
