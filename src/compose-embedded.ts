/**
 * @module
 * The embedded default's adapters (no `REDIS_URL`): records in this process and under `STATE_DIR`, an
 * in-process queue, idempotency keys and rate-limit counters in memory, files in the configured store.
 */
import { EmbeddedJobStore } from './adapters/embedded-job-store.js';
import { EmbeddedQueue } from './adapters/embedded-queue.js';
import { MemoryIdempotency } from './adapters/memory-idempotency.js';
import { EmbeddedWebhookOutbox } from './adapters/embedded-webhook-outbox.js';
import { MemoryRateLimiter } from './adapters/rate-limiters.js';
import { appDeps, IDEMPOTENCY, loggedQueue, openStorage, runner, webhookParts, within, type Edge, type Service } from './compose-shared.js';
import type { Config } from './config.js';
import { throttledErrorLog } from './log.js';
import { createSweeper, scheduleSweeps, sweepIntervalSeconds } from './retention.js';
import { announcingAgain, createJobEndAnnouncer } from './webhooks/events.js';

/** How often a job-end message that could not be written is tried again. */
const ANNOUNCE_RETRY_MS = 60_000;

export async function composeEmbedded(config: Config, edge: Edge): Promise<Service> {
  const { logger, metrics } = edge;
  const { store, processor } = await openStorage(config, edge);
  const jobs = await EmbeddedJobStore.open(config.STATE_DIR);
  const { guard, delivery } = await webhookParts(config);
  const outbox =
    delivery &&
    (await EmbeddedWebhookOutbox.open({
      stateDir: config.STATE_DIR,
      delivery,
      concurrency: config.WEBHOOK_CONCURRENCY,
      retentionMs: config.RETENTION_SECONDS * 1000,
      observe: metrics.observeWebhook,
      onError: throttledErrorLog(logger, 'webhooks'),
    }));
  // A message that cannot be written (a full disk) is tried again every minute, not only at the next start.
  const announcer =
    outbox &&
    announcingAgain(createJobEndAnnouncer({ jobs, outbox }), {
      everyMs: ANNOUNCE_RETRY_MS,
      onError: throttledErrorLog(logger, 'webhooks'),
    });
  const announce = announcer?.announce;
  const queue = new EmbeddedQueue(runner(config, { jobs, store, processor }, edge, announce), config.WORKER_CONCURRENCY);
  metrics.watchQueue(queue);
  // Jobs that were queued or running when the process last stopped are finished now, and the webhooks of
  // jobs that ended just before it stopped (before their message was written) are sent.
  for (const processingId of await jobs.unfinishedJobs()) await queue.enqueue(processingId);
  if (announce) {
    for (const processingId of jobs.endedJobsToNotify(new Date(Date.now() - config.WEBHOOK_MAX_AGE_SECONDS * 1000)))
      await announce(processingId);
  }
  const sweep = createSweeper({ jobs, store, retentionSeconds: config.RETENTION_SECONDS });
  const stopSweeps = scheduleSweeps(sweep, sweepIntervalSeconds(config.RETENTION_SECONDS), throttledErrorLog(logger, 'retention sweep'));
  return {
    mode: 'embedded',
    deps: appDeps(
      config,
      {
        store,
        processor,
        jobs,
        queue: loggedQueue(queue, logger),
        idempotency: new MemoryIdempotency(IDEMPOTENCY),
        rateLimiter: config.RATE_LIMIT_PER_MINUTE > 0 ? new MemoryRateLimiter(config.RATE_LIMIT_PER_MINUTE) : undefined,
        webhooks: { outbox, notifyUrls: guard },
      },
      edge.nodeBodyOf,
    ),
    idle: (timeoutMs = 60_000) => within(queue.idle(), timeoutMs),
    sweep,
    async close(timeoutMs = 25_000, inFlight = Promise.resolve()) {
      stopSweeps();
      announcer?.stop();
      // Unfinished jobs stay on disk as queued/processing and run at the next start; so do webhook messages
      // (those of jobs that end meanwhile too): attempts under way get the same time, one cut is made again.
      await Promise.all([within(queue.idle(), timeoutMs), outbox?.close(timeoutMs)]);
      await inFlight.catch(() => undefined);
      await store.close();
    },
  };
}
