/**
 * @module
 * Who is waiting for which job to finish: the registry behind `JobStore.onFinished` in both stores (the
 * embedded store fills it from its own updates, the Redis store from a pub/sub channel).
 */
export class FinishListeners {
  private readonly byJob = new Map<string, Set<() => void>>();

  /** Registers `listener` for `processingId`; returns its removal. */
  add(processingId: string, listener: () => void): () => void {
    let set = this.byJob.get(processingId);
    if (!set) this.byJob.set(processingId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.byJob.get(processingId) === set) this.byJob.delete(processingId);
    };
  }

  /** Calls everyone waiting for `processingId`. */
  notify(processingId: string): void {
    for (const listener of this.byJob.get(processingId) ?? []) listener();
  }
}
