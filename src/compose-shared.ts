/**
 * @module
 * What both modes' compositions share: the storage and processor for a configuration, the job runner, the
 * handlers' dependencies, and small helpers. Imported by `compose-embedded.ts` and `compose-redis.ts`, never
 * the other way round.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { DiskStore } from './adapters/disk-store.js';
import { MultipartReceiver, type NodeBodyOf } from './adapters/multipart-receiver.js';
import { NotifyUrlGuard } from './adapters/notify-url-guard.js';
import { createWebhookTransport } from './adapters/webhook-transport.js';
import { scalarAssets } from './adapters/scalar-assets.js';
import { SharpProcessor } from './adapters/sharp-processor.js';
import type { Config } from './config.js';
import { createJobRunner } from './job-runner.js';
import { throttledErrorLog, type Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { AppDeps, IdempotencyStore, ImageProcessor, ImageStore, JobQueue, JobStore, RateLimiter, RedisProbe } from './ports.js';
import type { SweepReport } from './retention.js';
import type { DeliveryDeps, DeliveryPolicy } from './webhooks/delivery.js';
import type { JobEndAnnouncer } from './webhooks/events.js';
import { signingSecrets } from './webhooks/signing.js';

/**
 * How long an `Idempotency-Key` answer is replayed (24 h, as the IETF draft suggests), and how long a claim
 * holds while its request runs: the claim is taken once the body has arrived, so it covers only the commit
 * or the queueing (seconds); a process that dies meanwhile frees the key a minute later.
 */
export const IDEMPOTENCY = { ttlSeconds: 24 * 3600, leaseSeconds: 60 };

export interface Service {
  mode: 'embedded' | 'redis';
  deps: AppDeps;
  /** Resolves when no job is waiting or running. */
  idle(timeoutMs?: number): Promise<void>;
  /** One retention sweep now. */
  sweep(): Promise<SweepReport>;
  /**
   * Stops taking jobs, lets running ones finish (up to `timeoutMs`), then closes connections (Redis, the
   * store's), but not before `inFlight` settles: requests still being answered need them.
   */
  close(timeoutMs?: number, inFlight?: Promise<unknown>): Promise<void>;
}

export interface Observability {
  logger: Logger;
  metrics: Metrics;
}

/** What the entry points (and tests) hand to a composition besides the configuration. */
export interface Edge extends Observability {
  /** The Node request stream behind a `Request` (set by `src/server.ts`); uploads read it directly. */
  nodeBodyOf?: NodeBodyOf;
  /** A store to use instead of the configured one (tests: the memory store). */
  store?: ImageStore;
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

/**
 * This process's name among those sharing a store: `INSTANCE_ID`, or host name and process id, which stay
 * the same when a container restarts in place (so it clears its own leftovers) and differ between processes.
 */
export function instanceId(config: Config): string {
  if (config.INSTANCE_ID) return config.INSTANCE_ID;
  const host =
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 80) || 'host';
  return `${host}-${process.pid}`;
}

/** The configured store (S3 loaded only when asked for) and the processor reading from it. */
export async function openStorage(config: Config, edge: Edge): Promise<{ store: ImageStore; processor: ImageProcessor }> {
  const store = edge.store ?? (await openConfiguredStore(config, edge.logger));
  const processor = new SharpProcessor(store, { maxInputPixels: config.MAX_INPUT_PIXELS, memoryBudgetBytes: memoryBudgetBytes(config) });
  // Only a process that runs jobs has a budget in use (an API-only one would count twice in a fleet's sum).
  if (config.WORKER_CONCURRENCY > 0) edge.metrics.watchMemory(() => processor.memoryUse());
  return { store, processor };
}

async function openConfiguredStore(config: Config, logger: Logger): Promise<ImageStore> {
  const instance = instanceId(config);
  if (!config.STORAGE_URL)
    return DiskStore.open({ uploadDir: config.UPLOAD_DIR, processedDir: config.PROCESSED_DIR, instanceId: instance });
  const { S3Store } = await import('./adapters/s3-store.js');
  return S3Store.open({
    ...config.STORAGE_URL,
    instanceId: instance,
    region: config.AWS_REGION ?? config.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint: config.S3_ENDPOINT,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    onFault: throttledErrorLog(logger, 'storage (S3)'),
  });
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

export function runner(
  config: Config,
  parts: Pick<Parts, 'jobs' | 'store' | 'processor'>,
  { logger, metrics }: Observability,
  announce?: JobEndAnnouncer,
) {
  return createJobRunner({ ...parts, timeoutSeconds: config.JOB_TIMEOUT_SECONDS, logger, observe: metrics.observeJob, announce });
}

/** The wait after a `Retry-After` is capped at an hour: a receiver cannot park a message for the rest of its age. */
const RETRY_AFTER_CAP_MS = 3600_000;

export function deliveryPolicy(config: Config): DeliveryPolicy {
  return {
    maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
    maxAgeMs: config.WEBHOOK_MAX_AGE_SECONDS * 1000,
    retryDelaysMs: config.WEBHOOK_RETRY_SCHEDULE,
    timeoutMs: config.WEBHOOK_TIMEOUT_SECONDS * 1000,
    retryAfterCapMs: RETRY_AFTER_CAP_MS,
    jitter: 0.1,
  };
}

/**
 * The `notify_url` guard (always: without secrets it refuses every URL, saying why) and, when
 * `WEBHOOK_SECRETS` are set, what a delivery needs: the transport through that guard, the keys, the policy.
 */
export async function webhookParts(
  config: Config,
  resolve?: ConstructorParameters<typeof NotifyUrlGuard>[0]['resolve'],
): Promise<{ guard: NotifyUrlGuard; delivery?: DeliveryDeps }> {
  const guard = new NotifyUrlGuard({
    enabled: config.WEBHOOK_SECRETS.length > 0,
    allowHttp: config.WEBHOOK_ALLOW_HTTP,
    allowList: config.WEBHOOK_ALLOWED_HOSTS,
    resolve,
  });
  if (config.WEBHOOK_SECRETS.length === 0) return { guard };
  return {
    guard,
    delivery: {
      transport: createWebhookTransport(guard),
      secrets: await signingSecrets(config.WEBHOOK_SECRETS),
      policy: deliveryPolicy(config),
      userAgent: `image-service-webhooks/${packageVersion()}`,
    },
  };
}

export type Parts = {
  store: ImageStore;
  processor: ImageProcessor;
  jobs: JobStore;
  queue: JobQueue;
  idempotency: IdempotencyStore;
  rateLimiter?: RateLimiter;
  redis?: RedisProbe;
  webhooks?: AppDeps['webhooks'];
};

export function appDeps(config: Config, parts: Parts, nodeBodyOf?: NodeBodyOf): AppDeps {
  return {
    settings: {
      version: packageVersion(),
      maxFileSize: config.MAX_FILE_SIZE,
      maxInputPixels: config.MAX_INPUT_PIXELS,
      memoryBudgetBytes: memoryBudgetBytes(config),
      allowedExtensions: config.ALLOWED_EXTENSIONS,
      maxQueueDepth: config.MAX_QUEUE_DEPTH,
      workerAbsentSeconds: config.WORKER_ABSENT_SECONDS,
      apiKeys: config.API_KEYS,
      rateLimitPerMinute: config.RATE_LIMIT_PER_MINUTE,
      trustProxy: config.TRUST_PROXY,
      startedAt: new Date(),
      statusStreams: {
        maxStreams: config.SSE_MAX_STREAMS,
        maxPerClient: config.SSE_MAX_STREAMS_PER_CLIENT,
        heartbeatSeconds: config.SSE_HEARTBEAT_SECONDS,
        maxSeconds: config.SSE_MAX_SECONDS,
      },
    },
    uploads: new MultipartReceiver(parts.store, nodeBodyOf, {
      maxConcurrent: config.MAX_CONCURRENT_UPLOADS,
      idleSeconds: config.UPLOAD_IDLE_TIMEOUT_SECONDS,
      totalSeconds: config.UPLOAD_TIMEOUT_SECONDS,
    }),
    docs: scalarAssets,
    ...parts,
    webhooks: parts.webhooks && {
      ...parts.webhooks,
      defaults: { global: config.WEBHOOK_DEFAULT_URL, perKey: config.WEBHOOK_KEY_URLS },
    },
  };
}

/** MEMORY_BUDGET_MB in bytes: the processor admits jobs by it, the API refuses by it. */
const memoryBudgetBytes = (config: Config) => config.MEMORY_BUDGET_MB * 2 ** 20;

/** Waits for `promise`, but no longer than `timeoutMs`. */
export function within(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    void promise
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        resolve();
      });
  });
}
