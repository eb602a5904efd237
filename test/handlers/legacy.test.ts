/**
 * The original service's client flow over in-memory ports: `POST /upload-image/` → `GET /status/{task_id}`
 * → `GET /download/{file_id}`, and `GET /tasks/`, as its code calls them (trailing slashes included).
 */
import { describe, expect, it } from 'vitest';
import { expectProblem, multipart, submit, upload, waitForJob } from '../helpers/client.js';
import { look, noisyJpeg, solid } from '../helpers/images.js';
import { createApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { memoryApp } from '../helpers/memory-app.js';

type Send = (path: string, init?: RequestInit) => Promise<Response>;

interface UploadImageAnswer {
  task_id: string;
  processing_id: string;
  file_id: string;
  status: string;
  status_url: string;
  download_url: string;
  upload: { file_id: string; filename: string; width: number; height: number };
}

async function uploadImage(send: Send, bytes: Uint8Array, filename: string, headers?: Record<string, string>) {
  const response = await send('/upload-image/', { method: 'POST', body: multipart(bytes, filename), headers });
  const body = (await response.json()) as UploadImageAnswer;
  expect(response.status, JSON.stringify(body)).toBe(200);
  return { response, body };
}

interface TaskPage {
  items: Array<{ task_id: string; processing_id: string; file_id: string; status: string }>;
  total: number;
  next_cursor: string | null;
}

describe("the original service's routes", () => {
  it('upload-image → status by task_id → download by file_id: the result fits inside 800×800 with its aspect kept', async () => {
    const m = memoryApp();
    const { body } = await uploadImage(m.send, await noisyJpeg(1600, 900), 'wide.jpg');
    expect(body.task_id).toBe(body.processing_id);
    expect(body.upload).toMatchObject({ file_id: body.file_id, filename: 'wide.jpg', width: 1600, height: 900 });
    expect(['queued', 'completed']).toContain(body.status);
    expect([body.status_url, body.download_url]).toEqual([`/status/${body.task_id}`, `/download/${body.task_id}`]);

    const job = await waitForJob((path) => m.send(`${path}/`), body.task_id);
    expect(job).toMatchObject({
      status: 'completed',
      task_id: body.task_id,
      file_id: body.file_id,
      result: { format: 'jpeg', width: 800, height: 450 },
    });
    expect(job.operations).toEqual([{ operation: 'resize', width: 800, height: 800, fit: 'inside', without_enlargement: true }]);

    const byFile = await m.send(`/download/${body.file_id}`);
    expect([byFile.status, byFile.headers.get('content-type')]).toEqual([200, 'image/jpeg']);
    const bytes = new Uint8Array(await byFile.arrayBuffer());
    const image = await look(bytes);
    expect([image.format, image.width, image.height]).toEqual(['jpeg', 800, 450]);
    // The same result as by processing_id, with the same name and ETag.
    const byTask = await m.send(`/download/${body.task_id}/`);
    expect(new Uint8Array(await byTask.arrayBuffer())).toEqual(bytes);
    for (const header of ['etag', 'content-disposition']) expect(byFile.headers.get(header)).toBe(byTask.headers.get(header));
    expect(byFile.headers.get('content-disposition')).toBe(`attachment; filename="wide-${body.task_id}.jpg"`);
    expect((await m.send(`/download/${body.file_id}`, { method: 'HEAD' })).status).toBe(200);

    const tasks = (await (await m.send('/tasks/')).json()) as TaskPage;
    expect(tasks.items[0]).toMatchObject({
      task_id: body.task_id,
      processing_id: body.task_id,
      file_id: body.file_id,
      status: 'completed',
    });
  });

  it('never enlarges: a tall image smaller than the box keeps its size, one taller than it is fitted by its height', async () => {
    const m = memoryApp();
    const small = (await uploadImage(m.send, await solid(300, 200, { r: 10, g: 200, b: 30 }), 'small.png')).body;
    const tall = (await uploadImage(m.send, await noisyJpeg(500, 1000), 'tall.jpg')).body;
    expect((await waitForJob(m.send, small.task_id)).result).toMatchObject({ format: 'png', width: 300, height: 200 });
    expect((await waitForJob(m.send, tall.task_id)).result).toMatchObject({ width: 400, height: 800 });
    const image = await look(new Uint8Array(await (await m.send(`/download/${tall.file_id}`)).arrayBuffer()));
    expect([image.width, image.height]).toEqual([400, 800]);
  });

  it('is the same job as POST /upload + POST /process with that resize: either form is answered from its cache', async () => {
    const m = memoryApp();
    const photo = await noisyJpeg(900, 300);
    await waitForJob(m.send, (await uploadImage(m.send, photo, 'first.jpg')).body.task_id);
    const file = await upload(m.send, photo, 'again.jpg');
    const query = await submit(m.send, file.file_id, 'operation=resize&width=800&height=800&fit=inside&without_enlargement=true');
    const json = await submit(m.send, file.file_id, {
      operations: [{ operation: 'resize', width: 800, height: 800, fit: 'inside', without_enlargement: true }],
    });
    expect([query.cached, json.cached]).toEqual([true, true]);
  });

  it('refuses what POST /upload refuses, with the same problems', async () => {
    const m = memoryApp({ maxFileSize: 50_000 });
    await expectProblem(
      await m.send('/upload-image/', { method: 'POST', body: multipart(new TextEncoder().encode('hello'), 'notes.txt') }),
      415,
      'unsupported_extension',
    );
    await expectProblem(
      await m.send('/upload-image/', { method: 'POST', body: multipart(new TextEncoder().encode('<html>'), 'page.jpg') }),
      415,
      'unsupported_format',
    );
    await expectProblem(
      await m.send('/upload-image/', { method: 'POST', body: multipart(await noisyJpeg(640, 480), 'big.jpg') }),
      413,
      'file_too_large',
    );
    const empty = new FormData();
    empty.append('other', 'x');
    expect((await m.send('/upload-image', { method: 'POST', body: empty })).status).toBe(400);
    // Nothing was stored, nothing was queued.
    expect(((await (await m.send('/list')).json()) as { total: number }).total).toBe(0);
    expect(((await (await m.send('/tasks')).json()) as TaskPage).total).toBe(0);
  });

  it('with Redis unreachable, is refused at once with 503 redis_unavailable, as POST /upload is', async () => {
    const { deps } = memoryApp();
    const redis = { ready: () => false, ping: async () => ({ status: 'disconnected' as const }) };
    const app = createApp({ ...deps, redis }, { logger: silentLogger, metrics: createMetrics() });
    for (const path of ['/upload-image/', '/upload-image', '/upload/']) {
      const response = await app.fetch(
        new Request(`http://handlers.test${path}`, { method: 'POST', body: multipart(await noisyJpeg(40, 30), 'a.jpg') }),
      );
      await expectProblem(response, 503, 'redis_unavailable');
      expect(response.headers.get('retry-after'), path).toMatch(/^\d+$/);
    }
  });

  it('an Idempotency-Key covers upload and job: the retry gets the same task, and nothing twice', async () => {
    const m = memoryApp();
    const photo = await noisyJpeg(120, 90);
    const first = await uploadImage(m.send, photo, 'once.jpg', { 'idempotency-key': 'legacy-1' });
    const again = await uploadImage(m.send, photo, 'once.jpg', { 'idempotency-key': 'legacy-1' });
    expect(again.response.headers.get('idempotent-replayed')).toBe('true');
    expect([again.body.task_id, again.body.file_id]).toEqual([first.body.task_id, first.body.file_id]);
    await waitForJob(m.send, first.body.task_id);
    expect(((await (await m.send('/tasks')).json()) as TaskPage).total).toBe(1);
    expect(((await (await m.send('/list')).json()) as { total: number }).total).toBe(1);
  });

  it('GET /download/{file_id} of any other upload is a 404 that says results go by processing_id', async () => {
    const m = memoryApp();
    const file = await upload(m.send, await noisyJpeg(64, 48), 'plain.jpg');
    const plain = await expectProblem(await m.send(`/download/${file.file_id}`), 404, 'job_not_found');
    expect(plain.detail).toContain(`${file.file_id} is the file_id of an upload, not a processing_id`);
    expect(plain.detail).toContain(`POST /process/${file.file_id}`);
    const unknown = await expectProblem(await m.send('/download/3f2b7c9e-8a41-4d0c-9c55-2b1e6f0a7d13'), 404, 'job_not_found');
    expect(unknown.detail).toMatch(/results are downloaded by the processing_id/);
    // A job of that upload made with POST /process is found by its processing_id, as ever.
    const accepted = await submit(m.send, file.file_id, 'operation=grayscale');
    await waitForJob(m.send, accepted.processing_id);
    expect((await m.send(`/download/${accepted.processing_id}`)).status).toBe(200);
    expect((await m.send(`/download/${file.file_id}`)).status).toBe(404);
  });

  it('a legacy download before the job is done is the 409 of /download/{processing_id}', async () => {
    const m = memoryApp({ concurrency: 0 });
    const { body } = await uploadImage(m.send, await noisyJpeg(90, 90), 'slow.jpg');
    const early = await expectProblem(await m.send(`/download/${body.file_id}`), 409, 'job_not_completed');
    expect(early).toMatchObject({ job_status: 'queued' });
    expect(early.detail).toContain(`/status/${body.task_id}`);
  });
});

describe('GET /tasks', () => {
  it('lists every job (whichever route made it), newest first, a page at a time', async () => {
    const m = memoryApp();
    const file = await upload(m.send, await noisyJpeg(40, 30), 'a.jpg');
    const made: string[] = [];
    for (const operation of ['grayscale', 'sepia', 'blur']) {
      made.push((await submit(m.send, file.file_id, `operation=${operation}`)).processing_id);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    made.push((await uploadImage(m.send, await noisyJpeg(40, 30), 'b.jpg')).body.task_id);
    const newestFirst = made.toReversed();

    const first = (await (await m.send('/tasks?limit=3')).json()) as TaskPage;
    expect(first.total).toBe(4);
    expect(first.items.map((item) => item.processing_id)).toEqual(newestFirst.slice(0, 3));
    expect(first.items.every((item) => item.task_id === item.processing_id)).toBe(true);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = (await (await m.send(`/tasks/?limit=3&cursor=${first.next_cursor}`)).json()) as TaskPage;
    expect([second.items.map((item) => item.processing_id), second.next_cursor]).toEqual([newestFirst.slice(3), null]);
  });

  it('says which limit and cursor it takes', async () => {
    const m = memoryApp();
    for (const limit of ['0', '101', 'ten']) {
      const body = await expectProblem(await m.send(`/tasks?limit=${limit}`), 400, 'invalid_limit');
      expect(body.detail).toMatch(/limit must be an integer from 1 to 100/);
    }
    const body = await expectProblem(await m.send('/tasks?cursor=nonsense'), 400, 'invalid_cursor');
    expect(body.detail).toMatch(/\/tasks page/);
  });
});

describe('the document', () => {
  it('declares the legacy routes, upload-image deprecated and pointing to the new routes, with no duplicate paths', async () => {
    const m = memoryApp();
    const doc = (await (await m.send('/openapi.json')).json()) as {
      paths: Record<string, Record<string, { deprecated?: boolean; tags?: string[]; description?: string }>>;
      components: { schemas: Record<string, { properties: Record<string, unknown>; required?: string[] }> };
    };
    const uploadImage = doc.paths['/upload-image']!.post!;
    expect([uploadImage.deprecated, uploadImage.tags]).toEqual([true, ['legacy']]);
    expect(uploadImage.description).toMatch(/POST \/upload`.*POST \/process\/\{file_id\}/);
    expect(doc.paths['/tasks']!.get!.tags).toContain('legacy');
    expect(Object.keys(doc.paths).filter((path) => path.length > 1 && path.endsWith('/'))).toEqual([]);
    expect(doc.components.schemas.JobStatus!.required).toContain('task_id');
  });
});
