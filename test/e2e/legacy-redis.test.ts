/**
 * The original service's client flow in Redis mode, across processes: `POST /upload-image/` on one API
 * process, `GET /status/{task_id}`, `GET /download/{file_id}` and `GET /tasks/` on another (real server
 * processes, a real redis-server, shared folders).
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { multipart, waitForJob } from '../helpers/client.js';
import { look, noisyJpeg } from '../helpers/images.js';
import { deleteKeys, testRedis } from '../helpers/redis.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';

const redis = await testRedis();

describe.runIf(redis !== undefined)("the original service's flow across API processes (Redis mode)", () => {
  const started: ServerProcess[] = [];
  const prefix = `e2e-legacy-${randomUUID().slice(0, 8)}`;
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop('SIGKILL')));
    await deleteKeys(redis!.url, prefix);
    await redis!.dispose();
    await Promise.all([...new Set(started.map((p) => p.dir))].map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('upload-image on one API, status, download by file_id and tasks on another', async () => {
    const env = { REDIS_URL: redis!.url, REDIS_KEY_PREFIX: prefix };
    const first = await startServer({ ...env, WORKER_CONCURRENCY: '1' });
    started.push(first);
    const second = await startServer({ ...env, WORKER_CONCURRENCY: '0' }, first.dir);
    started.push(second);
    const on = (api: ServerProcess) => (path: string, init?: RequestInit) => fetch(`${api.baseUrl}${path}`, init);
    const [send1, send2] = [on(first), on(second)];

    const answered = await send1('/upload-image/', { method: 'POST', body: multipart(await noisyJpeg(1200, 1600), 'portrait.jpg') });
    const made = (await answered.json()) as { task_id: string; file_id: string; processing_id: string };
    expect(answered.status, JSON.stringify(made)).toBe(200);
    expect(made.task_id).toBe(made.processing_id);

    const job = await waitForJob((path) => send2(`${path}/`), made.task_id, 30_000);
    expect(job).toMatchObject({ status: 'completed', task_id: made.task_id, result: { width: 600, height: 800 } });
    const downloaded = await send2(`/download/${made.file_id}`);
    expect(downloaded.status).toBe(200);
    const image = await look(new Uint8Array(await downloaded.arrayBuffer()));
    expect([image.format, image.width, image.height]).toEqual(['jpeg', 600, 800]);

    // The second API takes a legacy upload too (the first one's worker does it); both list both, newest first.
    const later = (await (
      await send2('/upload-image', { method: 'POST', body: multipart(await noisyJpeg(200, 100), 'small.jpg') })
    ).json()) as { task_id: string; file_id: string };
    await waitForJob(send1, later.task_id, 30_000);
    for (const send of [send1, send2]) {
      const tasks = (await (await send('/tasks/')).json()) as { items: Array<{ task_id: string; status: string }>; total: number };
      expect(tasks.items.map((item) => item.task_id)).toEqual([later.task_id, made.task_id]);
      expect(tasks.total).toBe(2);
    }
    const small = await look(new Uint8Array(await (await send1(`/download/${later.file_id}/`)).arrayBuffer()));
    expect([small.width, small.height]).toEqual([200, 100]);

    // A file_id of a plain upload: a 404 that says where results are.
    const plain = (await (await send1('/upload/', { method: 'POST', body: multipart(await noisyJpeg(50, 50), 'plain.jpg') })).json()) as {
      file_id: string;
    };
    const refused = await send2(`/download/${plain.file_id}`);
    expect(refused.status).toBe(404);
    expect(((await refused.json()) as { detail: string }).detail).toContain('not a processing_id');
    // Two server processes start here (each ~3 s idle, over 10 s on a loaded 2-core runner).
  }, 90_000);
});
