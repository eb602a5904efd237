/**
 * Deliveries to a real receiver (an HTTP server on 127.0.0.1, allowed through WEBHOOK_ALLOWED_HOSTS) that
 * verifies every one with the standardwebhooks library: retries until a 2xx, a 410 stops, a hanging receiver
 * times out and is tried again, a redirect is not followed, Retry-After is honoured, attempts and age are
 * bounded, and the embedded outbox carries on after a restart with the same webhook-id.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedWebhookOutbox } from '../../src/adapters/embedded-webhook-outbox.js';
import { webhookParts } from '../../src/compose-shared.js';
import { loadConfig } from '../../src/config.js';
import { createMetrics } from '../../src/metrics.js';
import type { WebhookMessage } from '../../src/webhooks/delivery.js';
import { generateSecret, webhookId } from '../../src/webhooks/signing.js';
import { startReceiver, type Answer, type Receiver } from '../helpers/webhook-receiver.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  receiver: Receiver;
  outbox: EmbeddedWebhookOutbox;
  message: WebhookMessage;
  metrics: ReturnType<typeof createMetrics>;
  secret: string;
  open(): Promise<EmbeddedWebhookOutbox>;
}

/** A receiver answering `answer`, and an outbox (under `stateDir`, if given) with a fast schedule. */
async function setup(answer: (n: number) => Answer, env: Record<string, string> = {}, stateDir?: string): Promise<Setup> {
  const secret = generateSecret();
  const receiver = await startReceiver(secret, answer);
  cleanups.push(() => receiver.close());
  const config = loadConfig({
    WEBHOOK_SECRETS: `${generateSecret()},${secret}`,
    WEBHOOK_ALLOW_HTTP: 'true',
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    WEBHOOK_RETRY_SCHEDULE: '0.05,0.1,0.15',
    WEBHOOK_TIMEOUT_SECONDS: '1',
    ...env,
  });
  const metrics = createMetrics();
  const { delivery } = await webhookParts(config);
  const open = async () => {
    const outbox = await EmbeddedWebhookOutbox.open({
      stateDir,
      delivery: delivery!,
      concurrency: 4,
      retentionMs: 3600_000,
      observe: metrics.observeWebhook,
    });
    cleanups.push(() => outbox.close(100));
    return outbox;
  };
  const processingId = crypto.randomUUID();
  const message: WebhookMessage = {
    id: webhookId(processingId, 'job.completed'),
    processingId,
    type: 'job.completed',
    url: `${receiver.url}/hooks/images?tenant=7`,
    body: JSON.stringify({
      type: 'job.completed',
      timestamp: new Date().toISOString(),
      data: { processing_id: processingId, status: 'completed' },
    }),
    createdAt: new Date().toISOString(),
  };
  return { receiver, outbox: await open(), message, metrics, secret, open };
}

const metric = async (metrics: ReturnType<typeof createMetrics>, outcome: string) => {
  const line = (await metrics.exposition()).text.split('\n').find((l) => l.startsWith(`webhook_deliveries_total{outcome="${outcome}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

describe('webhook delivery (embedded outbox)', () => {
  it('retries a receiver that fails twice, then it is delivered; every attempt verifies, under one webhook-id', async () => {
    const { receiver, outbox, message, metrics } = await setup((n) => (n <= 2 ? { status: 500 } : { status: 200 }));
    await outbox.enqueue(message);
    await outbox.enqueue(message); // a second enqueue of the same message is a no-op
    const deliveries = await receiver.waitFor(3);
    await outbox.settled();
    expect(deliveries.map((d) => d.verified)).toEqual(Array(3).fill({ ok: true, payload: JSON.parse(message.body) }));
    expect(new Set(deliveries.map((d) => d.id))).toEqual(new Set([message.id]));
    expect(new Set(deliveries.map((d) => d.body))).toEqual(new Set([message.body]));
    expect(deliveries[0]!.path).toBe('/hooks/images?tenant=7');
    expect(deliveries[0]!.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': expect.stringMatching(/^image-service-webhooks\//),
    });
    // Both configured secrets sign: the receiver, knowing one, accepts.
    expect(deliveries[0]!.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(await outbox.state(message.processingId)).toMatchObject({
      webhook_id: message.id,
      event: 'job.completed',
      status: 'delivered',
      attempts: 3,
      last_response: { status: 200 },
      delivered_at: expect.any(String),
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.deliveries).toHaveLength(3);
    expect([await metric(metrics, 'retrying'), await metric(metrics, 'delivered')]).toEqual([2, 1]);
  });

  it('stops at a 410 Gone: no further attempt', async () => {
    const { receiver, outbox, message, metrics } = await setup(() => ({ status: 410 }));
    await outbox.enqueue(message);
    await receiver.waitFor(1);
    await outbox.settled();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.deliveries).toHaveLength(1);
    expect(receiver.deliveries[0]!.verified.ok).toBe(true);
    expect(await outbox.state(message.processingId)).toMatchObject({ status: 'gone', attempts: 1, last_response: { status: 410 } });
    expect(await metric(metrics, 'gone')).toBe(1);
  });

  it('times a hanging receiver out (WEBHOOK_TIMEOUT_SECONDS) and tries again', async () => {
    const { receiver, outbox, message } = await setup((n) => (n === 1 ? 'hang' : { status: 204 }));
    const started = Date.now();
    await outbox.enqueue(message);
    const [first, second] = await receiver.waitFor(2, 10_000);
    await outbox.settled();
    expect(second!.receivedAt - started).toBeGreaterThanOrEqual(1000);
    expect(second!.receivedAt - started).toBeLessThan(8000);
    expect([first!.id, second!.id]).toEqual([message.id, message.id]);
    expect(second!.verified.ok).toBe(true);
    expect(await outbox.state(message.processingId)).toMatchObject({ status: 'delivered', attempts: 2, last_response: { status: 204 } });
  });

  it('does not follow a redirect: a 3xx is a failed attempt, and the target is never reached', async () => {
    const { receiver, outbox, message } = await setup(
      (n) => (n === 1 ? { status: 200 } : { status: 302, headers: { location: '/elsewhere' } }),
      { WEBHOOK_MAX_ATTEMPTS: '3' },
    );
    // Delivery 1 is a probe that the receiver answers 200 (to show the path it takes); every webhook attempt gets the 302.
    await fetch(`${receiver.url}/probe`, { method: 'POST', body: '{}' });
    await outbox.enqueue(message);
    await receiver.waitFor(4);
    await outbox.settled();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.deliveries.map((d) => d.path)).toEqual([
      '/probe',
      '/hooks/images?tenant=7',
      '/hooks/images?tenant=7',
      '/hooks/images?tenant=7',
    ]);
    expect(await outbox.state(message.processingId)).toMatchObject({ status: 'failed', attempts: 3, last_response: { status: 302 } });
  });

  it('honours Retry-After on a 503 (the schedule alone would retry at once)', async () => {
    const { receiver, outbox, message } = await setup((n) =>
      n === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 },
    );
    await outbox.enqueue(message);
    const [first, second] = await receiver.waitFor(2, 10_000);
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(950);
  });

  it('gives up after WEBHOOK_MAX_ATTEMPTS, and when the next try would pass WEBHOOK_MAX_AGE_SECONDS', async () => {
    const many = await setup(() => ({ status: 500 }), { WEBHOOK_MAX_ATTEMPTS: '4' });
    await many.outbox.enqueue(many.message);
    await many.receiver.waitFor(4);
    await many.outbox.settled();
    expect(await many.outbox.state(many.message.processingId)).toMatchObject({
      status: 'failed',
      attempts: 4,
      last_response: { status: 500 },
    });
    expect(await metric(many.metrics, 'failed')).toBe(1);

    const old = await setup(() => ({ status: 500 }), { WEBHOOK_MAX_AGE_SECONDS: '1', WEBHOOK_RETRY_SCHEDULE: '2' });
    await old.outbox.enqueue(old.message);
    await old.receiver.waitFor(1);
    await old.outbox.settled();
    expect(await old.outbox.state(old.message.processingId)).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it('records an unreachable receiver as an error, and retries it', async () => {
    const { receiver, outbox, message } = await setup(() => ({ status: 200 }), { WEBHOOK_MAX_ATTEMPTS: '2' });
    await receiver.close();
    await outbox.enqueue(message);
    await outbox.settled(500);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await outbox.settled(500);
    expect(await outbox.state(message.processingId)).toMatchObject({
      status: 'failed',
      attempts: 2,
      last_response: { error: 'ECONNREFUSED' },
    });
  });

  it('re-vets the address on every attempt: a URL that is no longer allowed is not connected to', async () => {
    const { receiver, message } = await setup(() => ({ status: 200 }));
    const config = loadConfig({ WEBHOOK_SECRETS: generateSecret(), WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_MAX_ATTEMPTS: '1' });
    const { delivery } = await webhookParts(config);
    const outbox = await EmbeddedWebhookOutbox.open({ stateDir: undefined, delivery: delivery!, concurrency: 1, retentionMs: 1000 });
    cleanups.push(() => outbox.close(100));
    await outbox.enqueue(message);
    await outbox.settled();
    expect(receiver.deliveries).toHaveLength(0);
    const state = await outbox.state(message.processingId);
    expect(state).toMatchObject({ status: 'failed', attempts: 1 });
    expect(state?.last_response?.error).toMatch(/^refused_address: .*loopback/);
  });

  it('connects to the address it vetted, with Host the URL’s name (a name no real DNS knows reaches the receiver)', async () => {
    const { receiver, message } = await setup(() => ({ status: 200 }));
    const port = new URL(receiver.url).port;
    let lookups = 0;
    const config = loadConfig({ WEBHOOK_SECRETS: generateSecret(), WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1/32' });
    const { delivery } = await webhookParts(config, async (host) => {
      lookups += 1;
      return host === 'receiver.test' ? [{ address: '127.0.0.1', family: 4 }] : [];
    });
    const outbox = await EmbeddedWebhookOutbox.open({ stateDir: undefined, delivery: delivery!, concurrency: 1, retentionMs: 1000 });
    cleanups.push(() => outbox.close(100));
    await outbox.enqueue({ ...message, url: `http://receiver.test:${port}/pinned` });
    const [delivered] = await receiver.waitFor(1);
    expect(delivered).toMatchObject({ path: '/pinned', headers: { host: `receiver.test:${port}` } });
    expect(lookups).toBe(1);
  });

  it('survives a restart: the message is kept under STATE_DIR and delivered by the next process, same webhook-id', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'webhook-outbox-'));
    cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
    const first = await setup(() => ({ status: 500 }), { WEBHOOK_RETRY_SCHEDULE: '1' }, stateDir);
    await first.outbox.enqueue(first.message);
    await first.receiver.waitFor(1);
    await first.outbox.settled();
    // The process stops before the retry is due.
    await first.outbox.close(100);
    expect(await first.outbox.state(first.message.processingId)).toMatchObject({ status: 'pending', attempts: 1 });
    first.receiver.setAnswer(() => ({ status: 200 }));
    const reopened = await first.open();
    const deliveries = await first.receiver.waitFor(2);
    await reopened.settled();
    expect(deliveries.map((d) => [d.id, d.verified.ok])).toEqual([
      [first.message.id, true],
      [first.message.id, true],
    ]);
    expect(await reopened.state(first.message.processingId)).toMatchObject({ status: 'delivered', attempts: 2 });
    // Delivered records are kept for /status; enqueueing the same message again sends nothing.
    await reopened.enqueue(first.message);
    const again = await first.open();
    await again.enqueue(first.message);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(first.receiver.deliveries).toHaveLength(2);
  });

  it('forgets a settled message once it is older than the retention period, in memory and on disk; a pending one stays', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'webhook-outbox-'));
    cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
    const { receiver, outbox, message } = await setup(() => ({ status: 204 }), {}, stateDir);
    await outbox.enqueue(message);
    await receiver.waitFor(1);
    await outbox.settled();
    const pending = { ...message, processingId: crypto.randomUUID(), url: 'http://127.0.0.1:9/never' };
    await outbox.enqueue(pending);
    // The pending message's retries are written meanwhile (through a `.partial-` file, renamed into place).
    const files = async () => (await readdir(join(stateDir, 'webhooks'))).filter((name) => !name.startsWith('.partial-')).sort();
    expect(await files()).toEqual([`${message.processingId}.json`, `${pending.processingId}.json`].sort());

    await outbox.prune(Date.now() + 60_000); // within the hour's retention: nothing goes
    expect(await outbox.state(message.processingId)).toMatchObject({ status: 'delivered' });
    await outbox.prune(Date.now() + 3600_000 + 1000);
    expect(await outbox.state(message.processingId)).toBeUndefined();
    expect(await files()).toEqual([`${pending.processingId}.json`]);
    expect(await outbox.state(pending.processingId)).toMatchObject({ status: 'pending' });
  });
});
