/**
 * @module
 * Who is listening for which job's changes: the registry behind `JobStore.onChange` in both stores (the
 * embedded store fills it from its own updates, the Redis store from pub/sub channels).
 */
import { isFinished, type JobRecord } from './jobs.js';

/** Told of a change: with the record as it then stood when the notice carries one, `undefined` when the listener must read it. */
export type ChangeListener = (job: JobRecord | undefined) => void;

export class ChangeListeners {
  private readonly byJob = new Map<string, Set<ChangeListener>>();

  /** Registers `listener` for `processingId`; returns its removal. */
  add(processingId: string, listener: ChangeListener): () => void {
    let set = this.byJob.get(processingId);
    if (!set) this.byJob.set(processingId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.byJob.get(processingId) === set) this.byJob.delete(processingId);
    };
  }

  /** Whether anyone listens for `processingId` (a notice nobody listens for is not decoded). */
  has(processingId: string): boolean {
    return this.byJob.has(processingId);
  }

  /** Calls everyone listening for `processingId`. */
  notify(processingId: string, job: JobRecord | undefined): void {
    for (const listener of [...(this.byJob.get(processingId) ?? [])]) listener(job);
  }

  /** Calls every listener with `undefined` (notices may have been lost: a reconnection), so each reads again. */
  notifyAll(): void {
    for (const [processingId] of this.byJob) this.notify(processingId, undefined);
  }
}

/**
 * Calls `listener` once the store may have seen the job end: a notice of a finished record, or one that
 * carries none (the listener reads to be sure). Returns the unsubscribe.
 */
export function onFinish(
  jobs: { onChange(id: string, listener: ChangeListener): () => void },
  processingId: string,
  listener: () => void,
): () => void {
  return jobs.onChange(processingId, (job) => {
    if (!job || isFinished(job.status)) listener();
  });
}
