/**
 * @module
 * The embedded default's adapters (no `REDIS_URL`): records in this process and under `STATE_DIR`, an
 * in-process queue, idempotency keys and rate-limit counters in memory, files in the configured store.
 */
import { EmbeddedJobStore } from './adapters/embedded-job-store.js';
import { EmbeddedQueue } from './adapters/embedded-queue.js';
import { MemoryIdempotency } from './adapters/memory-idempotency.js';
import { MemoryRateLimiter } from './adapters/rate-limiters.js';
import { appDeps, IDEMPOTENCY, loggedQueue, openStorage, runner, within, type Edge, type Service } from './compose-shared.js';
import type { Config } from './config.js';
import { throttledErrorLog } from './log.js';
import { createSweeper, scheduleSweeps, sweepIntervalSeconds } from './retention.js';

export async function composeEmbedded(config: Config, edge: Edge): Promise<Service> {
  const { logger, metrics } = edge;
  const { store, processor } = await openStorage(config, edge);
  const jobs = await EmbeddedJobStore.open(config.STATE_DIR);
  const queue = new EmbeddedQueue(runner(config, { jobs, store, processor }, edge), config.WORKER_CONCURRENCY);
  metrics.watchQueue(queue);
  // Jobs that were queued or running when the process last stopped are finished now.
  for (const processingId of await jobs.unfinishedJobs()) await queue.enqueue(processingId);
  const sweep = createSweeper({ jobs, store, retentionSeconds: config.RETENTION_SECONDS });
  const stopSweeps = scheduleSweeps(sweep, sweepIntervalSeconds(config.RETENTION_SECONDS), throttledErrorLog(logger, 'retention sweep'));
  return {
    mode: 'embedded',
    deps: appDeps(config, {
      store, processor, jobs, queue: loggedQueue(queue, logger),
      idempotency: new MemoryIdempotency(IDEMPOTENCY),
      rateLimiter: config.RATE_LIMIT_PER_MINUTE > 0 ? new MemoryRateLimiter(config.RATE_LIMIT_PER_MINUTE) : undefined,
    }, edge.nodeBodyOf),
    idle: (timeoutMs = 60_000) => within(queue.idle(), timeoutMs),
    sweep,
    async close(timeoutMs = 25_000, inFlight = Promise.resolve()) {
      stopSweeps();
      // Unfinished jobs stay on disk as queued/processing and run at the next start.
      await within(queue.idle(), timeoutMs);
      await inFlight.catch(() => undefined);
      await store.close();
    },
  };
}
