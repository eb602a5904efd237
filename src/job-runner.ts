/**
 * @module
 * Runs one job: the same code behind the embedded queue and a Redis worker. Running a job twice is
 * harmless (results are keyed by content and written atomically), and every failure ends the job
 * `failed` with a code and a message; nothing escapes to crash the worker.
 */
import { AppError } from './domain/errors.js';
import { onFinish } from './domain/change-listeners.js';
import { isFinished, resultName, type JobRecord, type JobResult, storedResult } from './domain/jobs.js';
import type { Operation } from './domain/operations.js';
import { silentLogger, type Logger } from './log.js';
import type { ImageProcessor, ImageStore, JobOutcome, JobStore } from './ports.js';
import type { JobEndAnnouncer } from './webhooks/events.js';

export interface JobRunnerDeps {
  jobs: JobStore;
  store: ImageStore;
  processor: ImageProcessor;
  timeoutSeconds: number;
  now?: () => Date;
  logger?: Logger;
  /** Told of every finished job (metrics). */
  observe?: (outcome: 'completed' | 'failed', operations: Operation[], seconds: number) => void;
  /**
   * Enqueues the job's webhook once it ended; called again for a job found already ended (its previous run
   * died between the end and the enqueue), which is harmless: the message id is the job's. A failure is
   * rethrown, so a queue that retries (Redis mode) runs this again.
   */
  announce?: JobEndAnnouncer;
}

export interface RunOptions {
  /**
   * False when the queue will try again: an unexpected failure or a fault of a dependency (a storage or
   * Redis error, or an `AppError` of status 5xx) then leaves the job `processing` and is rethrown for the
   * retry, instead of ending the job `failed`. Failures of the image itself (a 4xx `AppError`) never change
   * on a retry and end the job at once.
   */
  finalAttempt?: boolean;
}

export type JobRunner = (processingId: string, options?: RunOptions) => Promise<JobOutcome>;

export function createJobRunner({
  jobs,
  store,
  processor,
  timeoutSeconds,
  now = () => new Date(),
  logger = silentLogger,
  observe = () => {},
  announce,
}: JobRunnerDeps): JobRunner {
  if (!announce) return runOnce;
  return async function runJob(processingId, options) {
    const outcome = await runOnce(processingId, options);
    try {
      await announce(processingId);
    } catch (error) {
      logger.warn({ processing_id: processingId, err: String(error) }, 'the job ended but its webhook could not be queued');
      throw error;
    }
    return outcome;
  };

  async function runOnce(processingId: string, { finalAttempt = true }: RunOptions = {}): Promise<JobOutcome> {
    const job = await jobs.getJob(processingId);
    if (!job || isFinished(job.status)) return 'skipped';
    const startedAt = now();
    const log = logger.child({ processing_id: processingId, file_id: job.file_id });
    log.info(
      { operations: job.operations, output: job.output, queued_ms: startedAt.getTime() - Date.parse(job.created_at) },
      'job started',
    );
    const started = await jobs.updateJob(processingId, { status: 'processing', started_at: startedAt.toISOString() });
    // Another run ended it meanwhile (a duplicate after a lost lock): nothing to do, nothing to overwrite.
    if (!started || isFinished(started.status)) return 'skipped';
    try {
      const { result, shared } = await produce(job);
      const completedAt = now();
      const durationMs = completedAt.getTime() - startedAt.getTime();
      // The cache first: a job waiting for this result, woken by the end of this one, finds it at once.
      await jobs.markCompleted(job.cache_key, processingId);
      // `cached`: the result came from another job (finished before, or computing it at the same time).
      await jobs.updateJob(processingId, {
        status: 'completed',
        result,
        cached: shared,
        completed_at: completedAt.toISOString(),
        duration_ms: durationMs,
      });
      log.info({ duration_ms: durationMs, result }, 'job completed');
      observe('completed', job.operations, durationMs / 1000);
      return 'completed';
    } catch (error) {
      const permanent = error instanceof AppError && error.status < 500;
      if (!permanent && !finalAttempt) {
        // The record stays `processing` (a status only moves forward) while the queue waits to retry.
        log.warn({ err: String(error) }, 'job hit a transient failure; it will be retried');
        throw error;
      }
      const completedAt = now();
      const durationMs = completedAt.getTime() - startedAt.getTime();
      const failure =
        error instanceof AppError
          ? { code: error.code, message: error.detail }
          : { code: 'internal_error' as const, message: 'processing failed unexpectedly' };
      await jobs.updateJob(processingId, {
        status: 'failed',
        error: failure,
        completed_at: completedAt.toISOString(),
        duration_ms: durationMs,
      });
      log.warn({ duration_ms: durationMs, error: failure, ...(error instanceof AppError ? {} : { err: String(error) }) }, 'job failed');
      observe('failed', job.operations, durationMs / 1000);
      return 'failed';
    } finally {
      // Once the job's end is recorded (a no-op unless this job held the claim).
      await jobs.releaseCompute(job.cache_key, processingId).catch(() => undefined);
    }
  }

  /**
   * The job's result, and whether it came from another job: one with the same key that finished meanwhile
   * (or this one before a crash), or one computing it right now, which this job waits for instead of
   * spending the CPU again. A claim whose holder died expires, and the waiter computes then.
   */
  async function produce(job: JobRecord): Promise<{ result: JobResult; shared: boolean }> {
    const claimSeconds = timeoutSeconds + 30;
    const waitUntil = Date.now() + claimSeconds * 1000;
    for (;;) {
      const earlier = (await storedResult(jobs, store, job.cache_key))?.result;
      if (earlier) return { result: earlier, shared: true };
      const holder = await jobs.claimCompute(job.cache_key, job.processing_id, claimSeconds);
      if (holder === job.processing_id || Date.now() > waitUntil) break;
      await endOf(holder, 1000);
    }
    return { result: await compute(job), shared: false };
  }

  /** Resolves when the job ends (the store's notice), or after `ms` at the latest. */
  function endOf(processingId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const stop = onFinish(jobs, processingId, done);
      function done() {
        clearTimeout(timer);
        stop();
        resolve();
      }
    });
  }

  async function compute(job: JobRecord): Promise<JobResult> {
    const file = await jobs.getFile(job.file_id);
    if (!file) throw new AppError(422, 'file_missing', 'the uploaded file is no longer known');
    const task = {
      fileId: file.file_id,
      input: file,
      operations: job.operations,
      output: job.output,
      keepMetadata: job.keep_metadata,
      timeoutSeconds,
    };
    // Written while the job still holds its memory budget: the encoded result is part of its peak.
    return processor.process(task, async (image) => {
      const written = await store.writeResult(resultName(job), image.data);
      return { format: job.output.format, width: image.width, height: image.height, size_bytes: written.sizeBytes, sha256: written.sha256 };
    });
  }
}
