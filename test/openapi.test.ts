/**
 * The OpenAPI document as a contract: exact where the linters cannot tell (ids, codes, security, shared
 * errors), docs/errors.md in step with the vocabulary, and the answer checker the contract suite uses
 * failing when the document is wrong.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { errorsMarkdown, ERRORS_DOC } from '../scripts/openapi-errors.js';
import { OPEN_PATHS } from '../src/access.js';
import { codeForHttpStatus, codesForStatus, ERROR_CODE_NAMES, ERROR_CODES } from '../src/domain/error-codes.js';
import { memoryApp } from './helpers/memory-app.js';
import { multipart } from './helpers/client.js';
import { noisyJpeg } from './helpers/images.js';
import { answerChecker } from './helpers/openapi-check.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a JSON document walked freely

async function documentOf(m = memoryApp()): Promise<Json> {
  return (await (await m.send('/openapi.json')).json()) as Json;
}

const operations = (doc: Json) =>
  Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json).map(([method, op]) => ({ path, method, op: op as Json })),
  );

describe('the error-code vocabulary', () => {
  it('docs/errors.md is what `npm run docs:errors` writes, one row per code', async () => {
    const page = await readFile(ERRORS_DOC, 'utf8');
    expect(page, 'run npm run docs:errors').toBe(errorsMarkdown());
    const listed = [...page.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((match) => match[1]);
    expect(listed).toEqual(ERROR_CODE_NAMES);
  });

  it('is the enum of Problem.code and of a failed job’s error.code', async () => {
    const doc = await documentOf();
    expect(doc.components.schemas.ErrorCode.enum).toEqual(ERROR_CODE_NAMES);
    expect(doc.components.schemas.Problem.properties.code).toEqual({ $ref: '#/components/schemas/ErrorCode' });
    expect(doc.components.schemas.JobStatus.properties.error.properties.code).toEqual({ $ref: '#/components/schemas/ErrorCode' });
    for (const code of ERROR_CODE_NAMES) expect(ERROR_CODES[code].meaning.length, code).toBeGreaterThan(10);
  });

  it("names the HTTP layer's refusals with codes of their status (no http_<status> outside the vocabulary)", () => {
    expect(codeForHttpStatus(400, 'Malformed JSON in request body')).toBe('malformed_json');
    expect(codeForHttpStatus(400, 'Malformed FormData request.')).toBe('bad_request');
    for (const status of [401, 404, 405, 408, 413, 415, 429])
      expect(codesForStatus(status), String(status)).toContain(codeForHttpStatus(status));
    // Any other status is not a refusal the app expects: onError answers it as internal_error.
    expect(codeForHttpStatus(418)).toBeUndefined();
  });

  it('gives each documented problem status the codes of that status', async () => {
    const doc = await documentOf();
    for (const [name, schema] of Object.entries(doc.components.schemas as Json)) {
      const status = /^Problem(\d{3})$/.exec(name)?.[1];
      if (!status) continue;
      expect((schema as Json).allOf[1].properties.code.enum, name).toEqual(codesForStatus(Number(status)));
    }
  });
});

describe('the OpenAPI document', () => {
  it('has a unique operationId on every operation, declared tags, servers', async () => {
    const doc = await documentOf();
    const ops = operations(doc);
    const ids = ops.map(({ op }) => op.operationId as string);
    expect(ids.every(Boolean)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const declared = new Set((doc.tags as Json[]).map((tag) => tag.name as string));
    for (const { path, op } of ops) for (const tag of op.tags as string[]) expect(declared.has(tag), `${path} tag ${tag}`).toBe(true);
    expect(doc.servers).toEqual([{ url: '/', description: 'This service' }]);
  });

  it('asks for the API key on every route but the open ones, and documents what the access check answers', async () => {
    const doc = await documentOf();
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ apiKey: [] }]);
    for (const { path, method, op } of operations(doc)) {
      const open = OPEN_PATHS.has(path);
      expect(op.security, `${method} ${path}`).toEqual(open ? [] : undefined);
      const statuses = Object.keys(op.responses as Json);
      expect(statuses, `${method} ${path}`).toContain('500');
      if (!open) expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(['401', '429', '503']));
      for (const [status, response] of Object.entries(op.responses as Json)) {
        expect((response as Json).headers?.['X-Request-Id'], `${method} ${path} ${status}`).toEqual({
          $ref: '#/components/headers/X-Request-Id',
        });
        if (['429', '503', '507'].includes(status) && open === false)
          expect((response as Json).headers['Retry-After'], `${method} ${path} ${status}`).toBeDefined();
      }
    }
  });

  it('gives every id a pattern that matches real UUIDs, in either case, and its own example', async () => {
    const doc = await documentOf();
    const ids = operations(doc).flatMap(({ op }) => ((op.parameters ?? []) as Json[]).filter((p) => p.in === 'path'));
    expect(ids.length).toBeGreaterThanOrEqual(4);
    for (const id of ids) {
      const pattern = new RegExp(id.schema.pattern as string, 'u');
      for (const value of [crypto.randomUUID(), crypto.randomUUID().toUpperCase(), id.schema.example, id.example])
        expect(value, id.name).toMatch(pattern);
      expect('not-a-uuid').not.toMatch(pattern);
    }
  });

  it('types every query parameter, with an example that is within its bounds', async () => {
    const doc = await documentOf();
    const query = operations(doc).flatMap(({ op }) => ((op.parameters ?? []) as Json[]).filter((p) => p.in === 'query'));
    expect([...new Set(query.map((p) => p.name))].sort()).toEqual(
      [
        'cursor',
        'fit',
        'format',
        'intensity',
        'keep_metadata',
        'limit',
        'operation',
        'quality',
        'wait',
        'width',
        'height',
        'without_enlargement',
        'notify_url',
      ].sort(),
    );
    for (const { name, schema } of query) {
      expect(schema.example, name).toBeDefined();
      if (schema.type === 'integer' || schema.type === 'number') {
        expect(schema.example, name).toBeGreaterThanOrEqual(schema.minimum as number);
        expect(schema.example, name).toBeLessThanOrEqual(schema.maximum as number);
      }
      if (schema.enum) expect(schema.enum, name).toContain(schema.example);
    }
    const types = Object.fromEntries(query.map((p) => [p.name, p.schema.type]));
    expect(types).toMatchObject({
      width: 'integer',
      height: 'integer',
      quality: 'integer',
      limit: 'integer',
      wait: 'integer',
      intensity: 'number',
      keep_metadata: 'boolean',
      without_enlargement: 'boolean',
    });
  });

  it('answers the values its examples send: an empty cursor is the first page', async () => {
    const m = memoryApp();
    expect((await m.send('/list?limit=20&cursor=')).status).toBe(200);
    expect((await m.send(`/status/${crypto.randomUUID()}?wait=0`)).status).toBe(404);
  });
});

describe('the answer checker', () => {
  async function uploadAnswer(m: ReturnType<typeof memoryApp>) {
    return m.send('/upload', { method: 'POST', body: multipart(await noisyJpeg(16, 16), 'a.jpg') });
  }

  it('accepts real answers, problems and unknown routes included', async () => {
    const m = memoryApp();
    const check = answerChecker((await documentOf(m)) as never);
    await check.check('POST', '/upload', await uploadAnswer(m));
    await check.check('GET', '/list?limit=0', await m.send('/list?limit=0'));
    await check.check('GET', '/nope', await m.send('/nope'));
    await check.check('GET', `/download/${crypto.randomUUID()}`, await m.send(`/download/${crypto.randomUUID()}`));
  });

  it('fails on an undocumented status', async () => {
    const m = memoryApp();
    const doc = await documentOf(m);
    delete doc.paths['/list'].get.responses['400'];
    await expect(answerChecker(doc as never).check('GET', '/list?limit=0', await m.send('/list?limit=0'))).rejects.toThrow(
      /status 400 is not documented for GET \/list/,
    );
  });

  it('fails on a body the schema does not describe', async () => {
    const m = memoryApp();
    const doc = await documentOf(m);
    doc.components.schemas.UploadedFile.properties.size_bytes = { type: 'string' };
    await expect(answerChecker(doc as never).check('POST', '/upload', await uploadAnswer(m))).rejects.toThrow(/size_bytes must be string/);
  });

  it('fails on a problem code its status does not have, and on an undocumented Content-Type', async () => {
    const m = memoryApp();
    const doc = await documentOf(m);
    const check = answerChecker(doc as never);
    const problem = (code: string) =>
      new Response(JSON.stringify({ type: `/problems/${code}`, title: 'Not Found', status: 404, code, detail: 'x', request_id: 'r' }), {
        status: 404,
        headers: { 'Content-Type': 'application/problem+json' },
      });
    await check.check('GET', `/status/${crypto.randomUUID()}`, problem('job_not_found'));
    await expect(check.check('GET', `/status/${crypto.randomUUID()}`, problem('queue_full'))).rejects.toThrow(
      /code must be equal to one of the allowed values/,
    );
    await expect(check.check('GET', `/status/${crypto.randomUUID()}`, problem('no_such_code'))).rejects.toThrow(/does not match/);
    const html = new Response('<p>hi</p>', { status: 200, headers: { 'Content-Type': 'text/html' } });
    await expect(check.check('GET', '/list', html)).rejects.toThrow(/Content-Type "text\/html" is not documented/);
  });

  it('fails on a documented header with a value outside its schema', async () => {
    const doc = await documentOf();
    const answer = new Response(
      JSON.stringify({
        type: '/problems/queue_full',
        title: 'Service Unavailable',
        status: 503,
        code: 'queue_full',
        detail: 'x',
        request_id: 'r',
      }),
      {
        status: 503,
        headers: { 'Content-Type': 'application/problem+json', 'Retry-After': 'soon' },
      },
    );
    await expect(answerChecker(doc as never).check('GET', '/list', answer)).rejects.toThrow(/header Retry-After/);
  });
});
