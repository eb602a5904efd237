/**
 * @module
 * The HTTP contract (../shared/CONTRACT.md) as a suite over any harness: the embedded default and Redis
 * mode, over the disk, memory and S3 stores, all run the same suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Harness, HarnessFactory } from '../helpers/harness.js';
import { checkedHarness } from '../helpers/openapi-check.js';
import { download, expectProblem, multipart, processToBytes, submit, upload, waitForJob } from '../helpers/client.js';
import { animated, bmp24, halves, look, noisyJpeg, pixel, rotatedJpeg, solid } from '../helpers/images.js';
import { jobRecord } from '../helpers/records.js';
import { resultName } from '../../src/domain/jobs.js';
import type { StoredFile } from '../../src/ports.js';

/** True when there was a file; its stream is released either way. */
const release = async (file: StoredFile | undefined) => {
  await file?.body.cancel();
  return file !== undefined;
};

const UNKNOWN_ID = '3f2b7c9e-8a41-4d0c-9c55-2b1e6f0a7d13';

export function contractSuite(name: string, openHarness: HarnessFactory): void {
  // Every answer the suite receives is held to the OpenAPI document the app serves.
  const makeHarness = checkedHarness(openHarness);
  describe(`contract: ${name}`, () => {
    let h: Harness;
    let photo: Buffer;
    const send = (path: string, init?: RequestInit) => h.request(path, init);

    beforeAll(async () => {
      h = await makeHarness();
      photo = await noisyJpeg(320, 240);
    });
    afterAll(async () => h.close());

    describe('service endpoints', () => {
      it('GET / is a cheap liveness answer with a request id', async () => {
        const response = await send('/');
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({ service: 'image-service', status: 'ok', docs: '/docs', openapi: '/openapi.json' });
        expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      });

      it('honours a sane incoming x-request-id and replaces an insane one', async () => {
        const sane = await send('/', { headers: { 'x-request-id': 'abc-123_trace=1' } });
        expect(sane.headers.get('x-request-id')).toBe('abc-123_trace=1');
        const insane = await send('/', { headers: { 'x-request-id': 'a b<script>' } });
        expect(insane.headers.get('x-request-id')).not.toContain('<');
      });

      it('GET /health reports every dependency', async () => {
        const response = await send('/health');
        expect(response.status).toBe(200);
        const body = (await response.json()) as {
          status: string;
          uptime_seconds: number;
          services: { redis: { status: string }; queue: Record<string, number> };
        };
        expect(body).toMatchObject({ status: 'healthy', services: { storage: { status: 'ok' } } });
        expect(body.services.redis.status).toBe(h.service.mode === 'redis' ? 'connected' : 'not_configured');
        expect(Object.keys(body.services.queue).sort()).toEqual(['active', 'completed', 'failed', 'waiting', 'workers']);
        expect(body.services.queue.workers).toBeGreaterThan(0);
        expect(typeof body.uptime_seconds).toBe('number');
      });

      it('serves an OpenAPI 3.1 document generated from the routes', async () => {
        const response = await send('/openapi.json');
        const doc = (await response.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
        expect(doc.openapi).toBe('3.1.0');
        expect(Object.keys(doc.paths).sort()).toEqual([
          '/',
          '/docs',
          '/docs/scalar.js',
          '/download/{processing_id}',
          '/favicon.ico',
          '/health',
          '/list',
          '/metrics',
          '/openapi.json',
          '/process/{file_id}',
          '/status/{processing_id}',
          '/tasks',
          '/upload',
          '/upload-image',
        ]);
        expect(Object.keys(doc.paths['/upload']!)).toEqual(['post']);
      });

      it('serves /docs with its script from this app, not a CDN', async () => {
        const page = await (await send('/docs')).text();
        expect(page).toMatch(/src="\/docs\/scalar\.[0-9a-f]{16}\.js"/);
        expect(page).not.toMatch(/cdn\.jsdelivr|unpkg|fonts\.scalar/);
        const script = await send('/docs/scalar.js');
        expect(script.status).toBe(200);
        expect(script.headers.get('content-type')).toMatch(/javascript/);
        expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
      });

      it('answers an unknown route with a problem', async () => {
        await expectProblem(await send('/nope'), 404, 'not_found');
      });
    });

    describe("the seed's client flow", () => {
      it('upload → process resize 200×150 → status completed → download a 200×150 image', async () => {
        const file = await upload(send, photo, 'holiday photo.jpg');
        expect(file).toMatchObject({
          filename: 'holiday photo.jpg',
          format: 'jpeg',
          width: 320,
          height: 240,
          size_bytes: photo.length,
          content_type: 'image/jpeg',
        });
        expect(file.file_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        const { createHash } = await import('node:crypto');
        expect(file.sha256).toBe(createHash('sha256').update(photo).digest('hex'));

        const accepted = await submit(send, file.file_id, 'operation=resize&width=200&height=150');
        expect(accepted).toMatchObject({ status: 'queued', cached: false, output: { format: 'jpeg', quality: 80 } });
        expect(accepted).toMatchObject({
          status_url: `/status/${accepted.processing_id}`,
          download_url: `/download/${accepted.processing_id}`,
        });

        const job = await waitForJob(send, accepted.processing_id);
        expect(job).toMatchObject({ status: 'completed', result: { format: 'jpeg', width: 200, height: 150 } });
        expect(job.started_at).toBeDefined();
        expect(job.completed_at).toBeDefined();

        const { response, bytes } = await download(send, accepted.processing_id);
        const image = await look(bytes);
        expect([image.format, image.width, image.height]).toEqual(['jpeg', 200, 150]);
        expect(response.headers.get('content-type')).toBe('image/jpeg');
        expect(response.headers.get('content-length')).toBe(String(bytes.length));
        expect(response.headers.get('etag')).toBe(`"${job.result!.sha256}"`);
        expect(response.headers.get('content-disposition')).toBe(`attachment; filename="holiday photo-${accepted.processing_id}.jpg"`);

        const again = await send(`/download/${accepted.processing_id}`, { headers: { 'if-none-match': `"${job.result!.sha256}"` } });
        expect(again.status).toBe(304);
        const head = await send(`/download/${accepted.processing_id}`, { method: 'HEAD' });
        expect(head.status).toBe(200);
        expect(head.headers.get('content-length')).toBe(String(bytes.length));
        expect((await head.arrayBuffer()).byteLength).toBe(0);
      });

      it('a repeated identical request is answered from the existing result at once', async () => {
        const file = await upload(send, photo, 'again.jpg');
        const first = await submit(send, file.file_id, 'operation=blur&intensity=3');
        await waitForJob(send, first.processing_id);
        const second = await submit(send, file.file_id, 'operation=blur&intensity=3');
        expect(second).toMatchObject({ status: 'completed', cached: true });
        expect(second.processing_id).not.toBe(first.processing_id);
        const a = await download(send, first.processing_id);
        const b = await download(send, second.processing_id);
        expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(true);
        // The same content uploaded again under another name hits the same cache entry.
        const twin = await upload(send, photo, 'twin.jpg');
        expect((await submit(send, twin.file_id, { operations: [{ operation: 'blur', intensity: 3 }] })).cached).toBe(true);
        // A different output is a different result; quality only counts where the format uses it.
        const png = await submit(send, file.file_id, 'operation=blur&intensity=3&format=png&quality=50');
        expect(png.cached).toBe(false);
        await waitForJob(send, png.processing_id);
        expect((await submit(send, file.file_id, 'operation=blur&intensity=3&format=png&quality=90')).cached).toBe(true);
        expect((await submit(send, file.file_id, 'operation=blur&intensity=3&quality=90')).cached).toBe(false);
      });

      it('lists uploads newest first, a page at a time', async () => {
        const ids: string[] = [];
        for (const n of [1, 2, 3]) ids.push((await upload(send, await solid(8, 8, { r: n, g: 0, b: 0 }), `list-${n}.png`)).file_id);
        const first = (await (await send('/list?limit=2')).json()) as {
          items: Array<{ file_id: string }>;
          total: number;
          next_cursor: string;
        };
        expect(first.items.map((item) => item.file_id)).toEqual([ids[2], ids[1]]);
        expect(first.total).toBeGreaterThanOrEqual(3);
        expect(first.items[0]).toMatchObject({ filename: 'list-3.png', format: 'png', width: 8, height: 8 });
        const second = (await (await send(`/list?limit=2&cursor=${first.next_cursor}`)).json()) as { items: Array<{ file_id: string }> };
        expect(second.items[0]!.file_id).toBe(ids[0]);
        let seen = 0;
        let cursor: string | null = null;
        do {
          const page = (await (await send(`/list?limit=1${cursor ? `&cursor=${cursor}` : ''}`)).json()) as {
            items: unknown[];
            next_cursor: string | null;
            total: number;
          };
          seen += page.items.length;
          cursor = page.next_cursor;
          if (!cursor) expect(seen).toBe(page.total);
        } while (cursor);
      });

      it('refuses a bad limit or cursor', async () => {
        for (const limit of ['0', '101', 'abc', '-1', '1.5']) await expectProblem(await send(`/list?limit=${limit}`), 400, 'invalid_limit');
        await expectProblem(await send('/list?cursor=garbage!'), 400, 'invalid_cursor');
      });
    });

    describe('uploads', () => {
      const post = (form: FormData) => send('/upload', { method: 'POST', body: form });

      it('decides the format from the bytes: a PNG named .jpg is a png', async () => {
        const file = await upload(send, await solid(10, 10, { r: 1, g: 2, b: 3 }), 'really-a-png.jpg');
        expect(file).toMatchObject({ format: 'png', content_type: 'image/png' });
      });

      it('reads every input format, BMP included', async () => {
        const inputs: Array<[string, Uint8Array, string]> = [
          ['a.jpeg', await solid(12, 10, { r: 9, g: 9, b: 9 }, 'jpeg'), 'jpeg'],
          ['a.png', await solid(12, 10, { r: 9, g: 9, b: 9, alpha: 0.5 }), 'png'],
          ['a.gif', await animated('gif', 2, 12, 10), 'gif'],
          ['a.tif', await solid(12, 10, { r: 9, g: 9, b: 9 }, 'tiff'), 'tiff'],
          ['a.webp', await solid(12, 10, { r: 9, g: 9, b: 9 }, 'webp'), 'webp'],
          ['a.BMP', bmp24(12, 10, [9, 9, 9]), 'bmp'],
        ];
        for (const [name, bytes, format] of inputs)
          expect(await upload(send, bytes, name)).toMatchObject({ format, width: 12, height: 10 });
      });

      it('reports width and height as displayed, after EXIF orientation', async () => {
        expect(await upload(send, await rotatedJpeg(30, 20), 'rotated.jpg')).toMatchObject({ width: 20, height: 30 });
      });

      it('stores the file name for display only, sanitised', async () => {
        const file = await upload(send, await solid(4, 4, { r: 0, g: 0, b: 0 }), '../../etc/pa\tss\twd.png');
        expect(file.filename).toBe('passwd.png');
      });

      it('refuses a missing file part, an empty file, two files, and a body that is not multipart', async () => {
        const noFile = new FormData();
        noFile.append('other', 'text');
        await expectProblem(await post(noFile), 400, 'missing_file');
        await expectProblem(await post(multipart(new Uint8Array(0), 'empty.png')), 400, 'empty_file');
        const two = multipart(photo, 'one.jpg');
        two.append('file', new Blob([new Uint8Array(photo)]), 'two.jpg');
        await expectProblem(await post(two), 400, 'too_many_files');
        await expectProblem(
          await send('/upload', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
          400,
          'not_multipart',
        );
        await expectProblem(
          await send('/upload', { method: 'POST', headers: { 'content-type': 'multipart/form-data' }, body: 'x' }),
          400,
          'malformed_multipart',
        );
      });

      it('refuses an extension outside ALLOWED_EXTENSIONS (415), even for fine bytes', async () => {
        const body = await expectProblem(await post(multipart(photo, 'photo.exe')), 415, 'unsupported_extension');
        expect(body.detail).toContain('.jpg');
        await expectProblem(await post(multipart(photo, 'no-extension')), 415, 'unsupported_extension');
      });

      it('refuses bytes that are not an image of an allowed format (415)', async () => {
        await expectProblem(
          await post(multipart(new TextEncoder().encode('<html><body>hi</body></html>'), 'page.jpg')),
          415,
          'unsupported_format',
        );
        const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
        await expectProblem(await post(multipart(svg, 'vector.png')), 415, 'unsupported_format');
      });
    });

    describe('processing requests', () => {
      let fileId: string;
      beforeAll(async () => {
        fileId = (await upload(send, photo, 'params.jpg')).file_id;
      });
      const processQuery = (query: string) => send(`/process/${fileId}?${query}`, { method: 'POST' });
      const processJson = (body: unknown) =>
        send(`/process/${fileId}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        });

      it('names the field and the allowed range', async () => {
        const body = await expectProblem(await processQuery('operation=resize&width=0&height=150'), 400, 'invalid_request');
        expect(body.detail).toBe('width must be an integer from 1 to 8192, got 0');
        expect(body.errors).toEqual([{ path: 'width', message: 'width must be an integer from 1 to 8192, got 0' }]);
        const json = await expectProblem(
          await processJson({
            operations: [
              { operation: 'resize', width: 10 },
              { operation: 'blur', intensity: 500 },
            ],
          }),
          400,
          'invalid_request',
        );
        expect(json.errors).toEqual([{ path: 'operations.1.intensity', message: 'intensity must be a number from 0.3 to 100, got 500' }]);
      });

      it('refuses unknown operations, formats and parameters, and bad pipelines', async () => {
        const cases: Array<[() => Promise<Response>, RegExp]> = [
          [() => processQuery('operation=explode'), /operation must be one of resize, blur/],
          [() => processQuery('width=10'), /operation is required/],
          [() => processQuery('operation=resize'), /resize needs width or height/],
          [() => processQuery('operation=resize&width=abc'), /width must be an integer from 1 to 8192, got "abc"/],
          [() => processQuery('operation=blur&intensity=NaN'), /intensity must be a number/],
          [() => processQuery('operation=blur&intensity=Infinity'), /intensity must be a number/],
          [() => processQuery('operation=blur&width=10'), /width is not a parameter of blur/],
          [() => processQuery('operation=blur&format=bmp'), /format must be one of jpeg, png, webp, avif, gif, tiff/],
          [() => processQuery('operation=blur&quality=0'), /quality must be an integer from 1 to 100/],
          [() => processQuery('operation=resize&width=10&fit=squash'), /fit must be one of cover, contain, fill, inside, outside/],
          [() => processJson({ operations: [] }), /1 to 10 operations, got none/],
          [() => processJson({ operations: Array.from({ length: 11 }, () => ({ operation: 'grayscale' })) }), /1 to 10 operations, got 11/],
          [() => processJson({}), /operations/],
          [() => processJson([1, 2]), /JSON object/],
        ];
        for (const [call, message] of cases) {
          const body = await expectProblem(await call(), 400, 'invalid_request');
          expect(body.detail).toMatch(message);
        }
      });

      it('refuses malformed and oversized JSON', async () => {
        await expectProblem(await processJson('{"operations": ['), 400, 'malformed_json');
        const huge = JSON.stringify({ operations: [{ operation: 'grayscale' }], pad: 'x'.repeat(100_000) });
        await expectProblem(await processJson(huge), 413, 'body_too_large');
      });

      it('tells a malformed id (400) from an unknown one (404)', async () => {
        await expectProblem(await send('/process/not-a-uuid?operation=grayscale', { method: 'POST' }), 400, 'invalid_request');
        await expectProblem(await send(`/process/${UNKNOWN_ID}?operation=grayscale`, { method: 'POST' }), 404, 'file_not_found');
        await expectProblem(await send('/status/..%2F..%2Fetc', { method: 'GET' }), 400, 'invalid_request');
        await expectProblem(await send(`/status/${UNKNOWN_ID}`), 404, 'job_not_found');
        await expectProblem(await send(`/download/${UNKNOWN_ID}`), 404, 'job_not_found');
      });
    });

    describe('Idempotency-Key', () => {
      it('replays the first answer to a retried upload, and refuses the key for another upload (422)', async () => {
        const key = `upload-${Math.random()}`;
        const headers = { 'idempotency-key': key };
        const before = ((await (await send('/list?limit=1')).json()) as { total: number }).total;
        const first = await send('/upload', { method: 'POST', headers, body: multipart(photo, 'idem.jpg') });
        const second = await send('/upload', { method: 'POST', headers, body: multipart(photo, 'idem.jpg') });
        expect([first.status, second.status]).toEqual([200, 200]);
        expect(second.headers.get('idempotent-replayed')).toBe('true');
        expect(((await second.json()) as { file_id: string }).file_id).toBe(((await first.json()) as { file_id: string }).file_id);
        expect(((await (await send('/list?limit=1')).json()) as { total: number }).total).toBe(before + 1);
        const other = await send('/upload', {
          method: 'POST',
          headers,
          body: multipart(await solid(5, 5, { r: 1, g: 1, b: 1 }), 'other.png'),
        });
        await expectProblem(other, 422, 'idempotency_key_reused');
      });

      it('replays a retried process request with the same processing_id', async () => {
        const file = await upload(send, photo, 'idem-process.jpg');
        const headers = { 'idempotency-key': `process-${Math.random()}` };
        const path = `/process/${file.file_id}?operation=sepia&intensity=0.5`;
        const first = (await (await send(path, { method: 'POST', headers })).json()) as { processing_id: string };
        const retry = await send(path, { method: 'POST', headers });
        expect(retry.status).toBe(200);
        expect(((await retry.json()) as { processing_id: string }).processing_id).toBe(first.processing_id);
        await expectProblem(
          await send(`/process/${file.file_id}?operation=sepia&intensity=0.6`, { method: 'POST', headers }),
          422,
          'idempotency_key_reused',
        );
        await expectProblem(
          await send(path, { method: 'POST', headers: { 'idempotency-key': 'x'.repeat(300) } }),
          400,
          'invalid_idempotency_key',
        );
      });
    });

    describe('retention', () => {
      it('a sweep removes uploads, results and their records older than RETENTION_SECONDS', async () => {
        const short = await makeHarness({ RETENTION_SECONDS: '1' });
        try {
          const file = await upload(short.request, photo, 'old.jpg');
          const accepted = await submit(short.request, file.file_id, 'operation=grayscale');
          await waitForJob(short.request, accepted.processing_id);
          // Checked through the store itself, so the same test holds for disk, memory and S3.
          const store = short.service.deps.store;
          const job = (await short.service.deps.jobs.getJob(accepted.processing_id))!;
          expect(await store.openUpload(file.file_id).then(release)).toBe(true);
          expect(await store.hasResult(resultName(job))).toBe(true);
          // The periodic sweep (every second here) or an explicit one removes them once they are older than 1 s.
          // A periodic sweep may still be deleting what the explicit one found gone, and the job, created after
          // the upload, passes the cutoff a moment later (S3 ages results in whole seconds): wait for all four.
          const swept = async () =>
            ((await (await short.request('/list')).json()) as { total: number }).total === 0 &&
            !(await store.hasResult(resultName(job))) &&
            !(await store.openUpload(file.file_id).then(release)) &&
            (await short.request(`/status/${accepted.processing_id}`)).status === 404;
          for (let i = 0; i < 60 && !(await swept()); i++) {
            await new Promise((resolve) => setTimeout(resolve, 100));
            await short.service.sweep();
          }
          expect(((await (await short.request('/list')).json()) as { total: number }).total).toBe(0);
          expect(await store.openUpload(file.file_id).then(release)).toBe(false);
          expect(await store.hasResult(resultName(job))).toBe(false);
          await expectProblem(await short.request(`/status/${accepted.processing_id}`), 404, 'job_not_found');
          await expectProblem(
            await short.request(`/process/${file.file_id}?operation=grayscale`, { method: 'POST' }),
            404,
            'file_not_found',
          );
        } finally {
          await short.close();
        }
      });
    });

    describe('the result', () => {
      it('applies operations in the order given (contrast 0 then brightness 2 differs from the reverse)', async () => {
        const base = await solid(16, 16, { r: 40, g: 90, b: 160 });
        const whiteish = await processToBytes(send, base, 'order.png', {
          operations: [
            { operation: 'contrast', intensity: 0 },
            { operation: 'brightness', intensity: 2 },
          ],
        });
        const grey = await processToBytes(send, base, 'order.png', {
          operations: [
            { operation: 'brightness', intensity: 2 },
            { operation: 'contrast', intensity: 0 },
          ],
        });
        for (const mean of (await look(whiteish.bytes)).means.slice(0, 3)) expect(mean).toBeGreaterThan(230);
        for (const mean of (await look(grey.bytes)).means.slice(0, 3)) expect(Math.abs(mean - 128)).toBeLessThan(3);
      });

      it('writes every output format', async () => {
        for (const format of ['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff']) {
          const { bytes, job } = await processToBytes(send, photo, 'formats.jpg', `operation=resize&width=64&format=${format}&quality=60`);
          const image = await look(bytes);
          expect([image.format === 'heif' ? 'avif' : image.format, image.width, image.height]).toEqual([format, 64, 48]);
          expect(job.result).toMatchObject({ format, width: 64, height: 48, size_bytes: bytes.length });
        }
      });

      it('turns BMP into PNG by default', async () => {
        const { bytes } = await processToBytes(send, bmp24(20, 10, [200, 30, 10]), 'in.bmp', 'operation=grayscale');
        const image = await look(bytes);
        expect([image.format, image.width, image.height]).toEqual(['png', 20, 10]);
      });

      it('keeps an animation animated when the output can hold it, every frame processed', async () => {
        const gif = await animated('gif', 3, 40, 30);
        const kept = await look((await processToBytes(send, gif, 'anim.gif', 'operation=resize&width=20')).bytes);
        expect([kept.format, kept.pages, kept.width, kept.height]).toEqual(['gif', 3, 20, 15]);
        const webp = await look(
          (
            await processToBytes(send, gif, 'anim.gif', {
              operations: [{ operation: 'grayscale' }, { operation: 'resize', width: 10 }],
              format: 'webp',
            })
          ).bytes,
        );
        expect([webp.format, webp.pages, webp.width, webp.height]).toEqual(['webp', 3, 10, 8]);
        const still = await look((await processToBytes(send, gif, 'anim.gif', 'operation=resize&width=20&format=png')).bytes);
        expect([still.format, still.pages, still.width]).toEqual(['png', 1, 20]);
      });

      it('applies EXIF orientation and strips metadata unless asked to keep it', async () => {
        const rotated = await rotatedJpeg(60, 40);
        const { bytes } = await processToBytes(send, rotated, 'r.jpg', 'operation=resize&width=20');
        const image = await look(bytes);
        expect([image.width, image.height, image.hasExif]).toEqual([20, 30, false]);
        const kept = await processToBytes(send, rotated, 'r.jpg', 'operation=resize&width=20&keep_metadata=true');
        expect((await look(kept.bytes)).hasExif).toBe(true);
      });

      it('keeps the picture the right way round (no mirroring, no swapped halves)', async () => {
        const { bytes } = await processToBytes(send, await halves(40, 20), 'halves.png', 'operation=resize&width=20&height=10');
        const [left, right] = [await pixel(bytes, 2, 5), await pixel(bytes, 17, 5)];
        expect(left[0]).toBeGreaterThan(200);
        expect(right[2]).toBeGreaterThan(200);
      });

      it('a job that cannot be decoded ends failed with a code, and download says 409 with the error', async () => {
        const truncated = photo.subarray(0, Math.floor(photo.length / 3));
        const file = await upload(send, truncated, 'truncated.jpg');
        const accepted = await submit(send, file.file_id, 'operation=blur');
        const job = await waitForJob(send, accepted.processing_id);
        expect(job.status).toBe('failed');
        expect(job.error?.code).toBe('decode_failed');
        const body = await expectProblem(await send(`/download/${accepted.processing_id}`), 409, 'job_failed');
        expect(body).toMatchObject({ job_status: 'failed', error: { code: 'decode_failed' } });
      });

      it('GET /status?wait= answers once the job is finished, or when the wait is up', async () => {
        const file = await upload(send, await noisyJpeg(800, 600), 'wait.jpg');
        const accepted = await submit(send, file.file_id, { operations: [{ operation: 'blur', intensity: 8 }], format: 'png' });
        const job = (await (await send(`/status/${accepted.processing_id}?wait=20`)).json()) as { status: string };
        expect(job.status).toBe('completed');
        // A job that never finishes: the answer comes when the wait is up, with the job as it stands.
        const now = new Date().toISOString();
        const stuckId = '9a0c1f6e-2b3d-4e5f-8a9b-0c1d2e3f4a5b';
        await h.service.deps.jobs.putJob(jobRecord(file.file_id, { processing_id: stuckId, cache_key: 'wait-test', created_at: now }));
        const started = Date.now();
        const stuck = (await (await send(`/status/${stuckId}?wait=1`)).json()) as { status: string };
        expect(stuck.status).toBe('queued');
        expect(Date.now() - started).toBeGreaterThanOrEqual(900);
        for (const wait of ['31', '-1', 'abc', '1.5'])
          await expectProblem(await send(`/status/${stuckId}?wait=${wait}`), 400, 'invalid_wait');
      });

      it('GET /status?wait= is woken by the job store when the job ends, not by its once-a-second recheck', async () => {
        const file = await upload(send, await solid(8, 8, { r: 1, g: 2, b: 3 }), 'woken.png');
        const waitingId = '5c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
        await h.service.deps.jobs.putJob(
          jobRecord(file.file_id, { processing_id: waitingId, status: 'processing', cache_key: 'woken-test' }),
        );
        const answer = send(`/status/${waitingId}?wait=10`).then(async (response) => ({
          at: Date.now(),
          job: (await response.json()) as { status: string },
        }));
        await new Promise((resolve) => setTimeout(resolve, 150));
        // Another party (a worker) ends the job; the waiting request must hear of it.
        const endedAt = Date.now();
        await h.service.deps.jobs.updateJob(waitingId, {
          status: 'failed',
          error: { code: 'processing_failed', message: 'ended by the test' },
          completed_at: new Date().toISOString(),
        });
        const { at, job } = await answer;
        expect(job.status).toBe('failed');
        // A recheck alone would answer ~850 ms after the end (1 s after the request started).
        expect(at - endedAt).toBeLessThan(500);
      });

      it('download of a job not completed yet is a 409 carrying job_status', async () => {
        const file = await upload(send, photo, 'pending.jpg');
        const now = new Date().toISOString();
        // A fresh id: the suite's UNKNOWN_ID must stay unknown whatever order the tests run in.
        const pendingId = crypto.randomUUID();
        await h.service.deps.jobs.putJob(
          jobRecord(file.file_id, {
            processing_id: pendingId,
            output: { format: 'jpeg', quality: 80 },
            cache_key: 'pending-test',
            created_at: now,
          }),
        );
        const body = await expectProblem(await send(`/download/${pendingId}`), 409, 'job_not_completed');
        expect(body.job_status).toBe('queued');
      });
    });
  });
}
