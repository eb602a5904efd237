/**
 * `POST /upload` over in-memory ports, with plain `Request`s: what reaches the store, and that every refusal
 * leaves nothing in it.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readWhole } from '../../src/adapters/byte-tap.js';
import { storageFault } from '../../src/domain/errors.js';
import { expectProblem, multipart, upload } from '../helpers/client.js';
import { memoryApp } from '../helpers/memory-app.js';
import sharp from 'sharp';
import { PROBE_HEAD_BYTES } from '../../src/domain/formats.js';
import { noisyJpeg } from '../helpers/images.js';

const STORE_BYTES = 64 * 1024 * 1024;

describe('POST /upload (memory store)', () => {
  it('stores exactly the bytes received, under the file_id it answers', async () => {
    const m = memoryApp({ storeBytes: STORE_BYTES });
    const photo = await noisyJpeg(300, 200);
    const file = await upload(m.send, photo, 'photo.jpg');
    expect(file).toMatchObject({
      format: 'jpeg',
      width: 300,
      height: 200,
      size_bytes: photo.length,
      sha256: createHash('sha256').update(photo).digest('hex'),
    });
    const stored = await m.store.openUpload(file.file_id);
    expect(stored?.sizeBytes).toBe(photo.length);
    expect((await readWhole(stored!)).equals(photo)).toBe(true);
    expect(await m.store.freeBytes()).toBe(STORE_BYTES - photo.length);
  });

  it('counts the frames of an animation from the whole file, not from its head', async () => {
    const m = memoryApp();
    // Noisy frames, so the GIF is larger than the 256 KiB head an upload keeps.
    const frames = await Promise.all(
      [0, 1, 2, 3].map(async (n) =>
        sharp(await noisyJpeg(400, 300 + n))
          .resize(400, 300)
          .png()
          .toBuffer(),
      ),
    );
    const gif = await sharp(frames, { join: { animated: true } })
      .gif()
      .toBuffer();
    expect(gif.length).toBeGreaterThan(PROBE_HEAD_BYTES);
    const file = await upload(m.send, gif, 'moving.gif');
    expect((await m.jobs.getFile(file.file_id))?.pages).toBe(4);
  });

  it.each([
    ['too large', { maxFileSize: 1000 }, (photo: Buffer) => multipart(photo, 'big.jpg'), 413, 'file_too_large'],
    [
      'two files',
      {},
      (photo: Buffer) => {
        const form = multipart(photo, 'a.jpg');
        form.append('file', new Blob([new Uint8Array(photo)]), 'b.jpg');
        return form;
      },
      400,
      'too_many_files',
    ],
    ['not an image', {}, () => multipart(new TextEncoder().encode('<html></html>'.repeat(100)), 'page.jpg'), 415, 'unsupported_format'],
    ['a wrong extension', {}, (photo: Buffer) => multipart(photo, 'photo.exe'), 415, 'unsupported_extension'],
  ] as const)('a refusal (%s) leaves no byte in the store', async (_label, options, body, status, code) => {
    const m = memoryApp({ storeBytes: STORE_BYTES, ...options });
    const photo = await noisyJpeg(300, 200);
    await expectProblem(await m.send('/upload', { method: 'POST', body: body(photo) }), status, code);
    // Discards run as the refusal is answered; give them a turn of the event loop.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await m.store.freeBytes()).toBe(STORE_BYTES);
  });

  it('a full store is a 507 with Retry-After, not a 500', async () => {
    const m = memoryApp({ storeBytes: 1000 });
    const response = await m.send('/upload', { method: 'POST', body: multipart(await noisyJpeg(300, 200), 'photo.jpg') });
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    await expectProblem(response, 507, 'storage_full');
  });

  it('an upload whose bytes cannot be committed leaves no record behind', async () => {
    const m = memoryApp({
      storeBytes: STORE_BYTES,
      wrapStore: (store) =>
        Object.assign(Object.create(store) as typeof store, {
          commitUpload: async () => {
            throw storageFault('unavailable');
          },
        }),
    });
    const response = await m.send('/upload', { method: 'POST', body: multipart(await noisyJpeg(64, 64), 'photo.jpg') });
    await expectProblem(response, 503, 'storage_unavailable');
    expect((await m.jobs.listFiles(10)).total).toBe(0);
  });

  it('an upload whose record cannot be written leaves no file behind', async () => {
    const m = memoryApp({
      storeBytes: STORE_BYTES,
      wrapJobs: (jobs) =>
        Object.assign(Object.create(jobs) as typeof jobs, {
          putFile: async () => {
            throw new Error('record store down');
          },
        }),
    });
    const response = await m.send('/upload', { method: 'POST', body: multipart(await noisyJpeg(64, 64), 'photo.jpg') });
    expect(response.status).toBe(500);
    expect(await m.store.freeBytes()).toBe(STORE_BYTES);
  });
});
