/**
 * The hook: when a job with a `notify_url` ends, completed or failed, its event reaches the receiver, signed
 * (verified with standardwebhooks), carrying the job's public status and download_url; a job without one
 * sends nothing. The same suite runs on the embedded default and on Redis mode (a worker in the process).
 * The HTTP input is not wired yet: the test writes `notify_url` into the job record, as POST /process will.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { Operation } from '../../src/domain/operations.js';
import { NotificationSchema } from '../../src/webhooks/schemas.js';
import { generateSecret, webhookId } from '../../src/webhooks/signing.js';
import { upload, waitForJob, type JobView } from '../helpers/client.js';
import { embeddedHarness, redisHarness, type Harness, type HarnessFactory } from '../helpers/harness.js';
import { solid } from '../helpers/images.js';
import { jobRecord } from '../helpers/records.js';
import { testRedis } from '../helpers/redis.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

const redis = await testRedis();
afterAll(async () => redis?.dispose());

/** Records a job as POST /process would with a notify_url, and queues it. */
async function askWithNotify(
  harness: Harness,
  fileId: string,
  notifyUrl: string | undefined,
  operations: Operation[] = [{ operation: 'grayscale' }],
): Promise<string> {
  const processingId = randomUUID();
  await harness.service.deps.jobs.putJob(jobRecord(fileId, { processing_id: processingId, operations, notify_url: notifyUrl }));
  await harness.service.deps.queue.enqueue(processingId);
  return processingId;
}

function suite(name: string, factory: () => HarnessFactory) {
  describe(name, () => {
    it(
      'announces a completed and a failed job, signed, with the public status; nothing for a job without notify_url',
      { timeout: 30_000 },
      async () => {
        const secret = generateSecret();
        const receiver = await startReceiver(secret);
        const harness = await factory()({
          WEBHOOK_SECRETS: secret,
          WEBHOOK_ALLOW_HTTP: 'true',
          WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
          WEBHOOK_RETRY_SCHEDULE: '0.1',
        });
        try {
          const send = harness.request;
          const file = await upload(send, await solid(40, 30, { r: 200, g: 10, b: 10 }), 'red.png');
          const quiet = await askWithNotify(harness, file.file_id, undefined);
          const done = await askWithNotify(harness, file.file_id, `${receiver.url}/done`, [
            { operation: 'resize', width: 20 } as Operation,
          ]);
          const [delivery] = await receiver.waitFor(1);
          const event = delivery!.verified.ok
            ? (delivery!.verified.payload as { type: string; timestamp: string; data: Record<string, unknown> })
            : undefined;
          expect(delivery!.verified).toMatchObject({ ok: true });
          expect(delivery!.id).toBe(webhookId(done, 'job.completed'));
          // The event is the job's status as GET /status shows it, but for the delivery's own state.
          const { notification: _delivery, ...status } = (await waitForJob(send, done)) as JobView & { notification?: unknown };
          expect(event).toEqual({ type: 'job.completed', timestamp: status.completed_at, data: status });
          expect(event!.data).toMatchObject({
            processing_id: done,
            status: 'completed',
            download_url: `/download/${done}`,
            result: { width: 20, height: 15 },
          });
          expect(event!.data).not.toHaveProperty('notify_url');
          expect(status).not.toHaveProperty('notify_url');

          // A job that fails: its upload's bytes are gone.
          await harness.service.deps.store.deleteUploads([file.file_id]);
          const failed = await askWithNotify(harness, file.file_id, `${receiver.url}/failed`, [
            { operation: 'blur', intensity: 3 } as Operation,
          ]);
          const [, second] = await receiver.waitFor(2);
          expect(second!.id).toBe(webhookId(failed, 'job.failed'));
          expect(
            second!.verified.ok && (second!.verified.payload as { type: string; data: { status: string; error?: unknown } }),
          ).toMatchObject({
            type: 'job.failed',
            data: { processing_id: failed, status: 'failed', error: { code: expect.any(String) } },
          });
          await waitForJob(send, quiet);
          await harness.idle();
          await new Promise((resolve) => setTimeout(resolve, 300));
          expect(receiver.deliveries.map((d) => d.path)).toEqual(['/done', '/failed']);
          const outbox = harness.service.deps.webhooks?.outbox;
          expect(await outbox?.state(done)).toMatchObject({
            webhook_id: webhookId(done, 'job.completed'),
            status: 'delivered',
            attempts: 1,
            last_response: { status: 204 },
          });
          expect(await outbox?.state(quiet)).toBeUndefined();
          // What GET /status will show as `notification` matches its declared schema.
          expect(NotificationSchema.strict().safeParse(await outbox?.state(done)).success).toBe(true);
        } finally {
          await harness.close();
          await receiver.close();
        }
      },
    );

    it('has no outbox without WEBHOOK_SECRETS, and its notify_url guard says why', async () => {
      const harness = await factory()({});
      try {
        expect(harness.service.deps.webhooks?.outbox).toBeUndefined();
        expect(await harness.service.deps.webhooks?.notifyUrls.check('https://example.com/')).toMatchObject({
          ok: false,
          reason: 'webhooks_not_configured',
        });
      } finally {
        await harness.close();
      }
    });
  });
}

suite('job-end webhooks, embedded default', () => embeddedHarness);

describe('job-end webhooks, embedded default, after a stop', () => {
  it(
    'sends at the next start the webhook of a job that ended just before the process stopped, before its message was written',
    { timeout: 30_000 },
    async () => {
      const secret = generateSecret();
      const receiver = await startReceiver(secret);
      let harness = await embeddedHarness({ WEBHOOK_SECRETS: secret, WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
      try {
        const file = await upload(harness.request, await solid(8, 8, { r: 9, g: 9, b: 9 }), 'grey.png');
        const processingId = randomUUID();
        const now = new Date().toISOString();
        // The record as the runner leaves it, with no message behind it: the process died between the two writes.
        await harness.service.deps.jobs.putJob(
          jobRecord(file.file_id, {
            processing_id: processingId,
            status: 'completed',
            created_at: now,
            completed_at: now,
            duration_ms: 1,
            result: { format: 'png', width: 8, height: 8, size_bytes: 1, sha256: 'ab' },
            notify_url: `${receiver.url}/late`,
          }),
        );
        harness = await harness.restart();
        const [delivery] = await receiver.waitFor(1);
        expect(delivery).toMatchObject({ id: webhookId(processingId, 'job.completed'), path: '/late', verified: { ok: true } });
        // And not again at the start after that: the message is kept, delivered.
        harness = await harness.restart();
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(receiver.deliveries).toHaveLength(1);
      } finally {
        await harness.close();
        await receiver.close();
      }
    },
  );
});
describe.runIf(redis !== undefined)('redis', () => suite('job-end webhooks, Redis mode', () => redisHarness(redis!.url)));
