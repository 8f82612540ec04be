/**
 * The one error type of the pool store. `code` tells failures apart: an
 * errno name from the failing call (ENOSPC, EACCES, EIO, ...), ETIMEDOUT
 * when a lock was not granted in time, EINVAL for a key or value the
 * record format cannot hold, EBADF after close().
 */
export class PoolError extends Error {
  constructor(
    readonly code: string,
    /** What the store was doing: open, get, set, delete, list, at, load, replay, close. */
    readonly op: string,
    message: string,
    readonly pool?: number,
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PoolError';
  }
}

/** The errno-style code of any thrown value (Node fs errors, LockError, PoolError), or EIO. */
export function codeOf(e: unknown): string {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : 'EIO';
}

/** Wrap `e` as a PoolError for `op` on `file`, keeping its code; a PoolError passes through. */
export function poolError(e: unknown, op: string, pool: number | undefined, file: string | undefined): PoolError {
  if (e instanceof PoolError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  // Node's fs messages already name the call and path ("ENOSPC: no space left on device, write"); say which pool file it was.
  const where = file !== undefined && !msg.includes(file) ? `${file}: ` : '';
  return new PoolError(codeOf(e), op, `${op} ${where}${msg}`, pool, file, { cause: e });
}
