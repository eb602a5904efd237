/**
 * @module
 * The memory one process gives to image work, shared by the jobs it runs: a job takes its estimated peak
 * before it starts and gives it back once its work has stopped, so the jobs running at once never add up
 * past the budget. Jobs are admitted first come, first served: a large job at the head waits for room
 * instead of being overtaken forever by small ones.
 */

/** Bytes as whole MiB, rounded up, for messages. */
export const mib = (bytes: number) => Math.ceil(bytes / 2 ** 20);

export interface BudgetUse {
  budgetBytes: number;
  inUseBytes: number;
  waiting: number;
}

export class MemoryBudget {
  private inUse = 0;
  private readonly queue: Array<{ bytes: number; admit: () => void }> = [];

  constructor(readonly budgetBytes: number) {}

  /** True when a job of this estimate can ever run here. */
  fits(bytes: number): boolean {
    return bytes <= this.budgetBytes;
  }

  /**
   * Waits until `bytes` are free, takes them, and resolves with the function that gives them back (once;
   * later calls do nothing). A request larger than the whole budget is the caller's to refuse (`fits`).
   */
  async take(bytes: number): Promise<() => void> {
    const amount = Math.min(Math.max(0, bytes), this.budgetBytes);
    if (this.queue.length === 0 && this.inUse + amount <= this.budgetBytes) this.inUse += amount;
    else await new Promise<void>((admit) => this.queue.push({ bytes: amount, admit }));
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.inUse -= amount;
      this.admitWaiting();
    };
  }

  use(): BudgetUse {
    return { budgetBytes: this.budgetBytes, inUseBytes: this.inUse, waiting: this.queue.length };
  }

  private admitWaiting(): void {
    while (this.queue.length > 0 && this.inUse + this.queue[0]!.bytes <= this.budgetBytes) {
      const next = this.queue.shift()!;
      this.inUse += next.bytes;
      next.admit();
    }
  }
}
