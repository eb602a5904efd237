/**
 * The embedded default's own promises: state survives a restart, unfinished jobs finish after one, and
 * no more than WORKER_CONCURRENCY jobs run at once.
 */
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedQueue } from '../../src/adapters/embedded-queue.js';
import { download, submit, upload, waitForJob } from '../helpers/client.js';
import { embeddedHarness } from '../helpers/harness.js';
import { look, noisyJpeg } from '../helpers/images.js';
import { jobRecord } from '../helpers/records.js';

describe('embedded default', () => {
  it('keeps uploads, jobs and results across a restart', async () => {
    const first = await embeddedHarness();
    const send = first.request;
    const file = await upload(send, await noisyJpeg(100, 80), 'kept.jpg');
    const accepted = await submit(send, file.file_id, 'operation=resize&width=50');
    await waitForJob(send, accepted.processing_id);

    const second = await first.restart();
    const list = (await (await second.request('/list')).json()) as { items: Array<{ file_id: string }>; total: number };
    expect(list.items.map((item) => item.file_id)).toEqual([file.file_id]);
    const job = await waitForJob(second.request, accepted.processing_id);
    expect(job.status).toBe('completed');
    expect((await look((await download(second.request, accepted.processing_id)).bytes)).width).toBe(50);
    // The cache index is rebuilt from the records too.
    expect((await submit(second.request, file.file_id, 'operation=resize&width=50')).cached).toBe(true);
    await second.close();
  });

  it('finishes after a restart a job that was queued when the process stopped', async () => {
    const first = await embeddedHarness();
    const file = await upload(first.request, await noisyJpeg(60, 40), 'later.jpg');
    const processingId = '0d9a5f8e-8c77-4c3b-9d2e-6a1f3b5c7e90';
    // A job recorded as queued whose run never happened (as if the process died right after accepting it).
    await first.service.deps.jobs.putJob(
      jobRecord(file.file_id, { processing_id: processingId, status: 'processing', cache_key: 'restart-test' }),
    );
    // A half-written upload this instance left when it crashed, and one another process is still writing.
    const staging = join(first.dir, 'uploads', '.staging');
    const own = (await readdir(staging)).find((name) => name.startsWith('test-'))!;
    await writeFile(join(staging, own, 'crashed'), 'half');
    // Last written ten minutes ago: a restart takes its own leftovers once they are idle (a minute).
    const before = new Date(Date.now() - 600_000);
    await utimes(join(staging, own, 'crashed'), before, before);
    await mkdir(join(staging, 'another-host-7'), { recursive: true });
    await writeFile(join(staging, 'another-host-7', 'arriving'), 'half');

    const second = await first.restart();
    const job = await waitForJob(second.request, processingId);
    expect(job).toMatchObject({ status: 'completed', result: { format: 'png', width: 60, height: 40 } });
    // Only its own leftovers go at start; another process's upload in flight is left alone.
    expect(await readdir(join(staging, own))).toEqual([]);
    expect(await readdir(join(staging, 'another-host-7'))).toEqual(['arriving']);
    await second.close();
  });

  it('runs at most `concurrency` jobs at once, first in first out', async () => {
    let running = 0;
    let peak = 0;
    const order: string[] = [];
    const queue = new EmbeddedQueue(async (id) => {
      running += 1;
      peak = Math.max(peak, running);
      order.push(id);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running -= 1;
      return id.endsWith('f') ? 'failed' : 'completed';
    }, 2);
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const id of ids) await queue.enqueue(id);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await queue.counts()).toMatchObject({ active: 2, waiting: 4 });
    await queue.idle();
    expect(peak).toBe(2);
    expect(order).toEqual(ids);
    expect(await queue.counts()).toEqual({ waiting: 0, active: 0, completed: 5, failed: 1, workers: 1 });
  });

  it('answers /status while a heavy job is running (the event loop stays free)', async () => {
    const h = await embeddedHarness({ WORKER_CONCURRENCY: '1' });
    const file = await upload(h.request, await noisyJpeg(1600, 1200), 'heavy.jpg');
    const accepted = await submit(h.request, file.file_id, {
      operations: [
        { operation: 'blur', intensity: 40 },
        { operation: 'sharpen', intensity: 5 },
        { operation: 'blur', intensity: 30 },
      ],
      format: 'png',
    });
    let sawProcessing = false;
    for (let i = 0; i < 500 && !sawProcessing; i++) {
      const job = (await (await h.request(`/status/${accepted.processing_id}`)).json()) as { status: string };
      if (job.status === 'completed') break;
      sawProcessing = job.status === 'processing';
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(sawProcessing).toBe(true);
    expect((await waitForJob(h.request, accepted.processing_id)).status).toBe('completed');
    await h.close();
  });
});
