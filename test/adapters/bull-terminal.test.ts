/**
 * When BullMQ gives a job up because its attempts ran out (for example every attempt's final write of
 * `failed` itself failed), the job record must end `failed`: it stayed `processing` until it expired.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { BullQueue, startBullWorker, type TerminalFailure } from '../../src/adapters/bull-queue.js';
import { RedisJobStore } from '../../src/adapters/redis-job-store.js';
import { deleteKeys, testRedis } from '../helpers/redis.js';
import { fileRecord, jobRecord } from '../helpers/records.js';

const redis = await testRedis();
const prefix = `terminal-${randomUUID().slice(0, 8)}`;
afterAll(async () => {
  if (redis) {
    await deleteKeys(redis.url, prefix);
    await redis.dispose();
  }
});

describe.runIf(redis !== undefined)('BullMQ giving a job up', () => {
  it('tells the composition once the retries ran out, and the job record ends failed', { timeout: 40_000 }, async () => {
    const api = new Redis(redis!.url);
    const workerConnection = new Redis(redis!.url, { maxRetriesPerRequest: null });
    const jobs = new RedisJobStore(api, prefix, 3600);
    const queue = new BullQueue(api, prefix, () => undefined);
    const processingId = randomUUID();
    const fileId = randomUUID();
    await jobs.putFile(fileRecord({ file_id: fileId }));
    await jobs.putJob(jobRecord(fileId, { processing_id: processingId, cache_key: 'k' }));
    let attempts = 0;
    const told: Array<[string, TerminalFailure]> = [];
    const worker = startBullWorker({
      connection: workerConnection,
      prefix,
      concurrency: 1,
      lockSeconds: 5,
      onError: () => undefined,
      // Every attempt fails the way a failed final write does: the runner throws instead of ending the job.
      run: async () => {
        attempts += 1;
        await jobs.updateJob(processingId, { status: 'processing' });
        throw new Error('the final write of failed did not reach Redis');
      },
      onTerminalFailure: async (id, why) => {
        told.push([id, why]);
        await jobs.updateJob(id, { status: 'failed', error: { code: why, message: 'given up' } });
      },
    });
    try {
      await queue.enqueue(processingId);
      const deadline = Date.now() + 30_000;
      while (told.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(attempts).toBe(3);
      expect(told).toEqual([[processingId, 'retries_exhausted']]);
      expect(await jobs.getJob(processingId)).toMatchObject({ status: 'failed', error: { code: 'retries_exhausted' } });
    } finally {
      await worker.close();
      await queue.close();
      api.disconnect();
      workerConnection.disconnect();
    }
  });
});
