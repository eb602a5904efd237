/**
 * Status streams over real HTTP from real server processes, read with Node's plain `http` client:
 * - embedded: a job followed from the stream's start to its end;
 * - Redis, a fleet of two API processes and a worker started later: a stream opened on one API follows a
 *   job asked for on the other; that API is stopped (SIGTERM) while the stream is open, which ends it
 *   cleanly; the client resumes on the other API with Last-Event-ID and misses nothing, sees nothing twice.
 */
import { randomUUID } from 'node:crypto';
import { request, type IncomingHttpHeaders } from 'node:http';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { multipart } from '../helpers/client.js';
import { look, noisyJpeg, pixel } from '../helpers/images.js';
import { deleteKeys, testRedis } from '../helpers/redis.js';
import { startServer, startWorker, stopAll, type ServerProcess } from '../helpers/server-process.js';
import { eventsOf, SseReader, type SseEvent } from '../helpers/sse.js';

/** A GET with Node's own client: the status, the headers and, for a stream, its reader. */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; sse: SseReader }> {
  return new Promise((resolve, reject) => {
    const sent = request(url, { headers, agent: false }, (response) =>
      resolve({
        status: response.statusCode!,
        headers: response.headers,
        // A connection cut before the body's end errors the stream (the reader rejects); a clean end ends it.
        sse: new SseReader(Readable.toWeb(response) as ReadableStream<Uint8Array>),
      }),
    );
    sent.setTimeout(20_000, () => sent.destroy(new Error('no answer within 20 s')));
    sent.on('error', reject);
    sent.end();
  });
}

const STREAM = { Accept: 'text/event-stream' };

async function startJob(base: string, bytes: Uint8Array): Promise<string> {
  const uploaded = (await (await fetch(`${base}/upload`, { method: 'POST', body: multipart(bytes, 'photo.jpg') })).json()) as {
    file_id: string;
  };
  const asked = await fetch(`${base}/process/${uploaded.file_id}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ operations: [{ operation: 'resize', width: 64, height: 48 }, { operation: 'grayscale' }] }),
  });
  expect(asked.status).toBe(200);
  return ((await asked.json()) as { processing_id: string }).processing_id;
}

const ids = (events: SseEvent[]) => events.map((event) => event.id);
const statuses = (events: SseEvent[]) => events.map((event) => (JSON.parse(event.data) as { status: string }).status);

describe('status streams over HTTP (embedded)', () => {
  const started: ServerProcess[] = [];
  afterAll(() => stopAll(started));

  it('follows a job to its end: rising ids, the status JSON, a clean close, then 204', async () => {
    const api = await startServer({ SSE_HEARTBEAT_SECONDS: '1' });
    started.push(api);
    const id = await startJob(api.baseUrl, await noisyJpeg(1600, 1200));
    const opened = await get(`${api.baseUrl}/status/${id}`, STREAM);
    expect(opened.status).toBe(200);
    expect(opened.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const items = await opened.sse.rest(20_000);
    expect(items[0]).toEqual({ kind: 'retry', ms: 2000 });
    const events = eventsOf(items);
    // The job may have moved on before the stream opened; from there on, every state, in order, once.
    expect(ids(events)).toEqual([...new Set(ids(events))].sort());
    expect(statuses(events).at(-1)).toBe('completed');
    const last = JSON.parse(events.at(-1)!.data) as Record<string, unknown>;
    expect(last).toEqual(await (await fetch(`${api.baseUrl}/status/${id}`)).json());
    const bytes = new Uint8Array(await (await fetch(`${api.baseUrl}${String(last.download_url)}`)).arrayBuffer());
    const image = await look(bytes);
    expect([image.width, image.height]).toEqual([64, 48]);
    const [r, g, b] = await pixel(bytes, 10, 10);
    expect(Math.max(r!, g!, b!) - Math.min(r!, g!, b!)).toBeLessThanOrEqual(2);
    const after = await get(`${api.baseUrl}/status/${id}`, { ...STREAM, 'Last-Event-ID': '3' });
    expect(after.status).toBe(204);
    expect(await after.sse.rest(2000)).toEqual([]);
  });
});

const redis = await testRedis();

describe.runIf(redis !== undefined)('status streams across a fleet (Redis mode)', () => {
  const started: ServerProcess[] = [];
  const prefix = `e2e-sse-${randomUUID().slice(0, 8)}`;
  afterAll(async () => {
    await stopAll(started);
    await deleteKeys(redis!.url, prefix);
    await deleteKeys(redis!.url, `${prefix}-alone`);
    await redis!.dispose();
    await Promise.all([...new Set(started.map((p) => p.dir))].map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('a stream on one API follows a job asked for on another; a stopped API ends it cleanly; the other resumes it', async () => {
    // The default heartbeat (15 s, and its read of the job): events that come sooner came over Redis pub/sub.
    const env = { REDIS_URL: redis!.url, REDIS_KEY_PREFIX: prefix, WORKER_CONCURRENCY: '0' };
    const first = await startServer(env);
    started.push(first);
    const second = await startServer(env, first.dir);
    started.push(second);

    // No worker runs yet: the job waits, queued.
    const id = await startJob(second.baseUrl, await noisyJpeg(800, 600));
    const onFirst = await get(`${first.baseUrl}/status/${id}`, STREAM);
    expect(onFirst.status).toBe(200);
    const before = await onFirst.sse.events(1);
    expect(ids(eventsOf(before))).toEqual(['1']);

    // The first API stops while the stream is open: the stream ends (not cut), saying so, and the API exits 0.
    const stopping = Date.now();
    const exitCode = first.stop('SIGTERM');
    const rest = await onFirst.sse.rest(10_000);
    expect(rest.filter((item) => item.kind !== 'comment' || item.text !== 'keep-alive')).toEqual([
      { kind: 'comment', text: 'the service is stopping; reconnect' },
    ]);
    expect(await exitCode).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(10_000);

    // The client reconnects to the other API, as EventSource would, with the last id it saw.
    const onSecond = await get(`${second.baseUrl}/status/${id}`, { ...STREAM, 'Last-Event-ID': '1' });
    const resumedAt = Date.now();
    expect(onSecond.status).toBe(200);
    const resumedStart = await onSecond.sse.next(5000);
    expect(resumedStart).toEqual({ kind: 'retry', ms: 2000 });
    // A worker starts: the job runs, and its moves reach the stream over Redis.
    started.push(await startWorker({ REDIS_URL: redis!.url, REDIS_KEY_PREFIX: prefix, WORKER_CONCURRENCY: '1' }, first.dir));
    const events = eventsOf(await onSecond.sse.rest(30_000));
    expect(ids(events)).toEqual(['2', '3']);
    // Before the stream's first heartbeat: the worker's moves reached the other API over Redis pub/sub.
    expect(Date.now() - resumedAt).toBeLessThan(12_000);
    expect(statuses(events)).toEqual(['processing', 'completed']);
    expect(JSON.parse(events[1]!.data)).toMatchObject({ processing_id: id, result: { width: 64, height: 48 } });
    const finished = await get(`${second.baseUrl}/status/${id}`, { ...STREAM, 'Last-Event-ID': '3' });
    expect(finished.status).toBe(204);
  });

  it('a client that hangs up gives its place back', async () => {
    // No worker (and a prefix of its own: the other test's worker must not see this job): the job stays queued.
    const api = await startServer({
      REDIS_URL: redis!.url,
      REDIS_KEY_PREFIX: `${prefix}-alone`,
      WORKER_CONCURRENCY: '0',
      SSE_MAX_STREAMS_PER_CLIENT: '1',
      SSE_HEARTBEAT_SECONDS: '1',
    });
    started.push(api);
    const id = await startJob(api.baseUrl, await noisyJpeg(64, 48));
    const url = `${api.baseUrl}/status/${id}`;
    const first = await get(url, STREAM);
    expect(first.status).toBe(200);
    // Heartbeats over real HTTP: a comment line each second while the job waits.
    const opening = await first.sse.events(1);
    expect(ids(eventsOf(opening))).toEqual(['1']);
    expect(await first.sse.next(3000)).toEqual({ kind: 'comment', text: 'keep-alive' });
    expect((await get(url, STREAM)).status).toBe(429);
    await first.sse.cancel();
    // The server learns of the close from the socket; then the place is free.
    const deadline = Date.now() + 5000;
    let status = 429;
    while (status === 429 && Date.now() < deadline) {
      const again = await get(url, STREAM);
      status = again.status;
      await again.sse.cancel();
      if (status === 429) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe(200);
  });
});
