/**
 * How paths and methods are matched: a trailing slash is the same path (for POST too, body and all), a
 * known path with a method it does not answer is a 405 with `Allow`, OPTIONS is a 204 with `Allow`, and an
 * unknown path stays a 404. The methods come from the app's own routes, not from a table.
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { allowedMethods } from '../../src/allowed-methods.js';
import { expectProblem, multipart, waitForJob } from '../helpers/client.js';
import { look, noisyJpeg } from '../helpers/images.js';
import { memoryApp } from '../helpers/memory-app.js';

const SOME_ID = '3f2b7c9e-8a41-4d0c-9c55-2b1e6f0a7d13';

describe('trailing slashes', () => {
  it('POST /upload/, POST /process/{id}/, GET /status/{id}/, /download/{id}/ and /list/ answer as without the slash', async () => {
    const m = memoryApp();
    const uploaded = await m.send('/upload/', { method: 'POST', body: multipart(await noisyJpeg(120, 80), 'slash.jpg') });
    const file = (await uploaded.json()) as { file_id: string; width: number };
    expect([uploaded.status, file.width]).toEqual([200, 120]);
    const processed = await m.send(`/process/${file.file_id}/?operation=resize&width=60`, { method: 'POST' });
    const accepted = (await processed.json()) as { processing_id: string };
    expect(processed.status).toBe(200);
    const job = await waitForJob((path) => m.send(`${path}/`), accepted.processing_id);
    expect(job.result).toMatchObject({ width: 60, height: 40 });
    const downloaded = await m.send(`/download/${accepted.processing_id}/`);
    expect((await look(new Uint8Array(await downloaded.arrayBuffer()))).width).toBe(60);
    const listed = (await (await m.send('/list/?limit=5')).json()) as { items: Array<{ file_id: string }> };
    expect(listed.items.map((item) => item.file_id)).toEqual([file.file_id]);
    for (const path of ['/health/', '/openapi.json/', '/docs/']) expect((await m.send(path)).status, path).toBe(200);
    // A JSON pipeline through the slash keeps its body.
    const json = await m.send(`/process/${file.file_id}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ operations: [{ operation: 'grayscale' }] }),
    });
    expect(((await json.json()) as { operations: unknown[] }).operations).toEqual([{ operation: 'grayscale' }]);
  });

  it('an id with a slash is still checked as an id, and the document lists each path once, without the slash', async () => {
    const m = memoryApp();
    await expectProblem(await m.send('/status/not-an-id/'), 400, 'invalid_request');
    await expectProblem(await m.send(`/status/${SOME_ID}/`), 404, 'job_not_found');
    const doc = (await (await m.send('/openapi.json')).json()) as { paths: Record<string, unknown> };
    const paths = Object.keys(doc.paths);
    expect(paths.filter((path) => path.length > 1 && path.endsWith('/'))).toEqual([]);
    expect(new Set(paths.map((path) => path.replace(/\/$/, ''))).size).toBe(paths.length);
  });
});

describe('405 Method Not Allowed', () => {
  it('a known path with another method: 405 method_not_allowed, Allow listing what the path answers', async () => {
    const m = memoryApp();
    const cases: Array<[string, string, string]> = [
      ['POST', '/list', 'GET, HEAD, OPTIONS'],
      ['DELETE', '/list/', 'GET, HEAD, OPTIONS'],
      ['GET', '/upload', 'POST, OPTIONS'],
      ['PUT', `/process/${SOME_ID}`, 'POST, OPTIONS'],
      ['DELETE', `/status/${SOME_ID}`, 'GET, HEAD, OPTIONS'],
      ['POST', `/download/${SOME_ID}`, 'GET, HEAD, OPTIONS'],
      ['PATCH', '/tasks/', 'GET, HEAD, OPTIONS'],
      ['GET', '/upload-image/', 'POST, OPTIONS'],
      ['POST', '/', 'GET, HEAD, OPTIONS'],
    ];
    for (const [method, path, allow] of cases) {
      const response = await m.send(path, { method });
      expect(response.headers.get('allow'), `${method} ${path}`).toBe(allow);
      const body = await expectProblem(response, 405, 'method_not_allowed');
      expect(body.detail).toBe(`${method} is not allowed on ${path.replace(/(.)\/$/, '$1')}; it answers ${allow}`);
    }
    // Even a malformed id: the path shape is known, the method is what is wrong.
    expect((await m.send('/status/not-an-id', { method: 'DELETE' })).status).toBe(405);
  });

  it('HEAD works where GET does; HEAD on a POST-only path is a 405 without a body', async () => {
    const m = memoryApp();
    for (const path of ['/', '/list', '/tasks', '/health']) {
      const response = await m.send(path, { method: 'HEAD' });
      expect([response.status, (await response.arrayBuffer()).byteLength], path).toEqual([200, 0]);
    }
    const head = await m.send('/upload', { method: 'HEAD' });
    expect([head.status, head.headers.get('allow'), (await head.arrayBuffer()).byteLength]).toEqual([405, 'POST, OPTIONS', 0]);
  });

  it('OPTIONS on a known path is a 204 with Allow; on an unknown one a 404', async () => {
    const m = memoryApp();
    const options = await m.send(`/download/${SOME_ID}/`, { method: 'OPTIONS' });
    expect([options.status, options.headers.get('allow'), await options.text()]).toEqual([204, 'GET, HEAD, OPTIONS', '']);
    expect((await m.send('/upload', { method: 'OPTIONS' })).headers.get('allow')).toBe('POST, OPTIONS');
    await expectProblem(await m.send('/nowhere', { method: 'OPTIONS' }), 404, 'not_found');
  });

  it('an unknown path stays a 404 whatever the method, also under a known prefix', async () => {
    const m = memoryApp();
    for (const [method, path] of [
      ['GET', '/nowhere'],
      ['POST', '/uploads'],
      ['DELETE', '/list/extra'],
      ['GET', `/process/${SOME_ID}/more`],
      ['POST', `/process/${SOME_ID}/more`],
    ]) {
      await expectProblem(await m.send(path!, { method }), 404, 'not_found');
    }
  });

  it('a path the app answers is found through its own router: parameters, wildcards, middleware left out', () => {
    const app = new Hono();
    app.use('*', async (_c, next) => next());
    app.use('/files/*', async (_c, next) => next());
    app.get('/files/:id', (c) => c.text('x'));
    app.delete('/files/:id', (c) => c.text('x'));
    app.post('/assets/*', (c) => c.text('x'));
    const allowedAt = allowedMethods(() => app.routes);
    expect(allowedAt('/files/42')).toEqual(['GET', 'HEAD', 'DELETE', 'OPTIONS']);
    expect(allowedAt('/assets/a/b/c')).toEqual(['POST', 'OPTIONS']);
    expect(allowedAt('/files/42/more')).toEqual([]);
    expect(allowedAt('/elsewhere')).toEqual([]);
  });
});
