/**
 * @module
 * Redis mode's adapters: state, cache, idempotency keys and rate-limit counters in Redis, the queue on
 * BullMQ, and a BullMQ worker in this process when `WORKER_CONCURRENCY` > 0; files in the configured store.
 * Imported by `composeService` only when `REDIS_URL` is set, so the embedded default never loads ioredis or BullMQ.
 */
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { BullQueue, startBullWorker, type TerminalFailure } from './adapters/bull-queue.js';
import { BullWebhookOutbox, startWebhookWorker } from './adapters/bull-webhook-outbox.js';
import { RedisRateLimiter } from './adapters/rate-limiters.js';
import { connectRedis, redisProbe, whenReady } from './adapters/redis-connection.js';
import { RedisIdempotency } from './adapters/redis-idempotency.js';
import { RedisJobStore } from './adapters/redis-job-store.js';
import { appDeps, IDEMPOTENCY, loggedQueue, openStorage, runner, webhookParts, within, type Edge, type Service } from './compose-shared.js';
import type { Config } from './config.js';
import { throttledErrorLog, type Logger } from './log.js';
import { createSweeper, scheduleSweeps, sweepIntervalSeconds } from './retention.js';
import { createJobEndAnnouncer } from './webhooks/events.js';

const TERMINAL_FAILURES: Record<TerminalFailure, string> = {
  worker_lost:
    'the job was interrupted three times while it ran (its worker was stopped, ran out of memory or lost Redis); it was not tried again. Ask for it again with POST /process',
  retries_exhausted: 'the job failed three times on a fault of the service (its file store or Redis); ask for it again with POST /process',
};

/**
 * Ends the job record `failed` when BullMQ has given the job up, unless it already ended (the write is a
 * compare-and-set). Retried for a while: a Redis blip must not leave it `processing` forever.
 */
async function recordTerminalFailure(jobs: RedisJobStore, processingId: string, why: TerminalFailure, logger: Logger): Promise<void> {
  const failure = { code: why, message: TERMINAL_FAILURES[why] };
  for (let attempt = 1; ; attempt++) {
    try {
      const job = await jobs.updateJob(processingId, { status: 'failed', error: failure, completed_at: new Date().toISOString() });
      if (job?.status === 'failed' && job.error?.code === why) logger.warn({ processing_id: processingId, error: failure }, 'job failed');
      return;
    } catch (error) {
      if (attempt === 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
    }
  }
}

export async function composeRedis(config: Config, url: string, edge: Edge): Promise<Service> {
  const { logger, metrics } = edge;
  const prefix = config.REDIS_KEY_PREFIX;
  const { store, processor } = await openStorage(config, edge);
  const api = connectRedis(url, 'api', throttledErrorLog(logger, 'redis'));
  if (!(await whenReady(api, 5000))) logger.warn('Redis is not reachable yet; starting anyway, unhealthy until it is');
  const jobs = new RedisJobStore(api, prefix, config.RETENTION_SECONDS, () =>
    connectRedis(url, 'events', throttledErrorLog(logger, 'redis (events)')),
  );
  const queue = new BullQueue(api, prefix, throttledErrorLog(logger, 'queue'));
  metrics.watchQueue(queue);
  const { guard, delivery } = await webhookParts(config);
  const outbox =
    delivery && new BullWebhookOutbox(api, prefix, delivery.policy, config.RETENTION_SECONDS, throttledErrorLog(logger, 'webhook queue'));
  const announce = outbox && createJobEndAnnouncer({ jobs, outbox });
  const runJob = runner(config, { jobs, store, processor }, edge, announce);

  const terminalWrites = new Set<Promise<void>>();
  let workerConnection: Redis | undefined;
  let worker: Worker | undefined;
  let webhookWorker: Worker | undefined;
  if (config.WORKER_CONCURRENCY > 0) {
    workerConnection = connectRedis(url, 'worker', throttledErrorLog(logger, 'redis (worker)'));
    worker = startBullWorker({
      connection: workerConnection,
      prefix,
      concurrency: config.WORKER_CONCURRENCY,
      lockSeconds: config.WORKER_LOCK_SECONDS,
      run: runJob,
      onError: throttledErrorLog(logger, 'worker'),
      onTerminalFailure: (processingId, why) => {
        // Tracked, so a stop waits for it: a write lost here would leave the job processing for good.
        // A job BullMQ gave up never passed the runner's end: its webhook is announced here.
        const write = recordTerminalFailure(jobs, processingId, why, logger)
          .then(() => announce?.(processingId))
          .finally(() => terminalWrites.delete(write));
        terminalWrites.add(write);
        return write;
      },
    });
    if (delivery) {
      webhookWorker = startWebhookWorker({
        connection: workerConnection,
        redis: workerConnection,
        prefix,
        concurrency: config.WEBHOOK_CONCURRENCY,
        lockSeconds: config.WORKER_LOCK_SECONDS,
        retentionSeconds: config.RETENTION_SECONDS,
        delivery,
        observe: metrics.observeWebhook,
        onError: throttledErrorLog(logger, 'webhook worker'),
      });
    }
  }

  const interval = sweepIntervalSeconds(config.RETENTION_SECONDS);
  const sweep = createSweeper({
    jobs,
    store,
    retentionSeconds: config.RETENTION_SECONDS,
    acquire: async () => (await api.set(`${prefix}:sweep-lock`, String(process.pid), 'EX', interval, 'NX')) === 'OK',
  });
  const stopSweeps = scheduleSweeps(sweep, interval, throttledErrorLog(logger, 'retention sweep'));

  const idle = async (timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const counts = await queue.counts().catch(() => undefined);
      if (counts && counts.waiting + counts.active === 0) return;
      if (Date.now() > deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  return {
    mode: 'redis',
    deps: appDeps(
      config,
      {
        store,
        processor,
        jobs,
        queue: loggedQueue(queue, logger),
        idempotency: new RedisIdempotency(api, prefix, IDEMPOTENCY),
        rateLimiter: config.RATE_LIMIT_PER_MINUTE > 0 ? new RedisRateLimiter(api, prefix, config.RATE_LIMIT_PER_MINUTE) : undefined,
        redis: redisProbe(api),
        webhooks: { outbox, notifyUrls: guard },
      },
      edge.nodeBodyOf,
    ),
    idle,
    sweep,
    async close(timeoutMs = 25_000, inFlight = Promise.resolve()) {
      stopSweeps();
      // A job still running when the time is up is left to BullMQ: its lock expires and another worker runs it.
      // An attempt cut here is made again by another worker when its lock expires, under the same webhook-id.
      await Promise.all([worker && within(worker.close(), timeoutMs), webhookWorker && within(webhookWorker.close(), timeoutMs)]);
      await within(Promise.allSettled([...terminalWrites]), 5000);
      await inFlight.catch(() => undefined);
      await queue.close().catch(() => undefined);
      await outbox?.close().catch(() => undefined);
      jobs.disconnect();
      // QUIT, so Redis sees a client leave rather than a connection drop; at most a second, then cut.
      await Promise.all(
        [api, workerConnection].map(
          (client) =>
            client &&
            within(
              client.quit().catch(() => undefined),
              1000,
            ).finally(() => client.disconnect()),
        ),
      );
      await store.close();
    },
  };
}
