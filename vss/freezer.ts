/** What the VSS handler needs from a platform freezer (Linux FIFREEZE, FreeBSD ufssuspend). */

export interface FreezeFailure {
  mountPoint: string;
  code: string;
  message: string;
}

export interface FreezeResult {
  ok: boolean;
  /** Mount points frozen, in freeze order (empty after a failure: everything was thawed again). */
  frozen: string[];
  failure?: FreezeFailure;
  /** Thaw failures during the rollback of a failed freeze. */
  thawFailures?: FreezeFailure[];
}

export interface ThawResult {
  ok: boolean;
  failures: FreezeFailure[];
}

export interface CheckResult {
  ok: boolean;
  /** What a freeze would cover, in freeze order. */
  freezable: string[];
  /** Mounts that will not be frozen and why (one log line each). */
  notes: { mountPoint: string; reason: string }[];
}

export interface Freezer {
  /** Work that may take time or spawn programs, done before the guard and the freeze (FreeBSD: zpool sync). */
  prepare?(): Promise<void>;
  check(): CheckResult;
  /**
   * Freeze `list` (from check().freezable, after the guard and state file
   * know it) in that order; a failure thaws whatever was frozen before
   * returning. Never logs or writes to a local file system.
   */
  freeze(list: readonly string[]): FreezeResult;
  /** Thaw what this freezer froze (or, with nothing recorded, what it would freeze). Never throws. */
  thaw(): ThawResult;
  /** Currently frozen mount points, freeze order. */
  frozen(): string[];
}
