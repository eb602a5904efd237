/**
 * Hostile input: every case gets a clear 4xx problem naming what was wrong (never a 5xx, a crash, or a
 * file left behind), and afterwards the service is healthy and a normal job still works.
 */
import { readdir, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileCorpus, type HostileCase } from '../../scripts/hostile-corpus.js';
import { expectProblem, multipart, processToBytes, submit, upload, waitForJob } from '../helpers/client.js';
import { embeddedHarness, memoryHarness, type Harness } from '../helpers/harness.js';
import { look, noisyJpeg, solid } from '../helpers/images.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';

let h: Harness;
let m: Harness;
let corpus: HostileCase[];
const send = (path: string, init?: RequestInit) => h.request(path, init);

beforeAll(async () => {
  h = await embeddedHarness();
  m = await memoryHarness();
  corpus = await hostileCorpus();
});
afterAll(async () => {
  await h.close();
  await m.close();
});

async function stillWorks(): Promise<void> {
  expect((await send('/health')).status).toBe(200);
  const { bytes } = await processToBytes(send, await noisyJpeg(40, 30), 'normal.jpg', 'operation=resize&width=20');
  expect((await look(bytes)).width).toBe(20);
}

/** Nothing half-written anywhere: no file in any process's staging folder, no partial file of older versions. */
async function noPartialFiles(): Promise<void> {
  for (const folder of ['uploads', 'processed']) {
    const entries = await readdir(join(h.dir, folder), { recursive: true, withFileTypes: true });
    const leftovers = entries.filter(
      (entry) => entry.isFile() && (entry.name.startsWith('.partial') || entry.parentPath.includes('.staging')),
    );
    expect(leftovers.map((entry) => join(entry.parentPath, entry.name))).toEqual([]);
  }
}

describe('hostile uploads', () => {
  const cases = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13].flatMap(
    (index) =>
      [
        [index, 'Request body'],
        [index, 'Node stream'],
      ] as const,
  );
  it.each(cases)('corpus case %i through the %s', async (index, path) => {
    const item = corpus[index]!;
    const filesBefore = (await readdir(join(h.dir, 'uploads'))).length;
    const deliver = path === 'Node stream' ? h.requestAsNode : send;
    const response = await deliver('/upload', { method: 'POST', body: multipart(item.bytes, item.filename) });
    if (item.expect === 'accept-then-fail') {
      expect(response.status, item.name).toBe(200);
      const { file_id: fileId } = (await response.json()) as { file_id: string };
      const job = await waitForJob(send, (await submit(send, fileId, 'operation=grayscale')).processing_id);
      expect(job.status, item.name).toBe('failed');
      expect(job.error?.code, item.name).toBe('decode_failed');
    } else {
      const body = await expectProblem(response, item.expect.status, item.expect.code);
      expect(body.detail, item.name).toBeTruthy();
      expect((await readdir(join(h.dir, 'uploads'))).length, `${item.name}: nothing stored`).toBe(filesBefore);
    }
    await noPartialFiles();
    await stillWorks();
  });

  // The memory store (like S3) keeps a 256 KiB head and probes JPEG, PNG and BMP from it, not from a file.
  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])('corpus case %i over the memory store (probed from the head)', async (index) => {
    const item = corpus[index]!;
    const store = m.service.deps.store;
    const freeBefore = await store.freeBytes();
    const response = await m.request('/upload', { method: 'POST', body: multipart(item.bytes, item.filename) });
    if (item.expect === 'accept-then-fail') {
      expect(response.status, item.name).toBe(200);
      const { file_id: fileId } = (await response.json()) as { file_id: string };
      const job = await waitForJob(m.request, (await submit(m.request, fileId, 'operation=grayscale')).processing_id);
      expect([job.status, job.error?.code], item.name).toEqual(['failed', 'decode_failed']);
    } else {
      await expectProblem(response, item.expect.status, item.expect.code);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await store.freeBytes(), `${item.name}: nothing stored`).toBe(freeBefore);
    }
  });

  it('names the pixel limit and the declared size in a pixel bomb refusal', async () => {
    const bomb = corpus.find((item) => item.filename === 'bomb.png')!;
    const body = await expectProblem(
      await send('/upload', { method: 'POST', body: multipart(bomb.bytes, bomb.filename) }),
      413,
      'too_many_pixels',
    );
    expect(body.detail).toBe('the image is 30000×30000 = 900000000 pixels; the limit is 50000000 (MAX_INPUT_PIXELS)');
  });
});

describe('hostile names and ids', () => {
  it('stores odd file names for display only and echoes them sanitised', async () => {
    const names: Array<[string, string]> = [
      ['../../../../etc/passwd.png', 'passwd.png'],
      ['..\\..\\windows\\system32\\evil.png', 'evil.png'],
      [`${'a'.repeat(5000)}.png`, `${'a'.repeat(196)}.png`],
      ['\u202Egnp.png', 'gnp.png'],
      ['零件 🖼️.png', '零件 🖼️.png'],
      ['a"b\';rm -rf.png', "a%22b';rm -rf.png"],
    ];
    for (const [raw, shown] of names) {
      const file = await upload(send, await solid(4, 4, { r: 1, g: 2, b: 3 }), raw);
      expect(file.filename, raw.slice(0, 30)).toBe(shown);
    }
    // None of them became a path: the upload folder holds only ids (and the store's own staging folder).
    for (const entry of await readdir(join(h.dir, 'uploads'))) expect(entry).toMatch(/^([0-9a-f-]{36}|\.staging)$/);
  });

  it('accepts raw NUL and control bytes in a part header file name (as urllib3 sends them) and strips them', async () => {
    const image = await solid(4, 4, { r: 1, g: 2, b: 3 });
    for (const [raw, shown] of [
      ['pa\u0000ss\u0001wd.png', 'passwd.png'],
      ['del\u007fete.png', 'delete.png'],
      ['\u0000\u0000.png', 'upload'],
    ]) {
      const boundary = 'rawBOUNDARY';
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="`),
        Buffer.from(raw!, 'utf8'),
        Buffer.from('"\r\nContent-Type: image/png\r\n\r\n'),
        image,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const response = await send('/upload', {
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        body,
      });
      if (shown === 'upload') {
        // Nothing but control characters and an extension: no usable name is left, so no extension either.
        await expectProblem(response, 415, 'unsupported_extension');
        continue;
      }
      expect(response.status, JSON.stringify(raw)).toBe(200);
      expect(((await response.json()) as { filename: string }).filename).toBe(shown);
    }
  });

  it('gives a safe Content-Disposition for a non-ASCII name', async () => {
    const file = await upload(send, await solid(4, 4, { r: 1, g: 2, b: 3 }), 'café "menu".png');
    const accepted = await submit(send, file.file_id, 'operation=grayscale');
    await waitForJob(send, accepted.processing_id);
    const header = (await send(`/download/${accepted.processing_id}`)).headers.get('content-disposition')!;
    const match = /^attachment; filename="([\x20-\x7e]+)"; filename\*=UTF-8''([A-Za-z0-9%._~!$&+-]+)$/.exec(header);
    expect(match, header).not.toBeNull();
    expect(match![1]).not.toMatch(/["\\]/);
    expect(decodeURIComponent(match![2]!)).toBe(`${file.filename.replace(/\.png$/, '')}-${accepted.processing_id}.png`);
    expect(file.filename).toMatch(/^café /);
  });

  it('refuses ids that try traversal, NUL, globs or sheer length without touching storage', async () => {
    // (A bare `..` or `%2e%2e` segment is removed by URL normalisation before any router sees it: `/status/..` is `/`.)
    const ids = [
      '..%2F..%2Fetc%2Fpasswd',
      '..%5C..%5Cwindows',
      'abc%00def',
      '%0d%0aSet-Cookie:x',
      '*',
      '3f2b7c9e-*',
      '[a-z]',
      'x'.repeat(5000),
      '3f2b7c9e-8a41-4d0c-9c55-2b1e6f0a7d1',
    ];
    for (const id of ids) {
      for (const path of [`/status/${id}`, `/download/${id}`]) {
        const response = await send(path);
        expect([400, 404], `${path.slice(0, 60)} → ${response.status}`).toContain(response.status);
        expect(response.headers.get('content-type')).toMatch(/problem\+json/);
      }
      const process = await send(`/process/${id}?operation=grayscale`, { method: 'POST' });
      expect([400, 404]).toContain(process.status);
    }
  });
});

describe('hostile parameters', () => {
  let fileId: string;
  beforeAll(async () => {
    fileId = (await upload(send, await noisyJpeg(64, 48), 'params.jpg')).file_id;
  });

  it('refuses every out-of-range, non-numeric or missing value, naming the field and the range', async () => {
    const cases: Array<[string, RegExp]> = [
      ['operation=resize&width=0', /width must be an integer from 1 to 8192, got 0/],
      ['operation=resize&width=-5', /width must be an integer from 1 to 8192, got -5/],
      ['operation=resize&width=99999999999', /width must be an integer from 1 to 8192, got 99999999999/],
      ['operation=resize&width=1.5', /width must be an integer from 1 to 8192, got 1.5/],
      ['operation=resize&height=NaN', /height must be an integer from 1 to 8192, got "NaN"/],
      ['operation=resize&height=Infinity', /height must be an integer from 1 to 8192, got "Infinity"/],
      ['operation=resize&height=1e400', /height must be an integer from 1 to 8192/],
      ['operation=resize&width=', /width must be an integer from 1 to 8192, got ""/],
      ['operation=blur&intensity=0.1', /intensity must be a number from 0.3 to 100, got 0.1/],
      ['operation=sharpen&intensity=11', /intensity must be a number from 0.3 to 10, got 11/],
      ['operation=sepia&intensity=2', /intensity must be a number from 0 to 1, got 2/],
      ['operation=brightness&intensity=-1', /intensity must be a number from 0 to 10, got -1/],
      ['operation=contrast&intensity=ten', /intensity must be a number from 0 to 10, got "ten"/],
      ['operation=resize&width=10&without_enlargement=maybe', /without_enlargement must be true or false, got "maybe"/],
      ['operation=grayscale&quality=101', /quality must be an integer from 1 to 100, got 101/],
      ['operation=grayscale&format=exe', /format must be one of jpeg, png, webp, avif, gif, tiff, got "exe"/],
      ['operation=drop_tables', /operation must be one of/],
    ];
    for (const [query, message] of cases) {
      const body = await expectProblem(await send(`/process/${fileId}?${query}`, { method: 'POST' }), 400, 'invalid_request');
      expect(body.detail, query).toMatch(message);
    }
  });

  it('bounds the output: no pipeline may enlarge an image past MAX_INPUT_PIXELS', async () => {
    const thin = (await upload(send, await solid(1, 1000, { r: 9, g: 9, b: 9 }), 'thin.png')).file_id;
    const one = (await upload(send, await solid(1, 1, { r: 9, g: 9, b: 9 }), 'dot.png')).file_id;
    const tooBig: Array<[string, string]> = [
      [thin, 'operation=resize&width=8192'],
      [one, 'operation=resize&width=8192&height=8192&fit=fill'],
      [thin, 'operation=resize&width=8192&height=10&fit=outside'],
    ];
    for (const [id, query] of tooBig) {
      const body = await expectProblem(await send(`/process/${id}?${query}`, { method: 'POST' }), 400, 'output_too_large');
      expect(body.detail).toMatch(/over the limit of 50000000 \(MAX_INPUT_PIXELS\)/);
    }
    const chained = {
      operations: [
        { operation: 'resize', width: 4000, height: 4000, fit: 'fill' },
        { operation: 'resize', width: 8192, height: 8192, fit: 'fill' },
      ],
    };
    await expectProblem(
      await send(`/process/${one}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chained) }),
      400,
      'output_too_large',
    );
    // Within the limit is fine, and without_enlargement keeps a small image small.
    const queued = await submit(send, one, 'operation=resize&width=8192&height=8192&fit=fill&without_enlargement=true');
    expect(queued.status).toBe('queued');
    // It runs on the harness the corpus cases share: left running, its result's staged write could be what
    // a later case's "nothing half-written" check finds.
    await waitForJob(send, queued.processing_id);
  });
});

describe('processing limits', () => {
  it('a job over JOB_TIMEOUT_SECONDS ends failed with code timeout, and the worker lives on', async () => {
    const slow = await embeddedHarness({ JOB_TIMEOUT_SECONDS: '1', WORKER_CONCURRENCY: '1' });
    try {
      const file = await upload(slow.request, await noisyJpeg(3000, 2500), 'slow.jpg');
      const accepted = await submit(slow.request, file.file_id, {
        operations: [
          { operation: 'blur', intensity: 100 },
          { operation: 'blur', intensity: 100 },
          { operation: 'blur', intensity: 100 },
        ],
        format: 'png',
      });
      const job = await waitForJob(slow.request, accepted.processing_id, 30_000);
      expect(job.status).toBe('failed');
      expect(job.error).toEqual({ code: 'timeout', message: 'processing took longer than the limit of 1 s (JOB_TIMEOUT_SECONDS)' });
      const { bytes } = await processToBytes(slow.request, await noisyJpeg(40, 30), 'after.jpg', 'operation=grayscale');
      expect((await look(bytes)).width).toBe(40);
    } finally {
      await slow.close();
    }
  });

  it('refuses new work with 503 and Retry-After when MAX_QUEUE_DEPTH jobs are waiting', async () => {
    const busy = await embeddedHarness({ MAX_QUEUE_DEPTH: '1', WORKER_CONCURRENCY: '1' });
    try {
      const file = await upload(busy.request, await noisyJpeg(2000, 1500), 'busy.jpg');
      const heavy = (n: number) => ({ operations: [{ operation: 'blur', intensity: 30 + n }], format: 'png' });
      await submit(busy.request, file.file_id, heavy(1));
      await submit(busy.request, file.file_id, heavy(2));
      const refused = await busy.request(`/process/${file.file_id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(heavy(3)),
      });
      const body = await expectProblem(refused, 503, 'queue_full');
      expect(body.detail).toMatch(/MAX_QUEUE_DEPTH/);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    } finally {
      await busy.close();
    }
  });
});

describe('access control (off by default)', () => {
  const key = 'k'.repeat(24);

  it('with API_KEYS, everything but /, /health, /docs and /openapi.json needs a bearer key', async () => {
    const locked = await embeddedHarness({ API_KEYS: `${'z'.repeat(20)},${key}` });
    try {
      for (const path of ['/', '/health', '/docs', '/openapi.json']) expect((await locked.request(path)).status, path).toBe(200);
      await expectProblem(await locked.request('/list'), 401, 'unauthorized');
      await expectProblem(await locked.request('/list', { headers: { authorization: `Bearer ${key}x` } }), 401, 'unauthorized');
      await expectProblem(await locked.request('/list', { headers: { authorization: `Basic ${key}` } }), 401, 'unauthorized');
      const denied = await locked.request('/upload', { method: 'POST', body: multipart(await solid(4, 4, { r: 0, g: 0, b: 0 }), 'a.png') });
      expect(denied.status).toBe(401);
      expect(denied.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(denied.headers.get('x-content-type-options')).toBe('nosniff');
      expect((await locked.request('/list', { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    } finally {
      await locked.close();
    }
  });

  it('with RATE_LIMIT_PER_MINUTE, the request past the limit gets 429 with Retry-After', async () => {
    const limited = await embeddedHarness({ RATE_LIMIT_PER_MINUTE: '3' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await limited.request('/list')).status);
      // A minute boundary may fall inside the loop; then one more request is allowed.
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      const refused = statuses[3] === 429 ? undefined : await limited.request('/list');
      const last = refused ?? (await limited.request('/list'));
      const body = await expectProblem(last, 429, 'rate_limited');
      expect(body.detail).toMatch(/at most 3 requests a minute/);
      expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(last.headers.get('x-content-type-options')).toBe('nosniff');
      expect((await limited.request('/health')).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One request over its own socket, exactly as given: the body is sent in `chunks` (chunked, no
 * Content-Length, unless the headers say otherwise), and sending stops as soon as the server answers.
 * With `end: false` the body is left unfinished once the chunks are sent (a body still arriving).
 */
function raw(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  chunks: Iterable<string | Buffer>,
  { end = true } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${baseUrl}${path}`, { method, headers, agent: false });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', (error) => (answered ? undefined : reject(error)));
    const source = chunks[Symbol.iterator]();
    const pump = () => {
      for (;;) {
        if (answered) return;
        const next = source.next();
        if (next.done) return void (end ? req.end() : undefined);
        if (!req.write(next.value)) return void req.once('drain', pump);
      }
    };
    pump();
  });
}

describe('hostile request shapes over a real socket', () => {
  let server: ServerProcess;
  let fileId: string;
  const fetchServer = (path: string, init?: RequestInit) => fetch(`${server.baseUrl}${path}`, init);

  beforeAll(async () => {
    server = await startServer({ WORKER_CONCURRENCY: '1' });
    fileId = (await upload(fetchServer, await noisyJpeg(32, 24), 'socket.jpg')).file_id;
  });
  afterAll(async () => {
    await server.stop('SIGKILL');
    await rm(server.dir, { recursive: true, force: true });
  });

  it("curl -X POST -d '' on the query form (an empty form body) is processed as the query form", async () => {
    const answer = await raw(
      server.baseUrl,
      'POST',
      `/process/${fileId}?operation=blur`,
      { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '0' },
      [],
    );
    expect(answer.status, answer.body).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ status: 'queued', operations: [{ operation: 'blur', intensity: 2 }] });
    expect(answer.headers['x-content-type-options']).toBe('nosniff');
  });

  it('a chunked JSON body (no Content-Length) is refused past 64 KiB while it is still arriving, with Connection: close', async () => {
    // 72 KiB of a body that never ends: the answer must come from the bytes counted, not from the end.
    const start = '{"operations": [{"operation": "blur"}], "pad": "';
    const chunks = [start, ...Array.from({ length: 9 }, () => 'x'.repeat(8192))];
    const answer = await raw(
      server.baseUrl,
      'POST',
      `/process/${fileId}`,
      { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      chunks,
      { end: false },
    );
    expect(answer.status).toBe(413);
    expect(answer.headers.connection).toBe('close');
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'body_too_large', detail: 'the JSON body must be at most 65536 bytes' });
  });

  it('JSON nested 10 000 deep is a 400 json_too_deep, and the server lives on', async () => {
    const deep = `{"operations": [{"operation": "blur", "intensity": ${'['.repeat(10_000)}${']'.repeat(10_000)}}]}`;
    const answer = await raw(
      server.baseUrl,
      'POST',
      `/process/${fileId}`,
      { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      [deep.slice(0, 7000), deep.slice(7000)],
    );
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'json_too_deep' });
    expect((await fetchServer('/health')).status).toBe(200);
  });

  it('broken percent-encoding and repeated parameters in the request line are precise 400s with nosniff', async () => {
    const cases: Array<[string, string, string]> = [
      ['GET', '/status/%E0%A4%A', 'processing_id must be a UUID'],
      ['GET', '/list?limit=%E0%A4%A', 'limit must be an integer from 1 to 100, got "%E0%A4%A"'],
      ['GET', '/list?limit=1&limit=2', 'limit was given 2 times; it must be given once'],
      ['POST', `/process/${fileId}?operation=blur&operation=resize`, 'operation was given 2 times; it must be given once'],
    ];
    for (const [method, path, detail] of cases) {
      const answer = await raw(server.baseUrl, method, path, { 'content-length': '0' }, []);
      expect(answer.status, path).toBe(400);
      expect(answer.headers['content-type']).toBe('application/problem+json');
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect((JSON.parse(answer.body) as { detail: string }).detail).toContain(detail);
    }
  });
});
