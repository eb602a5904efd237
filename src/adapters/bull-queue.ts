/**
 * @module
 * The queue on BullMQ: the API enqueues job ids; workers (in the API process, or `npm run worker`
 * processes) run them. BullMQ's own guarantees do the rest: a job whose worker dies is found stalled when
 * its lock expires and run again elsewhere; transient failures are retried with exponential backoff;
 * finished jobs are kept in bounded numbers.
 */
import { Queue, Worker, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { unavailable, type JobErrorCode } from '../domain/errors.js';
import type { JobRunner } from '../job-runner.js';
import type { JobQueue, QueueCounts } from '../ports.js';

export const QUEUE_NAME = 'images';

interface JobData {
  processingId: string;
}

const JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
};

export class BullQueue implements JobQueue {
  private readonly queue: Queue<JobData>;

  constructor(connection: Redis, prefix: string, onError: (error: Error) => void) {
    this.queue = new Queue<JobData>(QUEUE_NAME, { connection, prefix: `${prefix}:bull`, defaultJobOptions: JOB_OPTIONS });
    this.queue.on('error', onError);
  }

  async enqueue(processingId: string): Promise<void> {
    try {
      // The job id is the processing id: enqueueing the same job twice is a no-op.
      await this.queue.add('process', { processingId }, { jobId: processingId });
    } catch {
      throw unavailable('queue_unavailable', 'the job queue is unavailable; retry shortly', 2);
    }
  }

  async counts(): Promise<QueueCounts> {
    const counts = await this.queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed');
    return {
      waiting: (counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
      workers: await this.queue.getWorkersCount(),
    };
  }

  async depth(): Promise<number> {
    const counts = await this.queue.getJobCounts('waiting', 'delayed', 'prioritized');
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

/** Why BullMQ gave a job up for good (the job record must say so, or it stays `processing` forever). */
export type TerminalFailure = Extract<JobErrorCode, 'worker_lost' | 'retries_exhausted'>;

export interface BullWorkerOptions {
  connection: Redis;
  prefix: string;
  concurrency: number;
  lockSeconds: number;
  run: JobRunner;
  onError: (error: Error) => void;
  /** Told when BullMQ moves a job to its failed set: it will not be run again. */
  onTerminalFailure: (processingId: string, why: TerminalFailure) => Promise<void>;
}

/** What BullMQ says of a job whose worker stopped renewing its lock more than `maxStalledCount` times. */
const STALLED_TOO_OFTEN = /stalled more than allowable limit|started more than allowable limit/;

/** A BullMQ worker running `run` for each job, `concurrency` at a time. */
export function startBullWorker({
  connection,
  prefix,
  concurrency,
  lockSeconds,
  run,
  onError,
  onTerminalFailure,
}: BullWorkerOptions): Worker<JobData> {
  const worker = new Worker<JobData>(
    QUEUE_NAME,
    async (job) => run(job.data.processingId, { finalAttempt: job.attemptsMade + 1 >= (job.opts.attempts ?? 1) }),
    {
      connection,
      prefix: `${prefix}:bull`,
      concurrency,
      lockDuration: lockSeconds * 1000,
      stalledInterval: lockSeconds * 1000,
      maxStalledCount: 2,
    },
  );
  worker.on('error', onError);
  // Emitted for every failed attempt; only those that left the job in the failed set are final. A job that
  // stalled too often is failed by the next worker that picks it up (BullMQ defers it), without our runner.
  worker.on('failed', (job, error) => {
    if (!job) return;
    void (async () => {
      if ((await job.getState()) !== 'failed') return;
      await onTerminalFailure(job.data.processingId, STALLED_TOO_OFTEN.test(error.message) ? 'worker_lost' : 'retries_exhausted');
    })().catch((failure: unknown) => onError(failure instanceof Error ? failure : new Error(String(failure))));
  });
  return worker;
}
