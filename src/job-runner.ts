/**
 * @module
 * Runs one job: the same code behind the embedded queue and a Redis worker. Running a job twice is
 * harmless (results are keyed by content and written atomically), and every failure ends the job
 * `failed` with a code and a message; nothing escapes to crash the worker.
 */
import { AppError } from './domain/errors.js';
import { isFinished, resultName, type JobRecord, type JobResult } from './domain/jobs.js';
import type { Operation } from './domain/operations.js';
import { silentLogger, type Logger } from './log.js';
import type { ImageProcessor, ImageStore, JobOutcome, JobStore } from './ports.js';

export interface JobRunnerDeps {
  jobs: JobStore;
  store: ImageStore;
  processor: ImageProcessor;
  timeoutSeconds: number;
  now?: () => Date;
  logger?: Logger;
  /** Told of every finished job (metrics). */
  observe?: (outcome: 'completed' | 'failed', operations: Operation[], seconds: number) => void;
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

export function createJobRunner({ jobs, store, processor, timeoutSeconds, now = () => new Date(), logger = silentLogger, observe = () => {} }: JobRunnerDeps): JobRunner {
  return async function runJob(processingId, { finalAttempt = true } = {}) {
    const job = await jobs.getJob(processingId);
    if (!job || isFinished(job.status)) return 'skipped';
    const startedAt = now();
    const log = logger.child({ processing_id: processingId, file_id: job.file_id });
    log.info({ operations: job.operations, output: job.output, queued_ms: startedAt.getTime() - Date.parse(job.created_at) }, 'job started');
    const started = await jobs.updateJob(processingId, { status: 'processing', started_at: startedAt.toISOString() });
    // Another run ended it meanwhile (a duplicate after a lost lock): nothing to do, nothing to overwrite.
    if (!started || isFinished(started.status)) return 'skipped';
    try {
      const result = await produce(job);
      const completedAt = now();
      const durationMs = completedAt.getTime() - startedAt.getTime();
      await jobs.updateJob(processingId, { status: 'completed', result, completed_at: completedAt.toISOString(), duration_ms: durationMs });
      await jobs.markCompleted(job.cache_key, processingId);
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
      const failure = error instanceof AppError
        ? { code: error.code, message: error.detail }
        : { code: 'internal_error', message: 'processing failed unexpectedly' };
      await jobs.updateJob(processingId, {
        status: 'failed',
        error: failure,
        completed_at: completedAt.toISOString(),
        duration_ms: durationMs,
      });
      log.warn({ duration_ms: durationMs, error: failure, ...(error instanceof AppError ? {} : { err: String(error) }) }, 'job failed');
      observe('failed', job.operations, durationMs / 1000);
      return 'failed';
    }
  };

  async function produce(job: JobRecord): Promise<JobResult> {
    // Another job with the same key may have finished meanwhile (or this one ran before a crash).
    const doneId = await jobs.findCompleted(job.cache_key);
    const done = doneId ? await jobs.getJob(doneId) : undefined;
    if (done?.result && (await store.hasResult(resultName(job)))) return done.result;
    const file = await jobs.getFile(job.file_id);
    if (!file) throw new AppError(422, 'file_missing', 'the uploaded file is no longer known');
    const image = await processor.process({
      fileId: file.file_id,
      inputFormat: file.format,
      pages: file.pages,
      operations: job.operations,
      output: job.output,
      keepMetadata: job.keep_metadata,
      timeoutSeconds,
    });
    const written = await store.writeResult(resultName(job), image.data);
    return { format: job.output.format, width: image.width, height: image.height, size_bytes: written.sizeBytes, sha256: written.sha256 };
  }
}
