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

/** How many jobs whose message could not be queued are kept for another try (the next start finds the rest). */
const MAX_RETRIED_ANNOUNCEMENTS = 10_000;

/**
 * `announce`, plus another try every `everyMs` for each job whose message could not be queued (embedded: a
 * full or failing disk under STATE_DIR), until it goes through; the failure still reaches the caller. A
 * job's message is queued under an id of its own, so a try that overlaps another is harmless.
 */
export function announcingAgain(
  announce: JobEndAnnouncer,
  { everyMs, onError = () => {} }: { everyMs: number; onError?: (error: Error) => void },
): { announce: JobEndAnnouncer; waiting(): number; stop(): void } {
  const failed = new Set<string>();
  let trying = false;
  const timer = setInterval(() => void tryAgain(), everyMs);
  (timer as { unref?: () => void }).unref?.();

  async function tryAgain(): Promise<void> {
    if (trying || failed.size === 0) return;
    trying = true;
    try {
      for (const processingId of [...failed]) {
        try {
          await announce(processingId);
          failed.delete(processingId);
        } catch (error) {
          onError(error instanceof Error ? error : new Error(String(error)));
          // The outbox still refuses: the others would fail alike; wait for the next round.
          return;
        }
      }
    } finally {
      trying = false;
    }
  }

  return {
    async announce(processingId) {
      try {
        await announce(processingId);
        failed.delete(processingId);
      } catch (error) {
        if (failed.size < MAX_RETRIED_ANNOUNCEMENTS) failed.add(processingId);
        else onError(new Error(`${MAX_RETRIED_ANNOUNCEMENTS} job-end webhooks wait already; ${processingId}'s waits for the next start`));
        throw error;
      }
    },
    waiting: () => failed.size,
    stop: () => clearInterval(timer),
  };
}
