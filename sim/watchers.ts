/** Callbacks told that a file's poll() state may have changed (SimFile.onPollChange). */
export class Watchers {
  private readonly cbs = new Set<() => void>();

  /** Register; returns the unsubscribe function. */
  add(cb: () => void): () => void {
    this.cbs.add(cb);
    return () => {
      this.cbs.delete(cb);
    };
  }

  /** Call every watcher; a watcher may unsubscribe (or subscribe others) while this runs. */
  notify(): void {
    for (const cb of [...this.cbs]) cb();
  }
}
