/**
 * The simulator's only source of time. Drivers and the host side take a
 * SimClock so tests can drive kernel timeouts with vi.useFakeTimers() or a
 * hand-made clock. Timers exist only while something is outstanding, so an
 * idle simulator holds no timer and never keeps the process awake.
 */

export interface SimClock {
  /** Milliseconds on some fixed scale (durations and nanotime derive from it). */
  now(): number;
  /** Run `fn` once after `ms`; returns a function that cancels it (idempotent). */
  setTimer(ms: number, fn: () => void): () => void;
}

/**
 * Wall clock and the global timer functions. The globals are looked up at
 * each call, not captured at import, so fake timers installed later apply.
 */
export const systemClock: SimClock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** A strictly increasing nanosecond stamp from a clock, like FreeBSD nanotime() used as a transaction id. */
export function nanotimeSource(clock: SimClock): () => bigint {
  let last = 0n;
  return () => {
    const t = BigInt(Math.floor(clock.now())) * 1_000_000n;
    last = t > last ? t : last + 1n;
    return last;
  };
}
