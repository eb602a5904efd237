/**
 * Redis mode from outside, as a user sees it: one API process that only enqueues plus separate worker
 * processes; a worker killed mid-job; Redis going away and coming back; an API restart.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { download, processToBytes, submit, upload, waitForJob } from '../helpers/client.js';
import { look, noisyJpeg } from '../helpers/images.js';
import { deleteKeys, ownedTestRedis, tlsTestRedis, type TestRedis } from '../helpers/redis.js';
import { startServer, startWorker, type ServerProcess } from '../helpers/server-process.js';

const redis = await ownedTestRedis();

describe.runIf(redis !== undefined)('Redis mode, several processes', () => {
  const started: ServerProcess[] = [];
  const prefixes: string[] = [];
  let server: TestRedis;
  let env: Record<string, string>;

  beforeAll(() => {
    server = redis!;
  });
  // Each test is its own deployment: its own key prefix (queue) and its own file folders.
  beforeEach(() => {
    prefixes.push(`e2e-${randomUUID().slice(0, 8)}`);
    env = { REDIS_URL: server.url, REDIS_KEY_PREFIX: prefixes.at(-1)!, WORKER_LOCK_SECONDS: '2' };
  });
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop('SIGKILL')));
    await server.start().catch(() => undefined);
    for (const prefix of prefixes) await deleteKeys(server.url, prefix);
    await server.dispose();
    await Promise.all([...new Set(started.map((p) => p.dir))].map((dir) => rm(dir, { recursive: true, force: true })));
  });
  const track = (p: ServerProcess) => (started.push(p), p);

  it('an API with WORKER_CONCURRENCY=0 enqueues, a separate worker process does the work, and an API restart loses nothing', async () => {
    const api = track(await startServer({ ...env, WORKER_CONCURRENCY: '0' }));
    const send = (path: string, init?: RequestInit) => fetch(`${api.baseUrl}${path}`, init);
    const file = await upload(send, await noisyJpeg(400, 300), 'multi.jpg');
    const accepted = await submit(send, file.file_id, 'operation=resize&width=200&height=150');
    // No worker yet: the job waits in the queue.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(((await (await send(`/status/${accepted.processing_id}`)).json()) as { status: string }).status).toBe('queued');
    const health = (await (await send('/health')).json()) as {
      services: { queue: { waiting: number; workers: number }; redis: { status: string } };
    };
    expect(health.services).toMatchObject({ redis: { status: 'connected' }, queue: { waiting: 1, workers: 0 } });

    track(await startWorker({ ...env, WORKER_CONCURRENCY: '2' }, api.dir));
    const job = await waitForJob(send, accepted.processing_id);
    expect(job).toMatchObject({ status: 'completed', result: { width: 200, height: 150 } });
    expect(
      ((await (await send('/health')).json()) as { services: { queue: { workers: number } } }).services.queue.workers,
    ).toBeGreaterThanOrEqual(1);

    // Another API process answers for ids the first one created, and the first can die without loss.
    await api.stop('SIGKILL');
    const second = track(await startServer({ ...env, WORKER_CONCURRENCY: '0' }, api.dir));
    const send2 = (path: string, init?: RequestInit) => fetch(`${second.baseUrl}${path}`, init);
    const listed = (await (await send2('/list')).json()) as { items: Array<{ file_id: string }> };
    expect(listed.items.map((item) => item.file_id)).toContain(file.file_id);
    const { bytes } = await download(send2, accepted.processing_id);
    expect((await look(bytes)).width).toBe(200);
  });

  it('a worker killed with SIGKILL mid-job: another worker picks the job up and completes it', async () => {
    const api = track(await startServer({ ...env, WORKER_CONCURRENCY: '0' }));
    const send = (path: string, init?: RequestInit) => fetch(`${api.baseUrl}${path}`, init);
    const doomed = track(await startWorker({ ...env, WORKER_CONCURRENCY: '1' }, api.dir));
    const file = await upload(send, await noisyJpeg(2400, 1800), 'crash.jpg');
    const accepted = await submit(send, file.file_id, {
      operations: [
        { operation: 'blur', intensity: 60 },
        { operation: 'blur', intensity: 60 },
        { operation: 'resize', width: 300 },
      ],
      format: 'png',
    });
    let status = 'queued';
    for (let i = 0; i < 400 && status !== 'processing'; i++) {
      status = ((await (await send(`/status/${accepted.processing_id}`)).json()) as { status: string }).status;
      if (status !== 'processing') await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(status).toBe('processing');
    await doomed.stop('SIGKILL');

    track(await startWorker({ ...env, WORKER_CONCURRENCY: '1' }, api.dir));
    const job = await waitForJob(send, accepted.processing_id, 60_000);
    expect(job).toMatchObject({ status: 'completed', result: { format: 'png', width: 300, height: 225 } });
    const { bytes } = await download(send, accepted.processing_id);
    const image = await look(bytes);
    expect([image.format, image.width, image.height]).toEqual(['png', 300, 225]);
    expect(job.result!.size_bytes).toBe(bytes.length);
  });

  it('Redis down: work is refused at once with 503 + Retry-After, / stays up, and everything resumes when Redis is back', async () => {
    const api = track(await startServer({ ...env, WORKER_CONCURRENCY: '1' }));
    const send = (path: string, init?: RequestInit) => fetch(`${api.baseUrl}${path}`, init);
    const photo = await noisyJpeg(200, 150);
    const before = await upload(send, photo, 'before.jpg');

    await server.stop();
    const form = new FormData();
    // A body big enough that the client is still sending when the 503 is decided.
    form.append('file', new Blob([new Uint8Array(await noisyJpeg(1200, 900))]), 'during.jpg');
    const started = Date.now();
    const refused = await send('/upload', { method: 'POST', body: form });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await refused.json()) as { code: string }).code).toBe('redis_unavailable');
    const process = await send(`/process/${before.file_id}?operation=grayscale`, { method: 'POST' });
    expect(process.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(5000);
    const health = await send('/health');
    expect(health.status).toBe(503);
    expect((await health.json()) as { status: string; services: { redis: { status: string } } }).toMatchObject({
      status: 'unhealthy',
      services: { redis: { status: 'disconnected' } },
    });
    expect((await send('/')).status).toBe(200);

    await server.start();
    let healthy = false;
    for (let i = 0; i < 100 && !healthy; i++) {
      healthy = (await send('/health')).status === 200;
      if (!healthy) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(healthy).toBe(true);
    // The data written before the outage is still there (append-only Redis), and new work flows again.
    expect(((await (await send('/list')).json()) as { items: Array<{ file_id: string }> }).items.map((item) => item.file_id)).toContain(
      before.file_id,
    );
    const { bytes } = await processToBytes(send, photo, 'after.jpg', 'operation=resize&width=50');
    expect((await look(bytes)).width).toBe(50);
  });
});

const tlsRedis = await tlsTestRedis();

describe.runIf(tlsRedis !== undefined)('Redis mode over TLS (rediss://)', () => {
  afterAll(() => tlsRedis?.dispose());

  it('the API and its worker connect with TLS and run the seed flow', async () => {
    const api = await startServer({ REDIS_URL: tlsRedis!.url, WORKER_CONCURRENCY: '1', NODE_EXTRA_CA_CERTS: tlsRedis!.caFile });
    try {
      const send = (path: string, init?: RequestInit) => fetch(`${api.baseUrl}${path}`, init);
      const health = (await (await send('/health')).json()) as { services: { redis: { status: string } } };
      expect(health.services.redis.status).toBe('connected');
      const { bytes } = await processToBytes(send, await noisyJpeg(300, 200), 'tls.jpg', 'operation=resize&width=150');
      expect((await look(bytes)).width).toBe(150);
    } finally {
      await api.stop('SIGKILL');
      await rm(api.dir, { recursive: true, force: true });
    }
  });
});
