/**
 * A rolling deploy from a client's side: SIGTERM reaches an API process while an upload is still arriving and
 * a `?wait=` long poll is open. Both must be answered properly (they got 503 redis_unavailable when Redis
 * was closed at the same time as the HTTP server): the upload completes, the long poll is answered at once
 * with the job as it stands (the client polls again elsewhere), and the process exits 0.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { submit, upload, waitForJob } from '../helpers/client.js';
import { noisyJpeg } from '../helpers/images.js';
import { ownedTestRedis, releaseTestRedis } from '../helpers/redis.js';
import { startServer, startWorker, stopAll, type ServerProcess } from '../helpers/server-process.js';

const redis = await ownedTestRedis();

describe.runIf(redis !== undefined)('SIGTERM to an API process with requests in flight (Redis mode)', () => {
  const started: ServerProcess[] = [];
  const prefix = `deploy-${randomUUID().slice(0, 8)}`;
  afterAll(async () => {
    await stopAll(started);
    await releaseTestRedis(redis, { prefixes: [prefix] });
  });

  it('answers the upload still arriving and the open long poll, then exits 0', async () => {
    const env = { REDIS_URL: redis!.url, REDIS_KEY_PREFIX: prefix, WORKER_CONCURRENCY: '0', SHUTDOWN_TIMEOUT_SECONDS: '20' };
    const api = await startServer(env);
    started.push(api);
    const send = (path: string, init?: RequestInit) => fetch(`${api.baseUrl}${path}`, init);
    const photo = await noisyJpeg(800, 600);

    // A job with no worker yet, and a long poll waiting for it.
    const file = await upload(send, photo, 'first.jpg');
    const { processing_id: processingId } = await submit(send, file.file_id, 'operation=grayscale');
    const longPoll = send(`/status/${processingId}?wait=30`).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as { status: string },
      at: Date.now(),
    }));

    // Half an upload on its own connection.
    const boundary = 'rollingDeployBoundary';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="arriving.jpg"\r\n\r\n`),
      photo,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    let finish: () => void = () => undefined;
    const uploadAnswer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        `${api.baseUrl}/upload`,
        {
          method: 'POST',
          agent: false,
          headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.write(body.subarray(0, body.length / 2));
      finish = () => req.end(body.subarray(body.length / 2));
    });
    await new Promise((resolve) => setTimeout(resolve, 300));

    const stoppedAt = Date.now();
    api.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The deploy goes on: the rest of the upload arrives, and a worker comes up and runs the job.
    finish();
    started.push(await startWorker({ ...env, WORKER_CONCURRENCY: '1' }, api.dir));

    const uploaded = await uploadAnswer;
    expect(uploaded.status, uploaded.text).toBe(200);
    expect(JSON.parse(uploaded.text)).toMatchObject({ width: 800, height: 600 });
    const polled = await longPoll;
    expect(polled).toMatchObject({ status: 200, body: { status: 'queued' } });
    expect(polled.at - stoppedAt).toBeLessThan(2000);
    expect(await api.exited).toBe(0);
    // The job itself goes on: another API task answers for it once the worker has run it.
    const next = await startServer(env, api.dir);
    started.push(next);
    const job = await waitForJob((path, init) => fetch(`${next.baseUrl}${path}`, init), processingId);
    expect(job.status).toBe('completed');
  });
});
