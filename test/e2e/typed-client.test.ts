/**
 * The shipped typed client (client/index.ts) against the real server process, with an API key: the whole
 * flow through its helpers and its raw routes, and refusals as typed problems.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImageClient, ProblemError, type ImageClient } from '../../client/index.js';
import { look, noisyJpeg, pixel } from '../helpers/images.js';
import { startServer, stopAll, type ServerProcess } from '../helpers/server-process.js';

const API_KEY = 'typed-client-test-key-0123456789';

describe('typed client over HTTP', () => {
  let server: ServerProcess;
  let images: ImageClient;

  beforeAll(async () => {
    server = await startServer({ API_KEYS: API_KEY });
    expect(server.child.exitCode, server.output()).toBeNull();
    images = createImageClient({ baseUrl: server.baseUrl, apiKey: API_KEY });
  });
  afterAll(() => stopAll([server]));

  async function uploadJpeg(width: number, height: number, filename: string) {
    return images.upload(new Blob([new Uint8Array(await noisyJpeg(width, height))], { type: 'image/jpeg' }), filename);
  }

  it('uploads, processes a pipeline, waits, downloads and lists', async () => {
    const uploaded = await uploadJpeg(400, 300, 'typed.jpg');
    expect(uploaded).toMatchObject({ filename: 'typed.jpg', format: 'jpeg', width: 400, height: 300 });

    const accepted = await images.process(uploaded.file_id, {
      operations: [{ operation: 'resize', width: 200, height: 150, fit: 'fill' }, { operation: 'grayscale' }],
      format: 'png',
    });
    expect(accepted).toMatchObject({ file_id: uploaded.file_id, status: 'queued', cached: false, output: { format: 'png' } });
    expect(accepted.download_url).toBe(`/download/${accepted.processing_id}`);

    // Through a fetch of our own that sees each request: waiting is a long poll, not a busy loop.
    const sent: URL[] = [];
    const watched = createImageClient({
      baseUrl: server.baseUrl,
      apiKey: API_KEY,
      fetch: (request) => (sent.push(new URL(request.url)), fetch(request)),
    });
    const job = await watched.waitFor(accepted.processing_id, { timeoutMs: 20_000 });
    expect(sent.map((url) => url.pathname)).toEqual(sent.map(() => `/status/${accepted.processing_id}`));
    expect(sent.length).toBeLessThanOrEqual(2);
    expect(Number(sent[0]?.searchParams.get('wait'))).toBe(20);
    if (job.status !== 'completed') throw new Error(`the job failed: ${job.error.code}: ${job.error.message}`);
    expect(job.result).toMatchObject({ format: 'png', width: 200, height: 150 });

    // The raw route answers the same, typed.
    const status = await images.GET('/status/{processing_id}', { params: { path: { processing_id: accepted.processing_id } } });
    expect(status.response.status).toBe(200);
    expect(status.data?.result?.sha256).toBe(job.result.sha256);

    const bytes = await images.download(job.processing_id);
    expect(bytes.length).toBe(job.result.size_bytes);
    const image = await look(bytes);
    expect([image.format, image.width, image.height]).toEqual(['png', 200, 150]);
    // Grayscale: every pixel's channels agree; the noise survived (not a flat image).
    const [r, g, b] = await pixel(bytes, 100, 75);
    expect(g).toBe(r);
    expect(b).toBe(r);
    expect(image.stdevs[0]).toBeGreaterThan(5);

    const page = await images.GET('/list');
    expect(page.response.status).toBe(200);
    expect(page.data?.items.map((item) => item.file_id)).toContain(uploaded.file_id);
  });

  it('answers a bad width with a typed 400 problem naming the field, from a helper and from the raw route', async () => {
    const uploaded = await uploadJpeg(40, 30, 'small.jpg');
    const refused = await images
      .process(uploaded.file_id, { operations: [{ operation: 'resize', width: 0 }] })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ProblemError);
    const problem = (refused as ProblemError).problem;
    expect({ status: (refused as ProblemError).status, code: problem.code }).toEqual({ status: 400, code: 'invalid_request' });
    expect(problem.detail).toBe('width must be an integer from 1 to 8192, got 0');
    expect(problem.errors?.map((e) => e.path)).toEqual(['operations.0.width']);

    const raw = await images.POST('/process/{file_id}', {
      params: { path: { file_id: uploaded.file_id } },
      body: { operations: [{ operation: 'resize', width: 0 }] },
    });
    expect(raw.data).toBeUndefined();
    expect(raw.error).toMatchObject({ status: 400, code: 'invalid_request', type: '/problems/invalid_request' });
    expect(raw.error?.request_id).toBe(raw.response.headers.get('x-request-id'));
  });

  it('rejects waitFor with a TimeoutError when the job is still at work', async () => {
    // A slow job (a wide blur of a large image) and no time to wait for it: one poll, ?wait=0.
    const uploaded = await uploadJpeg(1000, 1000, 'large.jpg');
    const accepted = await images.process(uploaded.file_id, { operations: [{ operation: 'blur', intensity: 50 }] });
    const late = await images.waitFor(accepted.processing_id, { timeoutMs: 0 }).catch((error: unknown) => error);
    expect(late).toMatchObject({ name: 'TimeoutError', message: expect.stringMatching(/still (queued|processing) after 0 ms/) });
    expect((await images.waitFor(accepted.processing_id, { timeoutMs: 20_000 })).status).toBe('completed');
  });

  it('throws the 401 and 404 problems as ProblemError', async () => {
    const anonymous = createImageClient({ baseUrl: server.baseUrl });
    const unauthorized = await anonymous
      .upload(new Blob([new Uint8Array(await noisyJpeg(8, 8))]), 'a.jpg')
      .catch((error: unknown) => error);
    expect(unauthorized).toMatchObject({ name: 'ProblemError', status: 401, code: 'unauthorized' });

    const unknown = await images.download(crypto.randomUUID()).catch((error: unknown) => error);
    expect(unknown).toMatchObject({ name: 'ProblemError', status: 404, code: 'job_not_found' });
  });
});
