/**
 * The Redis outbox on a real Redis: BullMQ carries the attempts with our schedule (a custom backoff), a 410
 * stops them, Retry-After stretches a wait, and a message enqueued again (same webhook-id) is not sent again.
 * Every delivery is verified by the standardwebhooks library.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BullWebhookOutbox, startWebhookWorker, WEBHOOK_QUEUE_NAME } from '../../src/adapters/bull-webhook-outbox.js';
import { webhookParts } from '../../src/compose-shared.js';
import { loadConfig } from '../../src/config.js';
import type { WebhookMessage } from '../../src/webhooks/delivery.js';
import { generateSecret, webhookId } from '../../src/webhooks/signing.js';
import { releaseTestRedis, testRedis } from '../helpers/redis.js';
import { startReceiver, type Answer } from '../helpers/webhook-receiver.js';

const redis = await testRedis();
const prefixes: string[] = [];
const clients: Redis[] = [];
afterAll(async () => releaseTestRedis(redis, { clients, prefixes }));
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(answer: (n: number) => Answer, env: Record<string, string> = {}) {
  const secret = generateSecret();
  const receiver = await startReceiver(secret, answer);
  cleanups.push(() => receiver.close());
  const prefix = `hooks-${randomUUID().slice(0, 8)}`;
  prefixes.push(prefix);
  const config = loadConfig({
    WEBHOOK_SECRETS: secret,
    WEBHOOK_ALLOW_HTTP: 'true',
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    WEBHOOK_RETRY_SCHEDULE: '0.05,0.1',
    WEBHOOK_TIMEOUT_SECONDS: '2',
    ...env,
  });
  const delivery = (await webhookParts(config)).delivery!;
  const api = new Redis(redis!.url);
  const connection = new Redis(redis!.url, { maxRetriesPerRequest: null });
  clients.push(api, connection);
  const outbox = new BullWebhookOutbox(api, prefix, delivery.policy, 3600, () => undefined);
  const outcomes: string[] = [];
  const worker = startWebhookWorker({
    connection,
    redis: connection,
    prefix,
    concurrency: 2,
    lockSeconds: 5,
    retentionSeconds: 3600,
    delivery,
    observe: (o) => outcomes.push(o),
    onError: () => undefined,
  });
  const queue = new Queue(WEBHOOK_QUEUE_NAME, { connection: api, prefix: `${prefix}:bull` });
  cleanups.push(async () => {
    await worker.close();
    await queue.close();
    await outbox.close();
  });
  const processingId = randomUUID();
  const message: WebhookMessage = {
    id: webhookId(processingId, 'job.failed'),
    processingId,
    type: 'job.failed',
    url: `${receiver.url}/in`,
    body: JSON.stringify({
      type: 'job.failed',
      timestamp: new Date().toISOString(),
      data: { processing_id: processingId, status: 'failed' },
    }),
    createdAt: new Date().toISOString(),
  };
  const settled = async () => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const state = await outbox.state(processingId);
      // The state first, then the job: a job read first may be the one still active (attemptsMade not yet
      // counted for the attempt that just delivered) and found completed a moment later.
      const jobState = await queue.getJobState(message.id);
      const job = await queue.getJob(message.id);
      if (job && state && state.status !== 'pending' && (jobState === 'completed' || jobState === 'failed'))
        return { state, jobState, job };
      if (Date.now() > deadline) throw new Error(`not settled: ${JSON.stringify(state)} ${jobState}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  return { receiver, outbox, message, settled, outcomes, queue };
}

describe.runIf(redis !== undefined)('the Redis webhook outbox (BullMQ)', () => {
  it('retries on our schedule until a 2xx, under one webhook-id, and a re-enqueue sends nothing more', async () => {
    const { receiver, outbox, message, settled, outcomes } = await setup((n) => (n <= 2 ? { status: 502 } : { status: 200 }));
    expect(await outbox.state(message.processingId)).toBeUndefined();
    await outbox.enqueue(message);
    expect((await outbox.state(message.processingId))?.status).toMatch(/pending|delivered/);
    const deliveries = await receiver.waitFor(3);
    const { state, jobState, job } = await settled();
    expect(jobState).toBe('completed');
    expect(job.attemptsMade).toBe(3);
    expect(state).toMatchObject({
      webhook_id: message.id,
      event: 'job.failed',
      status: 'delivered',
      attempts: 3,
      last_response: { status: 200 },
    });
    expect(deliveries.every((d) => d.id === message.id && d.verified.ok && d.body === message.body)).toBe(true);
    expect(outcomes).toEqual(['retrying', 'retrying', 'delivered']);
    await outbox.enqueue(message);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.deliveries).toHaveLength(3);
    expect((await outbox.state(message.processingId))?.status).toBe('delivered');
  });

  it('stops at 410 (no retry, although attempts remain)', async () => {
    const { receiver, outbox, message, settled } = await setup(() => ({ status: 410 }));
    await outbox.enqueue(message);
    const { state, jobState } = await settled();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(receiver.deliveries).toHaveLength(1);
    expect(receiver.deliveries[0]!.verified.ok).toBe(true);
    expect(jobState).toBe('failed');
    expect(state).toMatchObject({ status: 'gone', attempts: 1, last_response: { status: 410 } });
  });

  it('waits as long as a 429 Retry-After asks, and gives up after WEBHOOK_MAX_ATTEMPTS', async () => {
    const { receiver, outbox, message, settled } = await setup(() => ({ status: 429, headers: { 'retry-after': '1' } }), {
      WEBHOOK_MAX_ATTEMPTS: '2',
    });
    await outbox.enqueue(message);
    const [first, second] = await receiver.waitFor(2, 10_000);
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(950);
    const { state, jobState } = await settled();
    expect(jobState).toBe('failed');
    expect(state).toMatchObject({ status: 'failed', attempts: 2, last_response: { status: 429 } });
  });
});
