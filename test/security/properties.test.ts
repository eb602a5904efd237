/**
 * Properties over random input: whatever bytes follow a real magic number, and whatever parameters, bodies
 * and query strings a client sends, the answer is 200 or 4xx (never 5xx), a refusal is a small problem, and
 * every accepted job ends completed or failed.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, upload, waitForJob } from '../helpers/client.js';
import { embeddedHarness, type Harness } from '../helpers/harness.js';
import { noisyJpeg } from '../helpers/images.js';

let h: Harness;
beforeAll(async () => {
  h = await embeddedHarness({ JOB_TIMEOUT_SECONDS: '10' });
});
afterAll(() => h.close());

const MAGIC: Array<[string, number[]]> = [
  ['jpg', [0xff, 0xd8, 0xff, 0xe0]],
  ['png', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]],
  ['gif', [...Buffer.from('GIF89a')]],
  ['tif', [...Buffer.from('II*\0')]],
  ['tiff', [...Buffer.from('MM\0*')]],
  ['webp', [...Buffer.from('RIFF'), 0x40, 0, 0, 0, ...Buffer.from('WEBPVP8 ')]],
  ['bmp', [...Buffer.from('BM'), 0x46, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 40, 0, 0, 0]],
];

describe('properties', () => {
  it('random bytes behind a real magic number: 200 or 4xx, and every accepted job ends', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...MAGIC), fc.uint8Array({ minLength: 0, maxLength: 3000 }), async ([ext, magic], tail) => {
        const bytes = new Uint8Array([...magic, ...tail]);
        const response = await h.request('/upload', { method: 'POST', body: multipart(bytes, `random.${ext}`) });
        expect(response.status === 200 || (response.status >= 400 && response.status < 500), `upload → ${response.status}`).toBe(true);
        if (response.status !== 200) return;
        const { file_id: fileId } = (await response.json()) as { file_id: string };
        const accepted = await h.request(`/process/${fileId}?operation=resize&width=16`, { method: 'POST' });
        expect(accepted.status === 200 || (accepted.status >= 400 && accepted.status < 500)).toBe(true);
        if (accepted.status !== 200) return;
        const job = await waitForJob(h.request, ((await accepted.json()) as { processing_id: string }).processing_id);
        expect(['completed', 'failed']).toContain(job.status);
        if (job.status === 'failed') expect(job.error?.code).toMatch(/^[a-z_]+$/);
      }),
      { numRuns: 150 },
    );
  });

  it('random parameter objects, as JSON and as a query: 200 or 4xx, never 5xx', async () => {
    const fileId = (await upload(h.request, await noisyJpeg(32, 24), 'params.jpg')).file_id;
    const value = fc.oneof(
      fc.integer({ min: -10, max: 10_000 }),
      fc.double(),
      fc.constantFrom(0, -1, 1e308, Number.MAX_SAFE_INTEGER, 0.3, 1, 8192, 8193),
      fc.string({ maxLength: 12 }),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.integer(), { maxLength: 3 }),
    );
    const name = fc.constantFrom('resize', 'blur', 'sharpen', 'grayscale', 'sepia', 'brightness', 'contrast', 'explode', '');
    const key = fc.constantFrom('width', 'height', 'fit', 'without_enlargement', 'intensity', 'sigma', '__proto__', 'constructor');
    const operation = fc.tuple(name, fc.dictionary(key, value, { maxKeys: 4 })).map(([operation, params]) => ({ operation, ...params }));
    const pipeline = fc.record(
      {
        operations: fc.oneof(fc.array(operation, { maxLength: 12 }), value),
        format: fc.oneof(fc.constantFrom('jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'bmp'), value),
        quality: value,
        keep_metadata: value,
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(pipeline, async (body) => {
        const asJson = await h.request(`/process/${fileId}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        expect(asJson.status < 500, `JSON ${JSON.stringify(body).slice(0, 200)} → ${asJson.status}`).toBe(true);
        const first = Array.isArray(body.operations) ? body.operations[0] : undefined;
        const query = new URLSearchParams(
          Object.entries({ ...((first ?? {}) as object), format: body.format, quality: body.quality })
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => [k, String(v)]),
        );
        const asQuery = await h.request(`/process/${fileId}?${query}`, { method: 'POST' });
        expect(asQuery.status < 500, `query ${query} → ${asQuery.status}`).toBe(true);
      }),
      { numRuns: 300 },
    );
    await h.idle();
  });

  it('random bodies, media types and query strings (repeated, odd or broken keys): 200 or a small 4xx problem, with nosniff', async () => {
    const fileId = (await upload(h.request, await noisyJpeg(32, 24), 'shapes.jpg')).file_id;
    const mediaType = fc.constantFrom(
      undefined,
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/merge-patch+json',
      'multipart/form-data',
    );
    const body = fc.oneof(
      fc.constant(''),
      fc.string({ maxLength: 200 }),
      fc.jsonValue({ maxDepth: 40 }).map((value) => JSON.stringify(value)),
      fc.nat({ max: 20_000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
      fc.uint8Array({ maxLength: 200 }),
    );
    const key = fc.oneof(
      fc.constantFrom('operation', 'width', 'height', 'intensity', 'format', 'quality', '__proto__', '%E0%A4%A', ''),
      fc.string({ maxLength: 300 }),
    );
    const value = fc.oneof(fc.constantFrom('blur', 'resize', '10', '1e400', '%ZZ', '\u0000'), fc.string({ maxLength: 300 }));
    const query = fc.array(fc.tuple(key, value), { maxLength: 6 }).map((pairs) => new URLSearchParams(pairs).toString());
    await fc.assert(
      fc.asyncProperty(mediaType, body, query, async (contentType, payload, search) => {
        const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {};
        const response = await h.request(`/process/${fileId}?${search}`, { method: 'POST', headers, body: payload });
        const text = await response.text();
        expect(
          response.status === 200 || (response.status >= 400 && response.status < 500),
          `${contentType} ?${search.slice(0, 100)} → ${response.status} ${text.slice(0, 200)}`,
        ).toBe(true);
        expect(response.headers.get('x-content-type-options')).toBe('nosniff');
        if (response.status !== 200) {
          expect(response.headers.get('content-type')).toBe('application/problem+json');
          expect(new TextEncoder().encode(text).length, text.slice(0, 200)).toBeLessThan(4096);
        }
        for (const path of [`/list?${search}`, `/status/${fileId}?${search}`]) {
          const answer = await h.request(path);
          expect(answer.status, `${path.slice(0, 100)} → ${answer.status}`).toBeLessThan(500);
          const bytes = (await answer.arrayBuffer()).byteLength;
          if (answer.status !== 200) expect(bytes, path.slice(0, 100)).toBeLessThan(4096);
        }
      }),
      { numRuns: 200 },
    );
    await h.idle();
  });
});
