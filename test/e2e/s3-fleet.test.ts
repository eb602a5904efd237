/**
 * The production shape with S3: two API processes that only enqueue and two worker processes, each with its
 * own folders (no shared disk at all), one Redis and one bucket prefix. Any API answers for any id, and a
 * worker killed mid-job leaves nothing staged and loses nothing.
 */
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { download, submit, upload, waitForJob } from '../helpers/client.js';
import { look, noisyJpeg } from '../helpers/images.js';
import { ownedTestRedis, releaseTestRedis } from '../helpers/redis.js';
import { S3_CREDENTIALS, startS3 } from '../helpers/s3-server.js';
import { startServer, startWorker, stopAll, type ServerProcess } from '../helpers/server-process.js';

const redis = await ownedTestRedis();
const s3 = await startS3();

describe.runIf(redis !== undefined)('Redis mode with files in S3, several API and worker processes', () => {
  const started: ServerProcess[] = [];
  const prefix = `fleet-${randomUUID().slice(0, 8)}`;
  afterAll(async () => {
    await stopAll(started);
    await releaseTestRedis(redis, { prefixes: [prefix] });
    await s3.stop();
  });
  const track = (p: ServerProcess) => (started.push(p), p);

  it('uploads through one API, processes on any worker, downloads through another API', async () => {
    const env = { REDIS_URL: redis!.url, REDIS_KEY_PREFIX: prefix, WORKER_LOCK_SECONDS: '2', ...s3.env(prefix) };
    const apis = [
      track(await startServer({ ...env, WORKER_CONCURRENCY: '0' })),
      track(await startServer({ ...env, WORKER_CONCURRENCY: '0' })),
    ];
    // Each process has folders of its own: nothing but S3 and Redis is shared.
    expect(new Set(apis.map((api) => api.dir)).size).toBe(2);
    const workers = [
      track(await startWorker({ ...env, WORKER_CONCURRENCY: '1' }, `${apis[0]!.dir}-w1`)),
      track(await startWorker({ ...env, WORKER_CONCURRENCY: '1' }, `${apis[0]!.dir}-w2`)),
    ];
    for (const worker of workers) expect(worker.output()).toContain('"worker started"');
    const sendTo = (index: number) => (path: string, init?: RequestInit) => fetch(`${apis[index]!.baseUrl}${path}`, init);

    const photo = await noisyJpeg(1600, 1200);
    const accepted: string[] = [];
    for (let n = 0; n < 6; n++) {
      const file = await upload(sendTo(n % 2), photo, `fleet-${n}.jpg`);
      // A blur first, so the jobs take long enough for a worker to die with one in its hands.
      const pipeline = {
        operations: [
          { operation: 'blur', intensity: 30 },
          { operation: 'resize', width: 200 + n },
        ],
      };
      accepted.push((await submit(sendTo((n + 1) % 2), file.file_id, pipeline)).processing_id);
    }
    // A worker killed while jobs are in flight: the other takes over theirs when their locks expire.
    const inFlight = async () => {
      for (const processingId of accepted) {
        if (((await (await sendTo(0)(`/status/${processingId}`)).json()) as { status: string }).status === 'processing') return true;
      }
      return false;
    };
    for (let i = 0; i < 200 && !(await inFlight()); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await inFlight()).toBe(true);
    await workers[0]!.stop('SIGKILL');
    for (const [n, processingId] of accepted.entries()) {
      const job = await waitForJob(sendTo(n % 2), processingId, 30_000);
      expect(job.status, JSON.stringify(job.error)).toBe('completed');
      expect((await look((await download(sendTo((n + 1) % 2), processingId)).bytes)).width).toBe(200 + n);
    }

    const client = new S3Client({
      endpoint: s3.endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
    });
    try {
      const keys = async (under: string) =>
        ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/${under}` }))).Contents ?? []).length;
      expect({ uploads: await keys('uploads/'), results: await keys('results/'), staged: await keys('staging/') }).toEqual({
        uploads: 6,
        results: 6,
        staged: 0,
      });
    } finally {
      client.destroy();
    }
  });
});
