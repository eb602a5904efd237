/**
 * `GET /status/{id}` as Server-Sent Events, through the app with plain Requests: the events and their ids,
 * resuming, the 204 after the final event, heartbeats, the limits, the stop. Jobs are moved by hand on the
 * real (in-memory) job store, so each state is certain when the test looks.
 */
import { describe, expect, it } from 'vitest';
import { lastEventId, wantsEventStream } from '../../handlers/status-stream.js';
import type { EmbeddedJobStore } from '../../src/adapters/embedded-job-store.js';
import type { JobRecord } from '../../src/domain/jobs.js';
import type { JobStore } from '../../src/ports.js';
import { expectProblem } from '../helpers/client.js';
import { memoryApp, type MemoryAppOptions } from '../helpers/memory-app.js';
import { fileRecord, jobRecord } from '../helpers/records.js';
import { collectSse, eventsOf, SseReader } from '../helpers/sse.js';

const STREAM = { Accept: 'text/event-stream' };

async function appWithJob(options: MemoryAppOptions = {}, overrides: Partial<JobRecord> = {}) {
  const app = memoryApp({ concurrency: 0, ...options });
  const file = fileRecord();
  await app.jobs.putFile(file);
  const job = jobRecord(file.file_id, overrides);
  await app.jobs.putJob(job);
  const path = `/status/${job.processing_id}`;
  return { ...app, job, path };
}

const completion = { result: { format: 'png' as const, width: 1, height: 1, size_bytes: 10, sha256: 'cd' } };

describe('status as Server-Sent Events', () => {
  it('sends one event per state, ids 1, 2, 3, each the status JSON of that moment, then closes', async () => {
    const { send, jobs, job, path } = await appWithJob();
    const response = await send(path, { headers: STREAM });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const done = collectSse(response.body!);
    // Each state is what GET /status said at that moment.
    const snapshots: unknown[] = [await (await send(path)).json()];
    await jobs.updateJob(job.processing_id, { status: 'processing', started_at: new Date().toISOString() });
    snapshots.push(await (await send(path)).json());
    await jobs.updateJob(job.processing_id, { status: 'completed', completed_at: new Date().toISOString(), ...completion });
    snapshots.push(await (await send(path)).json());
    const items = await done;
    expect(items[0]).toEqual({ kind: 'retry', ms: 2000 });
    const events = eventsOf(items);
    expect(events.map((event) => event.id)).toEqual(['1', '2', '3']);
    expect(events.map((event) => JSON.parse(event.data))).toEqual(snapshots);
    expect(JSON.parse(events[2]!.data)).toMatchObject({ status: 'completed', download_url: `/download/${job.processing_id}` });
  });

  it('resumes after Last-Event-ID: only later states are sent', async () => {
    const { send, jobs, job, path } = await appWithJob();
    await jobs.updateJob(job.processing_id, { status: 'processing' });
    const response = await send(path, { headers: { ...STREAM, 'Last-Event-ID': '2' } });
    const done = collectSse(response.body!);
    await jobs.updateJob(job.processing_id, { status: 'failed', error: { code: 'internal_error', message: 'x' } });
    const events = eventsOf(await done);
    expect(events.map((event) => [event.id, JSON.parse(event.data).status])).toEqual([['3', 'failed']]);
  });

  it('a job already finished: its final event, and a 204 for a client that has it', async () => {
    const { send, path } = await appWithJob({}, { status: 'completed', ...completion });
    const events = eventsOf(await collectSse((await send(path, { headers: STREAM })).body!));
    expect(events.map((event) => event.id)).toEqual(['3']);
    const again = await send(path, { headers: { ...STREAM, 'Last-Event-ID': '3' } });
    expect(again.status).toBe(204);
    expect(await again.text()).toBe('');
  });

  it('a Last-Event-ID this service never gives counts as none', async () => {
    const { send, path } = await appWithJob({}, { status: 'completed', ...completion });
    for (const id of ['0', '4', 'abc', '99999999999']) {
      const events = eventsOf(await collectSse((await send(path, { headers: { ...STREAM, 'Last-Event-ID': id } })).body!));
      expect(events.map((event) => event.id)).toEqual(['3']);
    }
  });

  it('heartbeats keep the stream alive, and a lost notice is made good at the next one', async () => {
    // A job store whose notices never arrive: only the heartbeat's own read can find the change.
    const deaf = (jobs: EmbeddedJobStore): JobStore => Object.assign(Object.create(jobs) as JobStore, { onChange: () => () => {} });
    const { send, jobs, job, path } = await appWithJob({ wrapJobs: deaf, statusStreams: { heartbeatSeconds: 1 } });
    const stream = new SseReader((await send(path, { headers: STREAM })).body!);
    const seen = await stream.events(1);
    await jobs.updateJob(job.processing_id, { status: 'completed', ...completion });
    const started = Date.now();
    const rest = await stream.rest(5000);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(eventsOf([...seen, ...rest]).map((event) => event.id)).toEqual(['1', '3']);
    expect(rest.some((item) => item.kind === 'comment' && item.text === 'keep-alive')).toBe(true);
  });

  it('JSON stays the answer unless the client prefers the stream', async () => {
    const { send, path } = await appWithJob();
    for (const accept of [undefined, '*/*', 'application/json', 'application/json, text/event-stream;q=0.5', 'text/event-stream;q=0']) {
      const response = await send(path, { headers: accept ? { Accept: accept } : {} });
      expect(response.headers.get('content-type'), accept).toBe('application/json');
    }
    expect(wantsEventStream('text/html, text/event-stream')).toBe(true);
    expect(wantsEventStream('TEXT/EVENT-STREAM')).toBe(true);
    expect(lastEventId(' 2 ')).toBe(2);
  });

  it("HEAD answers the stream's headers and holds no place", async () => {
    const { send, path } = await appWithJob({ statusStreams: { maxStreams: 1 } });
    for (let i = 0; i < 3; i++) {
      const head = await send(path, { method: 'HEAD', headers: STREAM });
      expect([head.status, head.headers.get('content-type'), await head.text()]).toEqual([200, 'text/event-stream; charset=utf-8', '']);
    }
    const stream = await send(path, { headers: STREAM });
    expect(stream.status).toBe(200);
    // HEAD says what the GET would: now the process is full.
    expect((await send(path, { method: 'HEAD', headers: STREAM })).status).toBe(503);
    await stream.body!.cancel();
  });

  it('HEAD of a finished job the client has in full is the 204 the GET would be', async () => {
    const { send, path } = await appWithJob({}, { status: 'completed', ...completion });
    expect((await send(path, { method: 'HEAD', headers: { ...STREAM, 'Last-Event-ID': '3' } })).status).toBe(204);
  });

  it('a stream ignores wait (a bad one too); a poll still refuses a bad one', async () => {
    const { send, path } = await appWithJob({}, { status: 'completed', ...completion });
    const streamed = await send(`${path}?wait=abc`, { headers: STREAM });
    expect(streamed.status).toBe(200);
    expect(eventsOf(await collectSse(streamed.body!)).map((event) => event.id)).toEqual(['3']);
    await expectProblem(await send(`${path}?wait=abc`), 400, 'invalid_wait');
  });

  it('a client that resumed from the final event while the job was not finished gets no repeat: the stream closes at its end', async () => {
    const { send, jobs, job, path } = await appWithJob();
    const stream = new SseReader((await send(path, { headers: { ...STREAM, 'Last-Event-ID': '3' } })).body!);
    expect(await stream.next()).toEqual({ kind: 'retry', ms: 2000 });
    await jobs.updateJob(job.processing_id, { status: 'completed', ...completion });
    expect(await stream.rest(2000)).toEqual([]);
  });

  it('/metrics counts the streams open', async () => {
    const { send, path } = await appWithJob();
    const gauge = async () => /^status_streams_open (\d+)$/m.exec(await (await send('/metrics')).text())?.[1];
    expect(await gauge()).toBe('0');
    const [a, b] = [await send(path, { headers: STREAM }), await send(path, { headers: STREAM })];
    expect(await gauge()).toBe('2');
    await a.body!.cancel();
    expect(await gauge()).toBe('1');
    await b.body!.cancel();
    expect(await gauge()).toBe('0');
  });

  it('an unknown job is a 404 problem, not a stream', async () => {
    const { send } = memoryApp();
    await expectProblem(await send(`/status/${crypto.randomUUID()}`, { headers: STREAM }), 404, 'job_not_found');
  });

  it('one client holds at most SSE_MAX_STREAMS_PER_CLIENT streams; a closed one gives its place back', async () => {
    const { send, path } = await appWithJob({ statusStreams: { maxPerClient: 2 } });
    const first = await send(path, { headers: STREAM });
    const second = await send(path, { headers: STREAM });
    const refused = await expectProblem(await send(path, { headers: STREAM }), 429, 'too_many_streams');
    expect(refused.detail).toContain('SSE_MAX_STREAMS_PER_CLIENT');
    // Polling is not a stream: it still works.
    expect((await send(path)).status).toBe(200);
    await first.body!.cancel();
    const third = await send(path, { headers: STREAM });
    expect(third.status).toBe(200);
    await Promise.all([second.body!.cancel(), third.body!.cancel()]);
  });

  it('a process holds at most SSE_MAX_STREAMS streams (503 with Retry-After)', async () => {
    const { send, path } = await appWithJob({ statusStreams: { maxStreams: 1 } });
    const held = await send(path, { headers: STREAM });
    const refused = await send(path, { headers: STREAM });
    await expectProblem(refused, 503, 'streams_full');
    expect(refused.headers.get('retry-after')).toBe('5');
    await held.body!.cancel();
    const next = await send(path, { headers: STREAM });
    expect(next.status).toBe(200);
    await next.body!.cancel();
  });

  it('a stream older than SSE_MAX_SECONDS is closed, and resuming misses nothing', async () => {
    const { send, jobs, job, path } = await appWithJob({ statusStreams: { heartbeatSeconds: 1, maxSeconds: 1 } });
    const first = await collectSse((await send(path, { headers: STREAM })).body!, 5000);
    expect(eventsOf(first).map((event) => event.id)).toEqual(['1']);
    expect(first.at(-1)).toMatchObject({ kind: 'comment', text: expect.stringContaining('reconnect') });
    await jobs.updateJob(job.processing_id, { status: 'completed', ...completion });
    const resumed = eventsOf(await collectSse((await send(path, { headers: { ...STREAM, 'Last-Event-ID': '1' } })).body!));
    expect(resumed.map((event) => event.id)).toEqual(['3']);
  });

  it('a stopping process ends its streams at once, saying so, and opens no more', async () => {
    const stop = new AbortController();
    const { send, path } = await appWithJob({ stopping: stop.signal });
    const stream = new SseReader((await send(path, { headers: STREAM })).body!);
    const seen = await stream.events(1);
    stop.abort();
    const rest = await stream.rest(2000);
    expect(eventsOf(seen).map((event) => event.id)).toEqual(['1']);
    expect(rest).toEqual([{ kind: 'comment', text: 'the service is stopping; reconnect' }]);
    const refused = await send(path, { headers: STREAM });
    await expectProblem(refused, 503, 'service_stopping');
    expect(refused.headers.get('retry-after')).toBe('1');
  });
});
