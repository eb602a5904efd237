/**
 * @module
 * A job's end as a webhook message: `{ type: 'job.completed' | 'job.failed', timestamp, data }`, `data`
 * being the job's public status as `GET /status` shows it (with its `download_url` when completed). And the
 * announcer the job runner calls whenever it sees a job ended: it enqueues the message, under an id derived
 * from the job, so calling it again (a retry after a crash, a worker that died after the job's end) is harmless.
 */
import { isFinished, publicJob, type JobRecord } from '../domain/jobs.js';
import type { JobStore, WebhookOutbox } from '../ports.js';
import type { WebhookMessage } from './delivery.js';
import { webhookId } from './signing.js';

/**
 * The message for a finished job with a `notify_url`; `undefined` for any other job.
 * @example jobEndMessage(job, new Date())?.type // 'job.completed'
 */
export function jobEndMessage(job: JobRecord, now: Date): WebhookMessage | undefined {
  if (!job.notify_url || !isFinished(job.status)) return undefined;
  const type = job.status === 'completed' ? 'job.completed' : 'job.failed';
  const timestamp = job.completed_at ?? now.toISOString();
  return {
    id: webhookId(job.processing_id, type),
    processingId: job.processing_id,
    type,
    url: job.notify_url,
    body: JSON.stringify({ type, timestamp, data: publicJob(job) }),
    // WEBHOOK_MAX_AGE_SECONDS counts from the job's end, so announcing it again (after a restart) does not restart it.
    createdAt: timestamp,
  };
}

/**
 * Enqueues the message of a job written ended at once (a cache hit answered `completed` by `POST /process`,
 * which no runner sees); nothing for a job without `notify_url`, or without an outbox.
 */
export async function announceEndedJob(outbox: WebhookOutbox | undefined, job: JobRecord, now = new Date()): Promise<void> {
  const message = jobEndMessage(job, now);
  if (outbox && message) await outbox.enqueue(message);
}

/** Enqueues the end of a job (read afresh from the store) when it ended and asked to be told. */
export type JobEndAnnouncer = (processingId: string) => Promise<void>;

export function createJobEndAnnouncer({
  jobs,
  outbox,
  now = () => new Date(),
}: {
  jobs: Pick<JobStore, 'getJob'>;
  outbox: WebhookOutbox;
  now?: () => Date;
}): JobEndAnnouncer {
  return async function announceJobEnd(processingId) {
    const job = await jobs.getJob(processingId);
    const message = job && jobEndMessage(job, now());
    if (message) await outbox.enqueue(message);
  };
}
