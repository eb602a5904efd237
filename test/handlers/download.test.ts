/**
 * `GET /download` over in-memory ports: every header the contract names, whichever store serves the bytes.
 */
import { describe, expect, it } from 'vitest';
import { MIME_TYPES, OUTPUT_FORMATS, sniffFormat } from '../../src/domain/formats.js';
import { processToBytes, submit, upload, waitForJob } from '../helpers/client.js';
import { memoryApp } from '../helpers/memory-app.js';
import { look, noisyJpeg } from '../helpers/images.js';

describe('GET /download (memory store)', () => {
  it('streams the result with Content-Length, a strong ETag and Content-Disposition; 304 and HEAD work', async () => {
    const m = memoryApp();
    const { job, bytes, response } = await processToBytes(m.send, await noisyJpeg(200, 100), 'trip photo.jpg', 'operation=resize&width=50');
    expect((await look(bytes)).width).toBe(50);
    const processingId = String(job.processing_id);
    expect(response.headers.get('content-length')).toBe(String(bytes.length));
    expect(response.headers.get('etag')).toBe(`"${job.result!.sha256}"`);
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="trip photo-${processingId}.jpg"`);
    const cached = await m.send(`/download/${processingId}`, { headers: { 'if-none-match': `"${job.result!.sha256}"` } });
    expect(cached.status).toBe(304);
    const head = await m.send(`/download/${processingId}`, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length'), (await head.arrayBuffer()).byteLength]).toEqual([
      200,
      String(bytes.length),
      0,
    ]);
  });

  it('serves each result as the type its bytes are, with nosniff, whatever the request asks for', async () => {
    const m = memoryApp();
    const file = await upload(m.send, await noisyJpeg(24, 16), 'typed.jpg');
    for (const format of OUTPUT_FORMATS) {
      const accepted = await submit(m.send, file.file_id, `operation=grayscale&format=${format}`);
      expect((await waitForJob(m.send, accepted.processing_id)).status).toBe('completed');
      const asked = { accept: 'text/html', 'content-type': 'text/html' };
      const response = await m.send(`/download/${accepted.processing_id}?content_type=text/html&format=html`, { headers: asked });
      const bytes = new Uint8Array(await response.arrayBuffer());
      expect([response.status, response.headers.get('content-type')], format).toEqual([200, MIME_TYPES[sniffFormat(bytes)!]]);
      expect(response.headers.get('content-type')).toBe(MIME_TYPES[format]);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-disposition')).toMatch(/^attachment; /);
    }
  });
});
