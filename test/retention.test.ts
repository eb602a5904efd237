/**
 * Retention on a busy deployment: any backlog is swept in bounded batches (it used to throw RangeError past
 * ~150 000 due uploads, and every later sweep too, logged as "Redis is unreachable"), the bytes go before
 * the records, and nothing an unfinished job needs is swept.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedJobStore } from '../src/adapters/embedded-job-store.js';
import { MemoryStore } from '../src/adapters/memory-store.js';
import { guarded } from '../src/adapters/redis-connection.js';
import { RedisJobStore } from '../src/adapters/redis-job-store.js';
import type { FileRecord, JobRecord } from '../src/domain/jobs.js';
import type { JobStore } from '../src/ports.js';
import { createSweeper, SWEEP_BATCH } from '../src/retention.js';
import { fileRecord, jobRecord } from './helpers/records.js';
import { releaseTestRedis, testRedis } from './helpers/redis.js';

const redis = await testRedis();
const prefixes: string[] = [];
const clients: Redis[] = [];
afterAll(() => releaseTestRedis(redis, { clients, prefixes }));

const LONG_AGO = new Date('2026-01-01T00:00:00Z');
const file = (at = LONG_AGO): FileRecord => fileRecord({ uploaded_at: at.toISOString() });
const job = (fileId: string): JobRecord => jobRecord(fileId, { created_at: LONG_AGO.toISOString() });

function redisJobs(): RedisJobStore {
  const client = new Redis(redis!.url);
  clients.push(client);
  const prefix = `retention-${randomUUID().slice(0, 8)}`;
  prefixes.push(prefix);
  return new RedisJobStore(client, prefix, 7 * 24 * 3600);
}

const kinds: Array<[string, () => JobStore]> = [['embedded', () => EmbeddedJobStore.inMemory()]];
if (redis) kinds.push(['Redis', redisJobs]);

describe.each(kinds)('retention over the %s job store', (_name, open) => {
  it('keeps an upload a queued job needs, and sweeps it once the job has ended', async () => {
    const jobs = open();
    const store = new MemoryStore();
    const sweep = createSweeper({ jobs, store, retentionSeconds: 60 });
    const needed = file();
    const idle = file();
    for (const record of [needed, idle]) await jobs.putFile(record);
    const pending = job(needed.file_id);
    await jobs.putJob(pending);
    expect((await sweep()).uploads).toBe(1);
    expect(await jobs.getFile(needed.file_id)).toBeDefined();
    expect(await jobs.getFile(idle.file_id)).toBeUndefined();
    expect(await jobs.getJob(pending.processing_id)).toBeDefined();
    await jobs.updateJob(pending.processing_id, { status: 'failed', error: { code: 'processing_failed', message: 'y' } });
    expect((await sweep()).uploads).toBe(1);
    expect(await jobs.getFile(needed.file_id)).toBeUndefined();
  });
});

describe.each(kinds)('a job asked for while the sweep takes its upload (%s)', (_name, open) => {
  it('is refused (404 file_not_found) instead of accepted and then failed file_missing', async () => {
    const jobs = open();
    const old = file();
    await jobs.putFile(old);
    // The sweep takes the upload; the bytes are not deleted yet when a POST /process records its job.
    expect(await jobs.takeDueUploads(new Date(), 10)).toEqual([old.file_id]);
    await expect(jobs.putJob(job(old.file_id))).rejects.toMatchObject({ status: 404, code: 'file_not_found' });
    expect(await jobs.getFile(old.file_id)).toBeUndefined();
    await jobs.forgetUploads([old.file_id]);
    expect(await jobs.takeDueUploads(new Date(), 10)).toEqual([]);
  });
});

describe.runIf(redis !== undefined)('retention with a large backlog (Redis)', () => {
  it(
    `sweeps 200 000 due uploads in batches of ${SWEEP_BATCH}, each marked as taken until its bytes are gone`,
    { timeout: 120_000 },
    async () => {
      const jobs = redisJobs();
      const prefix = prefixes.at(-1)!;
      const client = new Redis(redis!.url);
      clients.push(client);
      const deleted: string[] = [];
      const store = Object.assign(new MemoryStore(), {
        async deleteUploads(ids: string[]) {
          // While its bytes are deleted, an upload is still named somewhere (the sweep's mark): a sweep that
          // dies here leaves nothing that a later one cannot find.
          expect(await client.zscore(`${prefix}:sweeping`, ids[0]!)).not.toBeNull();
          deleted.push(...ids);
          return ids;
        },
      });
      const total = 200_000;
      for (let written = 0; written < total; written += 2000) {
        await Promise.all(Array.from({ length: 2000 }, () => jobs.putFile(file())));
      }
      const sweep = createSweeper({ jobs, store, retentionSeconds: 60 });
      const first = await sweep();
      expect(first.uploads).toBe(100 * SWEEP_BATCH);
      const second = await sweep();
      expect(first.uploads + second.uploads).toBe(total);
      expect(new Set(deleted).size).toBe(total);
      expect((await jobs.listFiles(1)).total).toBe(0);
      expect(await client.zcard(`${prefix}:sweeping`)).toBe(0);
    },
  );
});

describe('Redis errors that are not connection errors', () => {
  it('are passed on as what they are, not as "Redis is unreachable"', async () => {
    await expect(
      guarded(async () => {
        throw new RangeError('Maximum call stack size exceeded');
      }),
    ).rejects.toBeInstanceOf(RangeError);
    await expect(
      guarded(async () => {
        throw new Error('Connection is closed.');
      }),
    ).rejects.toMatchObject({ code: 'redis_unavailable', status: 503 });
  });
});
