/**
 * `POST /process` over in-memory ports: which body goes with which form. An empty body (whatever its
 * Content-Type, as curl's `-d ''` sends) is the query form; a JSON body is bounded in size and depth before
 * it is parsed; every other body is a 415 that says what is accepted; no shape of body is a 500.
 */
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/domain/json-body.js';
import { expectProblem, upload } from '../helpers/client.js';
import { noisyJpeg } from '../helpers/images.js';
import { memoryApp, type MemoryApp } from '../helpers/memory-app.js';

async function withUpload(): Promise<{ m: MemoryApp; fileId: string }> {
  const m = memoryApp();
  return { m, fileId: (await upload(m.send, await noisyJpeg(32, 24), 'body.jpg')).file_id };
}

const json = (body: BodyInit, contentType = 'application/json'): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': contentType },
  body,
});
const pipeline = JSON.stringify({ operations: [{ operation: 'blur', intensity: 3 }] });

/** A body streamed in chunks, as a chunked upload arrives: no Content-Length to trust. */
function chunked(text: string, chunkBytes = 4096): RequestInit {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, (offset += chunkBytes)));
    },
  });
  return { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit;
}

describe('POST /process: the query form takes an empty body', () => {
  it.each([
    ["curl -d '' (an empty form body)", { 'content-type': 'application/x-www-form-urlencoded' }, ''],
    ['an empty text body', { 'content-type': 'text/plain' }, ''],
    ['an empty multipart body', { 'content-type': 'multipart/form-data; boundary=x' }, ''],
    ['an empty body with no Content-Type', {}, ''],
    ['no body at all', { 'content-type': 'application/x-www-form-urlencoded' }, undefined],
  ] as const)('%s is the query form', async (_label, headers, body) => {
    const { m, fileId } = await withUpload();
    const response = await m.send(`/process/${fileId}?operation=blur&intensity=3`, { method: 'POST', headers, body });
    const accepted = (await response.json()) as { status: string; operations: unknown };
    expect(response.status, JSON.stringify(accepted)).toBe(200);
    expect(accepted).toMatchObject({ status: 'queued', operations: [{ operation: 'blur', intensity: 3 }] });
  });

  it.each([
    ['a form body', 'application/x-www-form-urlencoded', 'operation=blur'],
    ['a text body', 'text/plain', 'hello'],
    ['a +json type that is not application/json', 'application/merge-patch+json', pipeline],
    ['a type that only starts like application/json', 'application/jsonp', pipeline],
  ])('%s is a 415 naming what is accepted', async (_label, contentType, body) => {
    const { m, fileId } = await withUpload();
    const response = await m.send(`/process/${fileId}?operation=blur`, json(body, contentType));
    const problem = await expectProblem(response, 415, 'unsupported_media_type');
    expect(problem.detail).toMatch(/must be application\/json/);
    expect(problem.detail).toMatch(/query form \(\?operation=blur\) takes an empty body/);
    expect(problem.detail).toContain(JSON.stringify(contentType));
    expect(response.headers.get('accept-post')).toBe('application/json');
  });

  it('a body with no Content-Type is a 415 that says so', async () => {
    const { m, fileId } = await withUpload();
    const problem = await expectProblem(
      await m.send(`/process/${fileId}?operation=blur`, { method: 'POST', body: new Uint8Array([1, 2, 3]) }),
      415,
      'unsupported_media_type',
    );
    expect(problem.detail).toMatch(/got a 3-byte body with no Content-Type/);
  });
});

describe('POST /process: JSON bodies', () => {
  it.each(['application/json; charset=utf-8', 'Application/JSON', 'application/json ; charset="UTF-8"'])(
    'accepts Content-Type %s',
    async (contentType) => {
      const { m, fileId } = await withUpload();
      const response = await m.send(`/process/${fileId}`, json(pipeline, contentType));
      expect(response.status, await response.clone().text()).toBe(200);
      expect(await response.json()).toMatchObject({ operations: [{ operation: 'blur', intensity: 3 }] });
    },
  );

  it.each([
    ['empty', ''],
    ['blank', ' \r\n\t '],
  ])('an %s application/json body is a 400 saying what to send', async (_label, body) => {
    const { m, fileId } = await withUpload();
    const problem = await expectProblem(await m.send(`/process/${fileId}?operation=blur`, json(body)), 400, 'empty_body');
    expect(problem.detail).toMatch(/Content-Type is application\/json but the body is empty: send a pipeline like \{"operations"/);
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} before parsing, naming the limit (10 000 deep was a 500)`, async () => {
    const { m, fileId } = await withUpload();
    const deepValue = `{"operations":[{"operation":"blur","intensity":${'['.repeat(10_000)}${']'.repeat(10_000)}}]}`;
    const deepBody = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    for (const body of [deepValue, deepBody]) {
      const problem = await expectProblem(await m.send(`/process/${fileId}`, json(body)), 400, 'json_too_deep');
      expect(problem.detail).toBe(`the body nests lists and objects more than ${MAX_JSON_DEPTH} deep (the limit); a pipeline needs 3`);
    }
  });

  it('counts depth outside strings only, and allows exactly the limit', async () => {
    const { m, fileId } = await withUpload();
    // Brackets inside a string (and escaped quotes) are text, not nesting.
    const inString = JSON.stringify({ operations: [{ operation: 'blur' }], format: `\\"${'['.repeat(100)}` });
    const problem = await expectProblem(await m.send(`/process/${fileId}`, json(inString)), 400, 'invalid_request');
    expect(problem.detail).toMatch(/^format must be one of/);
    // The body's own object is level 1: a value nested to level MAX_JSON_DEPTH is parsed (and refused as a value).
    const atLimit = `{"operations":${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}}`;
    await expectProblem(await m.send(`/process/${fileId}`, json(atLimit)), 400, 'invalid_request');
    const overLimit = `{"operations":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`;
    await expectProblem(await m.send(`/process/${fileId}`, json(overLimit)), 400, 'json_too_deep');
  });

  it('bounds the size of a chunked body (no Content-Length) at 64 KiB too', async () => {
    const { m, fileId } = await withUpload();
    const padded = (bytes: number) => `${pipeline.slice(0, -1)}${' '.repeat(bytes - pipeline.length)}}`;
    const over = await m.send(`/process/${fileId}`, chunked(padded(64 * 1024 + 1)));
    expect(over.headers.get('connection')).toBe('close');
    await expectProblem(over, 413, 'body_too_large');
    const within = await m.send(`/process/${fileId}`, chunked(padded(64 * 1024)));
    expect(within.status, await within.clone().text()).toBe(200);
  });

  it('a compressed body is a 415 saying it must be sent as is (it is not inflated: no zip bombs)', async () => {
    const { m, fileId } = await withUpload();
    const response = await m.send(`/process/${fileId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: new Uint8Array([0x1f, 0x8b, 8, 0]),
    });
    const problem = await expectProblem(response, 415, 'unsupported_content_encoding');
    expect(problem.detail).toBe('the body must be sent as is: Content-Encoding "gzip" is not accepted');
    expect(response.headers.get('accept-encoding')).toBe('identity');
    const plain = await m.send(`/process/${fileId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'identity' },
      body: pipeline,
    });
    expect(plain.status).toBe(200);
  });

  it('a body that breaks off (the client gone mid-body) is a 400, not a 500', async () => {
    const { m, fileId } = await withUpload();
    const breaking = (chunks: number) => {
      let sent = 0;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < chunks) controller.enqueue(new TextEncoder().encode('{"operations": '));
          else controller.error(new Error('connection reset'));
        },
      });
    };
    // Read by the size limit (no Content-Length), and by the handler (with one).
    const unsized = { method: 'POST', headers: { 'content-type': 'application/json' }, body: breaking(2), duplex: 'half' } as RequestInit;
    await expectProblem(await m.send(`/process/${fileId}`, unsized), 400, 'body_incomplete');
    const sized = {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '1000' },
      body: breaking(2),
      duplex: 'half',
    } as RequestInit;
    await expectProblem(await m.send(`/process/${fileId}`, sized), 400, 'body_incomplete');
  });

  it('a body that is not UTF-8 is a 400 that says so', async () => {
    const { m, fileId } = await withUpload();
    const body = new Uint8Array([
      ...new TextEncoder().encode('{"operations":[{"operation":"blur'),
      0xff,
      0xfe,
      ...new TextEncoder().encode('"}]}'),
    ]);
    const problem = await expectProblem(await m.send(`/process/${fileId}`, json(body)), 400, 'malformed_json');
    expect(problem.detail).toBe('the body is not valid UTF-8; a JSON body must be UTF-8');
  });

  it('a body that is not JSON says where, and never quotes the body', async () => {
    const { m, fileId } = await withUpload();
    const secret = 'SECRET-TEXT-FROM-THE-BODY';
    const cases: Array<[string, RegExp]> = [
      [`{"operations": "${secret}" x}`, /^the body is not valid JSON \(at character \d+\)$/],
      ['{"operations": [', /^the body is not valid JSON \(it ends too soon\)$/],
      [`{"${secret}": }`, /^the body is not valid JSON/],
    ];
    for (const [body, detail] of cases) {
      const problem = await expectProblem(await m.send(`/process/${fileId}`, json(body)), 400, 'malformed_json');
      expect(problem.detail, body).toMatch(detail);
      expect(JSON.stringify(problem)).not.toContain(secret);
    }
  });

  it.each([
    ['null', 'got null'],
    ['42', 'got 42'],
    ['"blur"', 'got "blur"'],
    ['[{"operation": "blur"}]', 'got [{"operation":"blur"}]'],
    ['true', 'got true'],
  ])('a body that is %s, not an object, is a 400 naming the body', async (body, got) => {
    const { m, fileId } = await withUpload();
    const problem = await expectProblem(await m.send(`/process/${fileId}`, json(body)), 400, 'invalid_request');
    expect(problem.errors).toEqual([
      { path: 'body', message: `the body must be a JSON object like {"operations": [{"operation": "blur"}]}, ${got}` },
    ]);
  });

  it('refuses __proto__ and constructor keys, in the body and in each operation', async () => {
    const { m, fileId } = await withUpload();
    const top = await expectProblem(
      await m.send(`/process/${fileId}`, json('{"__proto__": {"quality": 1}, "operations": [{"operation": "blur"}]}')),
      400,
      'invalid_request',
    );
    expect(top.errors).toEqual([
      {
        path: '__proto__',
        message: '__proto__: not a field of the request (it takes operations, format, quality, keep_metadata, notify_url)',
      },
    ]);
    const inner = await expectProblem(
      await m.send(`/process/${fileId}`, json('{"operations": [{"operation": "blur", "constructor": {"intensity": 50}}]}')),
      400,
      'invalid_request',
    );
    expect(inner.errors).toEqual([
      { path: 'operations.0.constructor', message: 'constructor is not a parameter of blur (it takes intensity)' },
    ]);
  });
});

describe('POST /process: the query form', () => {
  it('refuses __proto__ as a parameter instead of dropping it unseen', async () => {
    const { m, fileId } = await withUpload();
    const problem = await expectProblem(
      await m.send(`/process/${fileId}?operation=blur&__proto__=5`, { method: 'POST' }),
      400,
      'invalid_request',
    );
    expect(problem.errors).toEqual([{ path: '__proto__', message: '__proto__ is not a parameter of blur (it takes intensity)' }]);
  });
});
