/**
 * FullyQualifiedDomainName: the canonical name of this host, as
 * getaddrinfo(AI_CANONNAME) reports it, recomputed after a short cache
 * (the Linux C daemon computed it once at start-up, pitfalls L5) and never
 * an error text (the C daemons answered "getaddrinfo failed", F25).
 *
 * The lookup runs in a child process, getent(1), through the common Runner:
 * a resolver that hangs is killed at the timeout, where an in-process
 * getaddrinfo on a libuv worker thread could only be abandoned and would
 * hold that thread (shared with the device poll) until the resolver gives
 * up; and native code stays in common/ (DESIGN.md). glibc's `getent ahosts`
 * is getaddrinfo with AI_CANONNAME and prints ai_canonname on its first
 * line; FreeBSD's getent has no ahosts, and `getent hosts` prints the
 * resolver's canonical h_name first.
 */
import type { Runner } from '../common/os/run.js';
import type { Flavor } from '../common/wire/constants.js';

/** Canonical name of `host`, or undefined when the lookup failed or timed out. */
export type CanonicalNameLookup = (host: string, timeoutMs: number) => Promise<string | undefined>;

/** The getent lookup in the dialect of `system`'s getent; `getent` is the program's absolute path. */
export function getentLookup(run: Runner, system: Flavor, getent = '/usr/bin/getent'): CanonicalNameLookup {
  return async (host, timeoutMs) => {
    // glibc getent parses options, so "--" keeps a hostname from being read
    // as one; FreeBSD's getent parses none and would look "--" up as a key.
    const args = system === 'linux' ? ['ahosts', '--', host] : ['hosts', host];
    const r = await run(getent, args, { timeoutMs, maxOutput: 16 * 1024 });
    if (r.code !== 0 || r.timedOut || r.error) return undefined;
    return parseGetent(r.stdout, system);
  };
}

/**
 * The canonical name in getent output: Linux `ahosts` "ADDR SOCKTYPE CANON"
 * (first line only), FreeBSD `hosts` "ADDR CANON ALIAS...".
 */
export function parseGetent(stdout: string, system: Flavor): string | undefined {
  const first = stdout.split('\n')[0]!.trim().split(/\s+/);
  const name = system === 'linux' ? first[2] : first[1];
  return name ? name : undefined;
}

export interface FqdnOptions {
  hostname: () => string;
  lookup: CanonicalNameLookup;
  /** How long an answer (or a failure) is reused; default 30 s. */
  ttlMs?: number;
  /** Lookup timeout; default 2 s, well inside the host's 5 s request deadline. */
  timeoutMs?: number;
  now?: () => number;
  /** Told about failed lookups (the value then falls back to the hostname). */
  onFallback?: (host: string, reason: string) => void;
}

/** Returns a function giving the FQDN: cached `ttlMs`, looked up again when it expires or the hostname changes. */
export function createFqdn(o: FqdnOptions): () => Promise<string> {
  const ttl = o.ttlMs ?? 30_000;
  const timeoutMs = o.timeoutMs ?? 2000;
  const now = o.now ?? Date.now;
  let cached: { host: string; value: string; at: number } | undefined;
  // One lookup at a time: concurrent ENUMERATEs share it.
  let pending: { host: string; value: Promise<string> } | undefined;

  const resolve = async (host: string): Promise<string> => {
    let canon: string | undefined;
    let reason = '';
    try {
      // The lookup kills itself at the timeout; the race is a second fence
      // so an injected lookup that never settles cannot stall ENUMERATE.
      let timer: NodeJS.Timeout | undefined;
      const fence = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeoutMs + 500)));
      canon = await Promise.race([o.lookup(host, timeoutMs), fence]).finally(() => clearTimeout(timer));
      if (!canon) reason = 'lookup failed or timed out';
    } catch (e) {
      reason = e instanceof Error ? e.message : String(e);
    }
    // "localhost" comes from an /etc/hosts line that lists the hostname as an
    // alias of 127.0.0.1; it names no machine, so the hostname is better.
    if (canon && /^localhost(\.|$)/i.test(canon) && !/^localhost(\.|$)/i.test(host)) {
      reason = `canonical name is ${canon}`;
      canon = undefined;
    }
    if (!canon) o.onFallback?.(host, reason);
    return canon ?? host;
  };

  return async () => {
    const host = o.hostname();
    if (cached && cached.host === host && now() - cached.at < ttl) return cached.value;
    if (!host) return '';
    if (pending?.host !== host) {
      const p = { host, value: resolve(host).finally(() => pending === p && (pending = undefined)) };
      pending = p;
    }
    const value = await pending.value;
    cached = { host, value, at: now() };
    return value;
  };
}
