/**
 * The runner's hook after a fault between the job's end and the enqueue of its webhook (a worker that died
 * there, or Redis that failed the enqueue): the run is reported failed, so the queue retries it; the retry
 * finds the job ended, runs nothing again, and enqueues the same message. The receiver gets it once.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedJobStore } from '../../src/adapters/embedded-job-store.js';
import { EmbeddedWebhookOutbox } from '../../src/adapters/embedded-webhook-outbox.js';
import { MemoryStore } from '../../src/adapters/memory-store.js';
import { SharpProcessor } from '../../src/adapters/sharp-processor.js';
import { webhookParts } from '../../src/compose-shared.js';
import { loadConfig } from '../../src/config.js';
import { createJobRunner } from '../../src/job-runner.js';
import type { WebhookOutbox } from '../../src/ports.js';
import { announceEndedJob, createJobEndAnnouncer } from '../../src/webhooks/events.js';
import { generateSecret, webhookId } from '../../src/webhooks/signing.js';
import { solid } from '../helpers/images.js';
import { fileRecord, jobRecord } from '../helpers/records.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A receiver on 127.0.0.1 and an in-memory outbox that delivers to it, both closed after the test. */
async function receiverAndOutbox() {
  const secret = generateSecret();
  const receiver = await startReceiver(secret);
  cleanups.push(() => receiver.close());
  const config = loadConfig({ WEBHOOK_SECRETS: secret, WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
  const outbox = await EmbeddedWebhookOutbox.open({
    stateDir: undefined,
    delivery: (await webhookParts(config)).delivery!,
    concurrency: 1,
    retentionMs: 60_000,
  });
  cleanups.push(() => outbox.close(100));
  return { receiver, outbox };
}

describe('the job runner announcing a job’s end', () => {
  it('enqueues again on the retry of a run whose enqueue failed, and the receiver gets one delivery', async () => {
    const { receiver, outbox } = await receiverAndOutbox();
    let faults = 1;
    // A fault of our own port: the first enqueue fails as a Redis blip would.
    const flaky: WebhookOutbox = {
      enqueue: async (message) => {
        if (faults-- > 0) throw new Error('the webhook queue is unavailable');
        await outbox.enqueue(message);
      },
      state: (id) => outbox.state(id),
    };
    const jobs = EmbeddedJobStore.inMemory();
    const store = new MemoryStore();
    const processor = new SharpProcessor(store, { maxInputPixels: 50_000_000, memoryBudgetBytes: 256 * 2 ** 20 });
    let runs = 0;
    const runJob = createJobRunner({
      jobs,
      store,
      processor,
      timeoutSeconds: 30,
      announce: createJobEndAnnouncer({ jobs, outbox: flaky }),
      observe: () => void runs++,
    });

    const bytes = await solid(16, 16, { r: 1, g: 2, b: 3 });
    const staged = await store.stage([bytes], { maxBytes: bytes.length, headBytes: 64 });
    const fileId = randomUUID();
    await store.commitUpload(staged.stagingKey, fileId);
    await jobs.putFile(fileRecord({ file_id: fileId, size_bytes: bytes.length, width: 16, height: 16, sha256: staged.sha256 }));
    const processingId = randomUUID();
    await jobs.putJob(jobRecord(fileId, { processing_id: processingId, notify_url: `${receiver.url}/x` }));

    await expect(runJob(processingId)).rejects.toThrow(/unavailable/);
    expect((await jobs.getJob(processingId))?.status).toBe('completed');
    expect(await runJob(processingId)).toBe('skipped');
    expect(await runJob(processingId)).toBe('skipped');
    const [delivery] = await receiver.waitFor(1);
    await outbox.settled();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(runs).toBe(1);
    expect(receiver.deliveries).toHaveLength(1);
    expect(delivery).toMatchObject({ id: webhookId(processingId, 'job.completed'), verified: { ok: true } });
  });

  it('announces a job written ended at once (a cache hit), and nothing for one without notify_url', async () => {
    const { receiver, outbox } = await receiverAndOutbox();
    const now = new Date().toISOString();
    const job = {
      processing_id: randomUUID(),
      file_id: randomUUID(),
      status: 'completed' as const,
      cached: true,
      operations: [{ operation: 'grayscale' as const }],
      output: { format: 'png' as const, quality: 80 },
      keep_metadata: false,
      cache_key: 'k',
      created_at: now,
      completed_at: now,
      duration_ms: 0,
      result: { format: 'png' as const, width: 1, height: 1, size_bytes: 1, sha256: 'ab' },
    };
    await announceEndedJob(outbox, job);
    await announceEndedJob(undefined, { ...job, notify_url: `${receiver.url}/x` });
    await announceEndedJob(outbox, { ...job, notify_url: `${receiver.url}/cached` });
    const [delivery] = await receiver.waitFor(1);
    expect(delivery).toMatchObject({
      path: '/cached',
      verified: { ok: true, payload: { type: 'job.completed', data: { cached: true, download_url: `/download/${job.processing_id}` } } },
    });
  });
});
