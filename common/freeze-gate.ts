/**
 * The interlock between a freeze and other work in the same process
 * (hvguestd serves KVP beside VSS). A write to a frozen file system blocks
 * the writing thread until the thaw; in one process that thread is also
 * the one that must answer THAW and run the watchdog, so it would never
 * come back. Work that may touch disk therefore runs inside the gate, and
 * the freeze first closes the gate and waits until the work in flight has
 * finished; queued work resumes once the file systems are thawed.
 */

export interface FreezeGate {
  /** Run `fn` while no freeze is held (waits for the thaw first). */
  during<T>(fn: () => Promise<T> | T): Promise<T>;
  /** Close the gate: resolves once nothing runs inside it. Called before freezing. */
  close(): Promise<void>;
  /** Open the gate again (after the thaw, or when the freeze did not happen). Idempotent. */
  open(): void;
  /** True between close() and open(). */
  readonly closed: boolean;
}

export function createFreezeGate(): FreezeGate {
  let closed = false;
  let inFlight = 0;
  let opened: (() => void)[] = [];
  let idle: (() => void)[] = [];
  const wake = (list: (() => void)[]) => list.forEach((f) => f());
  return {
    async during(fn) {
      while (closed) await new Promise<void>((r) => opened.push(r));
      inFlight++;
      try {
        return await fn();
      } finally {
        if (--inFlight === 0) {
          const w = idle;
          idle = [];
          wake(w);
        }
      }
    },
    async close() {
      closed = true;
      while (inFlight > 0) await new Promise<void>((r) => idle.push(r));
    },
    open() {
      if (!closed) return;
      closed = false;
      const w = opened;
      opened = [];
      wake(w);
    },
    get closed() {
      return closed;
    },
  };
}
