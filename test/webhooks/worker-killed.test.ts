/**
 * Redis mode, real processes: a worker that is killed after the job ended, while its webhook is being
 * delivered (the receiver holds the request), leaves the message in the webhook queue; the next worker
 * delivers it, with the same webhook-id, verified by the standardwebhooks library.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisJobStore } from '../../src/adapters/redis-job-store.js';
import { generateSecret, webhookId } from '../../src/webhooks/signing.js';
import { submit, upload, waitForJob } from '../helpers/client.js';
import { solid } from '../helpers/images.js';
import { releaseTestRedis, testRedis } from '../helpers/redis.js';
import { startServer, startWorker, stopAll, type ServerProcess } from '../helpers/server-process.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

const redis = await testRedis();

describe.runIf(redis !== undefined)('a worker killed between the job’s end and the delivery', () => {
  const started: ServerProcess[] = [];
  const prefix = `hooks-${randomUUID().slice(0, 8)}`;
  const client = redis ? new Redis(redis.url) : undefined;
  let receiver: Receiver | undefined;
  afterAll(async () => {
    await stopAll(started);
    await receiver?.close();
    await releaseTestRedis(redis, { clients: client ? [client] : [], prefixes: [prefix] });
  });

  it('still delivers, under the same webhook-id', { timeout: 60_000 }, async () => {
    const secret = generateSecret();
    receiver = await startReceiver(secret, (n) => (n === 1 ? 'hang' : { status: 200 }));
    const env = {
      REDIS_URL: redis!.url,
      REDIS_KEY_PREFIX: prefix,
      WORKER_LOCK_SECONDS: '1',
      WEBHOOK_SECRETS: secret,
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      // Longer than the test waits: the first attempt ends only by its worker's death.
      WEBHOOK_TIMEOUT_SECONDS: '60',
      WEBHOOK_RETRY_SCHEDULE: '0.2',
    };
    const api = await startServer({ ...env, WORKER_CONCURRENCY: '0' });
    started.push(api);
    const send = (path: string, init?: RequestInit) => fetch(`${api.baseUrl}${path}`, init);
    const file = await upload(send, await solid(32, 32, { r: 0, g: 90, b: 200 }), 'blue.png');
    // No worker runs yet: the job waits in the queue with its notify_url.
    const { processing_id: processingId } = await submit(send, file.file_id, {
      operations: [{ operation: 'grayscale' }],
      notify_url: `${receiver.url}/hooks`,
    });
    const jobs = new RedisJobStore(client!, prefix, 3600);
    expect(await jobs.getJob(processingId)).toMatchObject({ status: 'queued', notify_url: `${receiver.url}/hooks` });

    const doomed = await startWorker({ ...env, WORKER_CONCURRENCY: '1' }, api.dir);
    started.push(doomed);
    const [held] = await receiver.waitFor(1, 30_000);
    expect((await waitForJob(send, processingId)).status).toBe('completed');
    await doomed.stop('SIGKILL');

    started.push(await startWorker({ ...env, WORKER_CONCURRENCY: '1' }, api.dir));
    const [, delivered] = await receiver.waitFor(2, 30_000);
    expect(held!.id).toBe(webhookId(processingId, 'job.completed'));
    expect(delivered!.id).toBe(held!.id);
    expect([held!.verified.ok, delivered!.verified.ok]).toEqual([true, true]);
    expect(delivered!.verified.ok && delivered!.verified.payload).toMatchObject({
      type: 'job.completed',
      data: { processing_id: processingId, download_url: `/download/${processingId}` },
    });
    // The worker records the answer just after it arrives.
    const deadline = Date.now() + 5000;
    let state: { status?: string } | null = null;
    while (state?.status !== 'delivered' && Date.now() < deadline) {
      state = JSON.parse((await client!.get(`${prefix}:webhook:${processingId}`)) ?? 'null');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(state).toMatchObject({ webhook_id: held!.id, status: 'delivered', last_response: { status: 200 } });
  });
});
