/**
 * @module
 * Redis mode's webhook outbox: a BullMQ queue of its own (`webhooks`, beside the `images` queue, under the
 * same `REDIS_KEY_PREFIX`), whose job id is the message's `webhook-id`, so enqueueing a message again is a
 * no-op and a worker that dies mid-attempt leaves it to another (BullMQ's stalled-job check) under the same id.
 * BullMQ carries the attempts; the wait before each retry comes from our schedule through a custom backoff
 * strategy (the attempt's own verdict, `Retry-After` included). The delivery state `GET /status` shows is a
 * small JSON value per job at `<prefix>:webhook:<processing_id>`, kept as long as job records are.
 */
import { Queue, UnrecoverableError, Worker, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { unavailable } from '../domain/errors.js';
import type { WebhookOutbox } from '../ports.js';
import { guarded } from './redis-connection.js';
import {
  attemptDelivery,
  pendingState,
  type AttemptOutcome,
  type DeliveryDeps,
  type DeliveryPolicy,
  type DeliveryState,
  type WebhookMessage,
} from '../webhooks/delivery.js';

export const WEBHOOK_QUEUE_NAME = 'webhooks';
const BACKOFF_TYPE = 'webhook-schedule';

/** The first wait after a fault of our own (not the receiver's answer); it doubles, up to 5 minutes. */
const UNEXPECTED_RETRY_MS = 1000;
const stateKey = (prefix: string, processingId: string) => `${prefix}:webhook:${processingId}`;

/** Thrown by an attempt that failed and is to be tried again after `retryInMs` (read by the backoff strategy). */
class RetryLater extends Error {
  override name = 'RetryLater';
  constructor(
    readonly retryInMs: number,
    message: string,
  ) {
    super(message);
  }
}

/** How long finished messages stay in BullMQ's sets: a re-enqueue within it is recognised as the same message. */
const keptFor = (policy: DeliveryPolicy) => Math.max(24 * 3600, Math.ceil(policy.maxAgeMs / 1000));

export class BullWebhookOutbox implements WebhookOutbox {
  private readonly queue: Queue<WebhookMessage>;
  private readonly jobOptions: JobsOptions;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    policy: DeliveryPolicy,
    private readonly retentionSeconds: number,
    onError: (error: Error) => void,
  ) {
    this.queue = new Queue<WebhookMessage>(WEBHOOK_QUEUE_NAME, { connection: redis, prefix: `${prefix}:bull` });
    this.queue.on('error', onError);
    const age = keptFor(policy);
    this.jobOptions = {
      attempts: policy.maxAttempts,
      backoff: { type: BACKOFF_TYPE },
      removeOnComplete: { age, count: 100_000 },
      removeOnFail: { age, count: 100_000 },
    };
  }

  async enqueue(message: WebhookMessage): Promise<void> {
    try {
      // The state first (only if there is none): a message queued but not yet tried reads `pending`.
      await this.redis.set(
        stateKey(this.prefix, message.processingId),
        JSON.stringify(pendingState(message, new Date())),
        'EX',
        this.retentionSeconds,
        'NX',
      );
      await this.queue.add('deliver', message, { ...this.jobOptions, jobId: message.id });
    } catch {
      throw unavailable('webhook_queue_unavailable', 'the webhook queue is unavailable; retry shortly', 2);
    }
  }

  /** Redis failing here is a 503, as for every Redis read of the API (`guarded`). */
  state(processingId: string): Promise<DeliveryState | undefined> {
    return guarded(async () => {
      const text = await this.redis.get(stateKey(this.prefix, processingId));
      return text ? (JSON.parse(text) as DeliveryState) : undefined;
    });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

export interface WebhookWorkerOptions {
  connection: Redis;
  /** Where the state is written (a connection that is not blocked by the worker's own commands). */
  redis: Redis;
  prefix: string;
  concurrency: number;
  /** As the job worker's (`WORKER_LOCK_SECONDS`): BullMQ renews it while an attempt runs, so a slow receiver is not a dead worker. */
  lockSeconds: number;
  retentionSeconds: number;
  delivery: DeliveryDeps;
  observe?: (outcome: AttemptOutcome) => void;
  onError: (error: Error) => void;
}

/** The worker delivering webhook messages, in every process that runs jobs. */
export function startWebhookWorker({
  connection,
  redis,
  prefix,
  concurrency,
  lockSeconds,
  retentionSeconds,
  delivery,
  observe = () => {},
  onError,
}: WebhookWorkerOptions): Worker<WebhookMessage> {
  const lockMs = lockSeconds * 1000;
  const worker = new Worker<WebhookMessage>(
    WEBHOOK_QUEUE_NAME,
    async (job) => {
      const message = job.data;
      const key = stateKey(prefix, message.processingId);
      const stored = await redis.get(key);
      const before = stored ? (JSON.parse(stored) as DeliveryState) : pendingState(message, new Date());
      if (before.status !== 'pending') return before.status;
      const { outcome, state, retryInMs } = await attemptDelivery(message, before, delivery);
      await redis.set(key, JSON.stringify(state), 'EX', retentionSeconds);
      observe(outcome);
      if (outcome === 'delivered') return outcome;
      const why =
        state.last_response?.status !== undefined ? `answered ${state.last_response.status}` : (state.last_response?.error ?? 'no answer');
      if (outcome === 'retrying') throw new RetryLater(retryInMs ?? 0, why);
      throw new UnrecoverableError(`${outcome}: ${why}`);
    },
    {
      connection,
      prefix: `${prefix}:bull`,
      concurrency,
      lockDuration: lockMs,
      stalledInterval: lockMs,
      // Workers lost mid-attempt (a deploy, a scale-in) are not the message's fault: it survives several.
      maxStalledCount: 10,
      settings: {
        // Our own schedule for an answer; for anything else (Redis blinked while the state was read or
        // written) a short growing wait: at-least-once means such a fault must not end the message.
        backoffStrategy: (attemptsMade, _type, error) =>
          error instanceof RetryLater ? error.retryInMs : Math.min(UNEXPECTED_RETRY_MS * 2 ** Math.max(0, attemptsMade - 1), 300_000),
      },
    },
  );
  worker.on('error', onError);
  // A message BullMQ gives up on (attempts or stalls ran out) shows `failed` on /status, not `pending` forever.
  worker.on('failed', (job, error) => {
    if (!job || job.attemptsMade < (job.opts.attempts ?? 1)) return;
    const key = stateKey(prefix, job.data.processingId);
    void (async () => {
      const stored = await redis.get(key);
      const state = stored ? (JSON.parse(stored) as DeliveryState) : pendingState(job.data, new Date());
      if (state.status !== 'pending') return;
      const { next_attempt_at: _next, ...rest } = state;
      await redis.set(
        key,
        JSON.stringify({ ...rest, status: 'failed', last_response: rest.last_response ?? { error: error.message } }),
        'EX',
        retentionSeconds,
      );
    })().catch(onError);
  });
  return worker;
}
