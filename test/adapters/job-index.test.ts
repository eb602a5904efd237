/**
 * The `/tasks` index and the upload → task link of `POST /upload-image/`, over both job stores: newest
 * first with a cursor, written with the record, trimmed with retention, and (embedded) kept across a restart.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedJobStore } from '../../src/adapters/embedded-job-store.js';
import { RedisJobStore } from '../../src/adapters/redis-job-store.js';
import type { FileRecord, JobRecord } from '../../src/domain/jobs.js';
import type { JobStore } from '../../src/ports.js';
import { fileRecord, jobRecord } from '../helpers/records.js';
import { releaseTestRedis, testRedis } from '../helpers/redis.js';

const redis = await testRedis();
const prefixes: string[] = [];
const clients: Redis[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await releaseTestRedis(redis, { clients, prefixes });
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const file = (): FileRecord => fileRecord();
const job = (fileId: string, createdAt: Date, status: JobRecord['status'] = 'queued'): JobRecord =>
  jobRecord(fileId, { status, created_at: createdAt.toISOString() });

interface Kind {
  open(): Promise<JobStore>;
  /** The same records opened by another process (Redis) or after a restart (embedded on disk). */
  reopen(store: JobStore): Promise<JobStore>;
}

const kinds: Array<[string, Kind]> = [
  ['embedded (in memory)', { open: async () => EmbeddedJobStore.inMemory(), reopen: async (store) => store }],
  [
    'embedded (on disk)',
    {
      open: async () => {
        const dir = await mkdtemp(join(tmpdir(), 'job-index-'));
        dirs.push(dir);
        const store = await EmbeddedJobStore.open(dir);
        opened.set(store, dir);
        return store;
      },
      reopen: async (store) => EmbeddedJobStore.open(opened.get(store)!),
    },
  ],
];
const opened = new WeakMap<JobStore, string>();
if (redis) {
  const connect = (prefix: string) => {
    const client = new Redis(redis.url);
    clients.push(client);
    const store = new RedisJobStore(client, prefix, 3600);
    opened.set(store, prefix);
    return store;
  };
  kinds.push([
    'Redis',
    {
      open: async () => {
        const prefix = `job-index-${randomUUID().slice(0, 8)}`;
        prefixes.push(prefix);
        return connect(prefix);
      },
      reopen: async (store) => connect(opened.get(store)!),
    },
  ]);
}

describe.each(kinds)('the jobs index of the %s job store', (_name, kind) => {
  it('lists jobs newest first, a page at a time, ties at one instant ordered by id, from any process', async () => {
    const jobs = await kind.open();
    const upload = file();
    await jobs.putFile(upload);
    const base = Date.now() - 10_000;
    // Recorded out of order, two at the same millisecond, one finished (a cache hit is recorded completed).
    const made = [
      job(upload.file_id, new Date(base + 3)),
      job(upload.file_id, new Date(base + 1)),
      job(upload.file_id, new Date(base + 2)),
      job(upload.file_id, new Date(base + 2), 'completed'),
    ];
    for (const record of made) await jobs.putJob(record);
    const expected = made
      .toSorted((a, b) =>
        a.created_at === b.created_at ? b.processing_id.localeCompare(a.processing_id) : b.created_at.localeCompare(a.created_at),
      )
      .map((r) => r.processing_id);

    const other = await kind.reopen(jobs);
    const first = await other.listJobs(3);
    expect([first.items.map((r) => r.processing_id), first.total, first.hasMore]).toEqual([expected.slice(0, 3), 4, true]);
    const last = first.items.at(-1)!;
    const second = await other.listJobs(3, { created_at: last.created_at, processing_id: last.processing_id });
    expect([second.items.map((r) => r.processing_id), second.hasMore]).toEqual([expected.slice(3), false]);
    // The records are the jobs as they now are.
    await jobs.updateJob(made[0]!.processing_id, { status: 'processing' });
    expect((await jobs.listJobs(1)).items[0]!.status).toBe('processing');
  });

  it('links an upload to its task until the upload is forgotten', async () => {
    const jobs = await kind.open();
    const upload = file();
    await jobs.putFile(upload);
    const task = job(upload.file_id, new Date());
    await jobs.putJob(task);
    expect(await jobs.taskOf(upload.file_id)).toBeUndefined();
    await jobs.linkTask(upload.file_id, task.processing_id);
    expect(await (await kind.reopen(jobs)).taskOf(upload.file_id)).toBe(task.processing_id);
    await jobs.forgetUploads([upload.file_id]);
    expect(await jobs.taskOf(upload.file_id)).toBeUndefined();
    expect(await (await kind.reopen(jobs)).taskOf(upload.file_id)).toBeUndefined();
  });

  it('retention trims the index of jobs created before the cutoff', async () => {
    const jobs = await kind.open();
    const upload = file();
    await jobs.putFile(upload);
    const old = job(upload.file_id, new Date(Date.now() - 3_600_000), 'completed');
    const recent = job(upload.file_id, new Date(), 'completed');
    for (const record of [old, recent]) await jobs.putJob(record);
    await jobs.forgetJobsBefore(new Date(Date.now() - 60_000));
    const page = await jobs.listJobs(10);
    expect([page.items.map((r) => r.processing_id), page.total]).toEqual([[recent.processing_id], 1]);
  });
});

describe.runIf(redis !== undefined)('the Redis jobs index', () => {
  it('drops the entry of a record that expired before the sweep came', async () => {
    const prefix = `job-index-${randomUUID().slice(0, 8)}`;
    prefixes.push(prefix);
    const client = new Redis(redis!.url);
    clients.push(client);
    const jobs = new RedisJobStore(client, prefix, 3600);
    const upload = file();
    await jobs.putFile(upload);
    const [gone, kept] = [job(upload.file_id, new Date(Date.now() - 1000)), job(upload.file_id, new Date())];
    for (const record of [gone, kept]) await jobs.putJob(record);
    await client.del(`${prefix}:job:${gone.processing_id}`);
    const page = await jobs.listJobs(10);
    expect([page.items.map((r) => r.processing_id), page.total]).toEqual([[kept.processing_id], 1]);
  });
});
