/**
 * Logs and metrics, as an operator sees them: JSON log lines for requests and for each step of a job's life,
 * Prometheus text at /metrics, and the worker's CloudWatch EMF queue-depth line.
 */
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, publishQueueMetrics } from '../src/metrics.js';
import { expectProblem, processToBytes, submit, upload, waitForJob } from './helpers/client.js';
import { embeddedHarness, type Harness } from './helpers/harness.js';
import { noisyJpeg } from './helpers/images.js';

type Line = Record<string, unknown>;

function memoryLogger() {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const text of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  return { lines, logger: pino({ level: 'info', base: { service: 'image-service' } }, stream) };
}

describe('logs and metrics', () => {
  const { lines, logger } = memoryLogger();
  const metrics = createMetrics();
  let h: Harness;
  beforeAll(async () => {
    h = await embeddedHarness({}, { logger, metrics });
  });
  afterAll(() => h.close());

  it('logs one line per request with request id, method, route, status and duration', async () => {
    await upload(h.request, await noisyJpeg(40, 30), 'logged.jpg');
    const line = lines.find((entry) => entry.msg === 'request' && entry.route === '/upload');
    expect(line).toMatchObject({ method: 'POST', route: '/upload', status: 200 });
    expect(line!.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof line!.duration_ms).toBe('number');
  });

  it('logs the job lifecycle: queued, started, completed or failed, with processing_id and timings', async () => {
    const { job } = await processToBytes(h.request, await noisyJpeg(40, 30), 'life.jpg', 'operation=resize&width=20');
    const id = job.processing_id as string;
    const mine = lines.filter((entry) => entry.processing_id === id);
    expect(mine.map((entry) => entry.msg)).toEqual(['job queued', 'job started', 'job completed']);
    expect(mine[1]).toMatchObject({ operations: [{ operation: 'resize', width: 20 }] });
    expect(typeof mine[2]!.duration_ms).toBe('number');

    const photo = await noisyJpeg(120, 90);
    const broken = await upload(h.request, photo.subarray(0, Math.floor(photo.length / 3)), 'broken.jpg');
    const failed = await waitForJob(h.request, (await submit(h.request, broken.file_id, 'operation=blur')).processing_id);
    expect(lines.find((entry) => entry.msg === 'job failed' && entry.processing_id === failed.processing_id)).toMatchObject({
      error: { code: 'decode_failed' },
    });
  });

  it('serves Prometheus metrics: request histogram, job counters and durations by operation, queue gauges, process defaults', async () => {
    // Its own traffic, so the test holds in any order: an upload, a completed job and a failed one.
    await processToBytes(h.request, await noisyJpeg(40, 30), 'counted.jpg', 'operation=resize&width=20');
    const photo = await noisyJpeg(120, 90);
    const broken = await upload(h.request, photo.subarray(0, Math.floor(photo.length / 3)), 'broken.jpg');
    await waitForJob(h.request, (await submit(h.request, broken.file_id, 'operation=blur')).processing_id);
    const response = await h.request('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/http_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="\/upload",status="200"\}/);
    expect(text).toMatch(/jobs_total\{outcome="completed"\} [1-9]/);
    expect(text).toMatch(/jobs_total\{outcome="failed"\} [1-9]/);
    expect(text).toMatch(/job_processing_duration_seconds_count\{operation="resize",outcome="completed"\} [1-9]/);
    expect(text).toMatch(/queue_jobs\{state="waiting"\} 0/);
    expect(text).toMatch(/queue_workers 1/);
    expect(text).toMatch(/process_resident_memory_bytes \d+/);
    expect(text).toMatch(/nodejs_eventloop_lag_seconds/);
  });

  it('keeps /metrics behind API_KEYS when they are set', async () => {
    const locked = await embeddedHarness({ API_KEYS: 'metrics-key-0123456789' });
    try {
      await expectProblem(await locked.request('/metrics'), 401, 'unauthorized');
      expect((await locked.request('/metrics', { headers: { authorization: 'Bearer metrics-key-0123456789' } })).status).toBe(200);
    } finally {
      await locked.close();
    }
  });

  it('the worker publishes queue depth as a CloudWatch Embedded Metric Format line', async () => {
    const { lines: emf, logger: emfLogger } = memoryLogger();
    await publishQueueMetrics(
      {
        counts: async () => ({ waiting: 7, active: 2, completed: 0, failed: 0, workers: 1 }),
        enqueue: async () => {},
        depth: async () => 7,
      },
      emfLogger,
      'ImageService',
    );
    const line = emf[0]!;
    expect(line).toMatchObject({ Queue: 'images', QueueWaiting: 7, QueueActive: 2 });
    const aws = line._aws as {
      Timestamp: number;
      CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string }> }>;
    };
    expect(aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'ImageService', Dimensions: [['Queue']] });
    expect(aws.CloudWatchMetrics[0]!.Metrics.map((metric) => metric.Name)).toEqual(['QueueWaiting', 'QueueActive']);
    expect(Math.abs(aws.Timestamp - Date.now())).toBeLessThan(5000);
  });
});
