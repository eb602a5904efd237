/**
 * A job whose worker dies three times mid-job is given up by BullMQ ("stalled more than allowable limit"):
 * the job record must then say `failed` with a code a client can act on. It used to stay `processing` until
 * the record expired.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { QUEUE_NAME } from '../../src/adapters/bull-queue.js';
import { submit, upload, waitForJob } from '../helpers/client.js';
import { noisyJpeg } from '../helpers/images.js';
import { ownedTestRedis, releaseTestRedis } from '../helpers/redis.js';
import { startServer, startWorker, stopAll, type ServerProcess } from '../helpers/server-process.js';

const redis = await ownedTestRedis();

describe.runIf(redis !== undefined)('a worker killed mid-job, again and again', () => {
  const started: ServerProcess[] = [];
  const prefix = `lost-${randomUUID().slice(0, 8)}`;
  const connection = redis ? new Redis(redis.url, { maxRetriesPerRequest: null }) : undefined;
  const queue = connection ? new Queue(QUEUE_NAME, { connection, prefix: `${prefix}:bull` }) : undefined;
  afterAll(async () => {
    await stopAll(started);
    await queue?.close();
    await releaseTestRedis(redis, { clients: connection ? [connection] : [], prefixes: [prefix] });
  });

  it('ends the job failed with code worker_lost once BullMQ gives it up', { timeout: 90_000 }, async () => {
    const env = { REDIS_URL: redis!.url, REDIS_KEY_PREFIX: prefix, WORKER_LOCK_SECONDS: '1' };
    const api = await startServer({ ...env, WORKER_CONCURRENCY: '0' });
    started.push(api);
    const send = (path: string, init?: RequestInit) => fetch(`${api.baseUrl}${path}`, init);
    const file = await upload(send, await noisyJpeg(2400, 1800), 'heavy.jpg');
    // Long enough (several seconds of blur) for each worker to die with it in its hands.
    const { processing_id: processingId } = await submit(send, file.file_id, {
      operations: [
        { operation: 'blur', intensity: 60 },
        { operation: 'blur', intensity: 60 },
        { operation: 'blur', intensity: 60 },
      ],
      format: 'png',
    });
    // BullMQ fails it on the third stall (maxStalledCount 2): three workers die holding it.
    for (let kill = 1; kill <= 3; kill++) {
      const worker = await startWorker({ ...env, WORKER_CONCURRENCY: '1' }, api.dir);
      started.push(worker);
      const deadline = Date.now() + 20_000;
      while (((await queue!.getJob(processingId))?.attemptsStarted ?? 0) < kill) {
        if (Date.now() > deadline) throw new Error(`worker ${kill} never started the job`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await worker.stop('SIGKILL');
    }
    // The next worker finds it stalled once too often and fails it; the record follows.
    started.push(await startWorker({ ...env, WORKER_CONCURRENCY: '1' }, api.dir));
    const job = await waitForJob(send, processingId, 30_000);
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('worker_lost');
    expect(job.error?.message).toMatch(/interrupted three times/);
  });
});
