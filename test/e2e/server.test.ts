/**
 * The real server over real sockets: the seed's flow, early refusal of a too-large body, configuration
 * errors, and a clean stop.
 */
import { rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processToBytes, upload } from '../helpers/client.js';
import { endlessUpload } from '../helpers/endless-upload.js';
import { look, noisyJpeg } from '../helpers/images.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';

describe('server process (embedded default)', () => {
  let server: ServerProcess;
  const send = (path: string, init?: RequestInit) => fetch(`${server.baseUrl}${path}`, init);

  beforeAll(async () => {
    server = await startServer({ MAX_FILE_SIZE: '2000000' });
  });
  afterAll(async () => {
    server.child.kill('SIGKILL');
    await server.exited;
    await rm(server.dir, { recursive: true, force: true });
  });

  it("runs the seed client's flow over HTTP", async () => {
    const { bytes, job } = await processToBytes(send, await noisyJpeg(400, 300), 'seed.jpg', 'operation=resize&width=200&height=150');
    const image = await look(bytes);
    expect([image.format, image.width, image.height]).toEqual(['jpeg', 200, 150]);
    expect(job.result).toMatchObject({ width: 200, height: 150 });
  });

  it('refuses a body over MAX_FILE_SIZE while it is still arriving, with Connection: close', async () => {
    const boundary = 'xyzBOUNDARY';
    const answer = await new Promise<{ status: number; connection?: string; body: string; sentBytes: number }>((resolve, reject) => {
      const req = httpRequest(`${server.baseUrl}/upload`, {
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' },
        agent: false,
      });
      let sentBytes = 0;
      let stop = false;
      req.on('response', (res) => {
        stop = true;
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body, sentBytes }));
      });
      req.on('error', (error) => (stop ? undefined : reject(error)));
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="endless.png"\r\nContent-Type: image/png\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        // An endless body: stop only when the server answers (or after 200 MB, which would be a failure).
        while (!stop && sentBytes < 200_000_000) {
          sentBytes += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
      };
      pump();
    });
    expect(answer.status).toBe(413);
    expect(answer.connection).toBe('close');
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'file_too_large' });
    expect(answer.sentBytes).toBeLessThan(50_000_000);
    // The partial file is gone (give the server a moment to close the write stream and delete it).
    const { readdir } = await import('node:fs/promises');
    const { join } = await import('node:path');
    let partials: string[] = [];
    for (let i = 0; i < 50; i++) {
      partials = (await readdir(join(server.dir, 'uploads'))).filter((name) => name.startsWith('.partial'));
      if (partials.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(partials).toEqual([]);
    // The service is still healthy and a normal upload still works.
    expect((await send('/health')).status).toBe(200);
    await upload(send, await noisyJpeg(50, 50), 'after.jpg');
  });

  it('64 endless uploads, 8 at a time, all read their 413: the close lingers, so no reset overtakes the answer', async () => {
    // Closing at once, about one endless upload in a hundred saw EPIPE or ECONNRESET instead of the answer.
    const outcomes: Array<number | string> = [];
    for (let batch = 0; batch < 8; batch++)
      outcomes.push(...(await Promise.all(Array.from({ length: 8 }, () => endlessUpload(server.baseUrl)))));
    expect(outcomes).toEqual(Array(64).fill(413));
  });

  it('an early refusal other than 413 drains the body, so a fetch client reads the answer (no broken pipe)', async () => {
    const big = new Uint8Array(1_500_000).fill(7);
    for (let i = 0; i < 5; i++) {
      const form = new FormData();
      form.append('file', new Blob([big]), 'payload.exe');
      const response = await send('/upload', { method: 'POST', body: form });
      expect(response.status).toBe(415);
      expect(response.headers.get('connection')).not.toBe('close');
      expect(((await response.json()) as { code: string }).code).toBe('unsupported_extension');
    }
  });

  it('serves the docs script from the app', async () => {
    const response = await send('/docs/scalar.js');
    expect(response.status).toBe(200);
    expect(Number(response.headers.get('content-length') ?? (await response.arrayBuffer()).byteLength)).toBeGreaterThan(100_000);
  });
});

describe('server start and stop', () => {
  it('stops at start-up with one clear line naming a bad variable', async () => {
    const server = await startServer({ MAX_FILE_SIZE: 'ten megabytes' });
    expect(await server.exited).toBe(1);
    const lines = server.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/MAX_FILE_SIZE must be an integer from 1 to \d+, got "ten megabytes"/);
  });

  it('exits 0 on SIGTERM, and a job accepted before the stop is completed', async () => {
    const server = await startServer({ WORKER_CONCURRENCY: '1' });
    const send = (path: string, init?: RequestInit) => fetch(`${server.baseUrl}${path}`, init);
    const file = await upload(send, await noisyJpeg(800, 600), 'stop.jpg');
    const response = await send(`/process/${file.file_id}?operation=blur&intensity=20`, { method: 'POST' });
    const { processing_id: processingId } = (await response.json()) as { processing_id: string };
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const again = await startServer({}, server.dir);
    const status = async () => ((await (await fetch(`${again.baseUrl}/status/${processingId}`)).json()) as { status: string }).status;
    let current = await status();
    for (let i = 0; i < 200 && current !== 'completed' && current !== 'failed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      current = await status();
    }
    expect(current).toBe('completed');
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
    await rm(server.dir, { recursive: true, force: true });
  });
});
