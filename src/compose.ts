/**
 * @module
 * Builds the adapters for a configuration, once, at start-up. Without `REDIS_URL`: the embedded default
 * (state in this process and on disk, an in-process queue). With it: state, cache, idempotency keys and
 * the queue in Redis, and a BullMQ worker in this process when `WORKER_CONCURRENCY` > 0.
 */
import { readFileSync } from 'node:fs';
import { DiskStore } from './adapters/disk-store.js';
import { EmbeddedJobStore } from './adapters/embedded-job-store.js';
import { EmbeddedQueue } from './adapters/embedded-queue.js';
import { MemoryIdempotency } from './adapters/memory-idempotency.js';
import { MultipartReceiver } from './adapters/multipart-receiver.js';
import { MemoryRateLimiter } from './adapters/rate-limiters.js';
import { scalarAssets } from './adapters/scalar-assets.js';
import { SharpProcessor } from './adapters/sharp-processor.js';
import type { Config } from './config.js';
import { createJobRunner } from './job-runner.js';
import { silentLogger, throttledErrorLog, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { AppDeps, IdempotencyStore, JobQueue, JobStore, RateLimiter, RedisProbe } from './ports.js';
import { createSweeper, scheduleSweeps, sweepIntervalSeconds, type SweepReport } from './retention.js';

export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

export interface Service {
  mode: 'embedded' | 'redis';
  deps: AppDeps;
  /** Resolves when no job is waiting or running. */
  idle(timeoutMs?: number): Promise<void>;
  /** One retention sweep now. */
  sweep(): Promise<SweepReport>;
  /** Stops taking jobs, lets running ones finish (up to `timeoutMs`), closes connections. */
  close(timeoutMs?: number): Promise<void>;
}

/** The version in package.json, found from this file whether it runs from `src/` or `dist/src/`. */
export function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'image-service' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}

export interface ComposeOptions {
  logger?: Logger;
  metrics?: Metrics;
}

export interface Observability {
  logger: Logger;
  metrics: Metrics;
}

export async function composeService(config: Config, { logger = silentLogger, metrics = createMetrics() }: ComposeOptions = {}): Promise<Service> {
  const seen = { logger, metrics };
  if (!config.REDIS_URL) return composeEmbedded(config, seen);
  // Loaded only for Redis mode: ioredis and BullMQ are a third of the heap the embedded default would
  // otherwise carry (and V8 marks all of it at every major collection).
  const { composeRedis } = await import('./compose-redis.js');
  return composeRedis(config, config.REDIS_URL, seen);
}

/** The queue as the handlers see it: every enqueue is logged (the job lifecycle starts here). */
export function loggedQueue(queue: JobQueue, logger: Logger): JobQueue {
  return {
    enqueue: async (processingId) => {
      await queue.enqueue(processingId);
      logger.info({ processing_id: processingId }, 'job queued');
    },
    counts: () => queue.counts(),
    depth: () => queue.depth(),
  };
}

export function runner(config: Config, parts: Pick<Parts, 'jobs' | 'store' | 'processor'>, { logger, metrics }: Observability) {
  return createJobRunner({ ...parts, timeoutSeconds: config.JOB_TIMEOUT_SECONDS, logger, observe: metrics.observeJob });
}

export async function openFiles(config: Config) {
  const store = await DiskStore.open({ uploadDir: config.UPLOAD_DIR, processedDir: config.PROCESSED_DIR });
  return { store, processor: new SharpProcessor(store, config.MAX_INPUT_PIXELS) };
}

export type Parts = { store: DiskStore; processor: SharpProcessor; jobs: JobStore; queue: JobQueue; idempotency: IdempotencyStore; rateLimiter?: RateLimiter; redis?: RedisProbe };

export function appDeps(config: Config, parts: Parts): AppDeps {
  return {
    settings: {
      version: packageVersion(),
      maxFileSize: config.MAX_FILE_SIZE,
      maxInputPixels: config.MAX_INPUT_PIXELS,
      allowedExtensions: config.ALLOWED_EXTENSIONS,
      maxQueueDepth: config.MAX_QUEUE_DEPTH,
      apiKeys: config.API_KEYS,
      rateLimitPerMinute: config.RATE_LIMIT_PER_MINUTE,
      startedAt: new Date(),
    },
    uploads: new MultipartReceiver(parts.store),
    docs: scalarAssets,
    ...parts,
  };
}

async function composeEmbedded(config: Config, seen: Observability): Promise<Service> {
  const { logger, metrics } = seen;
  const { store, processor } = await openFiles(config);
  const jobs = await EmbeddedJobStore.open(config.STATE_DIR);
  const queue = new EmbeddedQueue(runner(config, { jobs, store, processor }, seen), config.WORKER_CONCURRENCY);
  metrics.watchQueue(queue);
  // Jobs that were queued or running when the process last stopped are finished now.
  for (const processingId of await jobs.unfinishedJobs()) await queue.enqueue(processingId);
  const sweep = createSweeper({ jobs, store, retentionSeconds: config.RETENTION_SECONDS });
  const stopSweeps = scheduleSweeps(sweep, sweepIntervalSeconds(config.RETENTION_SECONDS), throttledErrorLog(logger, 'retention sweep'));
  return {
    mode: 'embedded',
    deps: appDeps(config, {
      store, processor, jobs, queue: loggedQueue(queue, logger),
      idempotency: new MemoryIdempotency(IDEMPOTENCY_TTL_SECONDS),
      rateLimiter: config.RATE_LIMIT_PER_MINUTE > 0 ? new MemoryRateLimiter(config.RATE_LIMIT_PER_MINUTE) : undefined,
    }),
    idle: (timeoutMs = 60_000) => within(queue.idle(), timeoutMs),
    sweep,
    async close(timeoutMs = 25_000) {
      stopSweeps();
      // Unfinished jobs stay on disk as queued/processing and run at the next start.
      await within(queue.idle(), timeoutMs);
    },
  };
}

/** Waits for `promise`, but no longer than `timeoutMs`. */
export function within(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    void promise.catch(() => undefined).finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
