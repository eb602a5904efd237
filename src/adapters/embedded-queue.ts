/**
 * @module
 * The embedded default's queue: jobs run in this process, at most `concurrency` at once, first in first out.
 * The queue itself holds only ids; the job store holds the state, so after a restart the store's unfinished
 * jobs are simply enqueued again.
 */
import type { JobRunner } from '../job-runner.js';
import type { JobQueue, QueueCounts } from '../ports.js';

export class EmbeddedQueue implements JobQueue {
  private readonly waiting: string[] = [];
  private active = 0;
  private completed = 0;
  private failed = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly run: JobRunner,
    private readonly concurrency: number,
  ) {}

  async enqueue(processingId: string): Promise<void> {
    this.waiting.push(processingId);
    // Start on the next turn of the event loop: the caller answers (and logs) "queued" first.
    setImmediate(() => this.pump());
  }

  async counts(): Promise<QueueCounts> {
    return {
      waiting: this.waiting.length,
      active: this.active,
      completed: this.completed,
      failed: this.failed,
      workers: this.concurrency > 0 ? 1 : 0,
    };
  }

  async depth(): Promise<number> {
    return this.waiting.length;
  }

  /** Resolves when nothing is waiting or running (for a clean stop and for tests). */
  idle(): Promise<void> {
    if (this.active === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.active < this.concurrency && this.waiting.length > 0) {
      const id = this.waiting.shift()!;
      this.active += 1;
      this.run(id)
        .then((outcome) => {
          if (outcome === 'completed') this.completed += 1;
          if (outcome === 'failed') this.failed += 1;
        })
        .catch(() => {
          this.failed += 1;
        })
        .finally(() => {
          this.active -= 1;
          this.pump();
          if (this.active === 0 && this.waiting.length === 0) {
            const waiters = this.idleWaiters;
            this.idleWaiters = [];
            for (const resolve of waiters) resolve();
          }
        });
    }
  }
}
