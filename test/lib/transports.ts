/**
 * The transports `hvsim serve` offers, for end-to-end suites that run the
 * same cases on each: Unix sockets (everywhere) and FUSE files (Linux, root,
 * /dev/fuse, the built front-end; skipped visibly with the reason when one
 * is missing).
 */
import { cleanStaleMounts, fuseUnavailable } from '../../sim/fuse-server.js';

export interface SimTransport {
  name: 'socket' | 'fuse';
  /** Extra arguments for `hvsim serve`. */
  serveArgs: string[];
  /** Why this transport cannot run here; undefined when it can. */
  skip: string | undefined;
}

export const SIM_TRANSPORTS: readonly SimTransport[] = [
  { name: 'socket', serveArgs: [], skip: undefined },
  { name: 'fuse', serveArgs: ['--fuse'], skip: fuseUnavailable() },
];

/** Title suffix naming the transport, and the skip reason when there is one. */
export const transportTitle = (t: SimTransport): string => `${t.name}${t.skip ? ` (skipped: ${t.skip})` : ''}`;

/** After a simulator stopped: no FUSE mount may stay at `dir` (a test that failed half-way must not leave one behind). */
export function noMountLeft(dir: string): void {
  cleanStaleMounts(dir);
}
