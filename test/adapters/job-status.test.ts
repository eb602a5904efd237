/**
 * A job's status only moves forward (queued → processing → completed | failed), enforced where it is
 * written: a duplicate run after a lost lock could move a completed job back to processing, or overwrite
 * its result with a failure.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedJobStore } from '../../src/adapters/embedded-job-store.js';
import { RedisJobStore } from '../../src/adapters/redis-job-store.js';
import { canMove, type JobRecord } from '../../src/domain/jobs.js';
import type { JobStore } from '../../src/ports.js';
import { fileRecord, jobRecord } from '../helpers/records.js';
import { releaseTestRedis, testRedis } from '../helpers/redis.js';

const redis = await testRedis();
const prefix = `status-${randomUUID().slice(0, 8)}`;
const clients: Redis[] = [];
afterAll(() => releaseTestRedis(redis, { clients, prefixes: [prefix] }));

const FILE = fileRecord();
const job = (): JobRecord => jobRecord(FILE.file_id, { cache_key: 'k' });

const stores: Array<[string, () => JobStore]> = [['embedded', () => EmbeddedJobStore.inMemory()]];
if (redis) {
  stores.push([
    'Redis',
    () => {
      const client = new Redis(redis.url);
      clients.push(client);
      return new RedisJobStore(client, prefix, 3600);
    },
  ]);
}

describe('canMove', () => {
  it('allows forward moves and staying, never back, never from an end', () => {
    expect([
      canMove('queued', 'processing'),
      canMove('processing', 'processing'),
      canMove('processing', 'completed'),
      canMove('queued', 'failed'),
    ]).toEqual([true, true, true, true]);
    expect([
      canMove('processing', 'queued'),
      canMove('completed', 'processing'),
      canMove('completed', 'failed'),
      canMove('failed', 'completed'),
      canMove('completed', undefined),
    ]).toEqual([false, false, false, false, false]);
  });
});

describe.each(stores)('%s job store', (_name, open) => {
  it('refuses to move a completed job back or to overwrite its result, and says what the record is', async () => {
    const store = open();
    await store.putFile(FILE);
    const record = job();
    await store.putJob(record);
    expect((await store.updateJob(record.processing_id, { status: 'processing' }))?.status).toBe('processing');
    const result = { format: 'png' as const, width: 1, height: 1, size_bytes: 10, sha256: 'ab' };
    expect((await store.updateJob(record.processing_id, { status: 'completed', result }))?.status).toBe('completed');
    // A duplicate run: starts again, then fails.
    expect(await store.updateJob(record.processing_id, { status: 'processing', started_at: 'later' })).toMatchObject({
      status: 'completed',
      result,
    });
    expect(
      await store.updateJob(record.processing_id, { status: 'failed', error: { code: 'processing_failed', message: 'y' } }),
    ).toMatchObject({ status: 'completed', result });
    expect((await store.getJob(record.processing_id))?.error).toBeUndefined();
    expect((await store.getJob(record.processing_id))?.started_at).not.toBe('later');
  });

  it('refuses to move a running job back to queued', async () => {
    const store = open();
    await store.putFile(FILE);
    const record = job();
    await store.putJob(record);
    await store.updateJob(record.processing_id, { status: 'processing' });
    expect((await store.updateJob(record.processing_id, { status: 'queued' }))?.status).toBe('processing');
  });
});
