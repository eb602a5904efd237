/**
 * Refusals over in-memory ports: whatever shape a hostile request has (huge keys and values, repeated
 * parameters, broken percent-encoding, NUL bytes), the answer is a small problem naming the field, never
 * a 500 and never an echo of the payload.
 */
import { describe, expect, it } from 'vitest';
import { MAX_FIELD_ERRORS } from '../../src/domain/errors.js';
import { expectProblem, upload } from '../helpers/client.js';
import { noisyJpeg } from '../helpers/images.js';
import { memoryApp, type MemoryApp } from '../helpers/memory-app.js';

const MAX_PROBLEM_BYTES = 4096;
const huge = 'k'.repeat(60_000);

async function withUpload(): Promise<{ m: MemoryApp; fileId: string }> {
  const m = memoryApp();
  return { m, fileId: (await upload(m.send, await noisyJpeg(32, 24), 'refusals.jpg')).file_id };
}

const postJson = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

interface SmallProblem {
  detail: string;
  errors?: Array<{ path: string; message: string }>;
}

/** A 400 (or `status`) problem under 4 KB, whose every path and message is short. */
async function expectSmallProblem(response: Response, code = 'invalid_request', status = 400): Promise<SmallProblem> {
  const text = await response.clone().text();
  expect(new TextEncoder().encode(text).length, text.slice(0, 300)).toBeLessThan(MAX_PROBLEM_BYTES);
  const problem = (await expectProblem(response, status, code)) as unknown as SmallProblem;
  expect(problem.errors?.length ?? 0).toBeLessThanOrEqual(MAX_FIELD_ERRORS);
  for (const { path, message } of problem.errors ?? []) {
    expect(path.length, path).toBeLessThanOrEqual(64);
    expect(message.length, message).toBeLessThanOrEqual(200);
  }
  return problem;
}

describe('error echoes are cut short', () => {
  it('a 60 KB unknown key, in the body, in an operation or in the query, is echoed in 40 characters', async () => {
    const { m, fileId } = await withUpload();
    const cut = `"${'k'.repeat(36)}...`;
    const top = await expectSmallProblem(await m.send(`/process/${fileId}`, postJson({ operations: [{ operation: 'blur' }], [huge]: 1 })));
    expect(top.errors).toEqual([
      { path: cut, message: `${cut}: not a field of the request (it takes operations, format, quality, keep_metadata, notify_url)` },
    ]);
    const inner = await expectSmallProblem(
      await m.send(`/process/${fileId}`, postJson({ operations: [{ operation: 'blur', [huge]: 1 }] })),
    );
    expect(inner.errors).toEqual([{ path: `operations.0.${cut}`, message: `${cut} is not a parameter of blur (it takes intensity)` }]);
    const query = await expectSmallProblem(await m.send(`/process/${fileId}?operation=blur&${huge}=1`, { method: 'POST' }));
    expect(query.errors).toEqual([{ path: cut, message: `${cut} is not a parameter of blur (it takes intensity)` }]);
  });

  it('60 KB values (an operation name, a format, a number as text) are echoed in 40 characters', async () => {
    const { m, fileId } = await withUpload();
    for (const query of [`operation=${huge}`, `operation=grayscale&format=${huge}`, `operation=resize&width=${'9'.repeat(60_000)}`]) {
      const problem = await expectSmallProblem(await m.send(`/process/${fileId}?${query}`, { method: 'POST' }));
      expect(problem.detail, query.slice(0, 30)).toMatch(/, got "?[k9]{36,37}\.\.\.$/);
    }
  });

  it('many unknown keys are named three at a time and counted', async () => {
    const { m, fileId } = await withUpload();
    const keys = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`key${i}`, i]));
    const problem = await expectSmallProblem(
      await m.send(`/process/${fileId}`, postJson({ operations: [{ operation: 'resize', width: 10, ...keys }] })),
    );
    expect(problem.errors).toEqual([
      {
        path: 'operations.0.key0',
        message: 'key0, key1, key2 and 1997 more are not parameters of resize (it takes width, height, fit, without_enlargement)',
      },
    ]);
  });

  it(`lists at most ${MAX_FIELD_ERRORS} field errors and says how many there were`, async () => {
    const { m, fileId } = await withUpload();
    const long = huge.slice(0, 2000);
    const operations = Array.from({ length: 10 }, (_, i) => ({
      operation: 'resize',
      width: -i,
      height: `${long}${i}`,
      fit: '\u202e\u0000"\\'.repeat(100),
    }));
    const problem = await expectSmallProblem(
      await m.send(`/process/${fileId}`, postJson({ operations, format: long, quality: 0, keep_metadata: long })),
    );
    expect(problem.errors).toHaveLength(MAX_FIELD_ERRORS);
    expect(problem.detail).toMatch(/; and 30 more \(errors lists the first 10 of 33\)$/);
    // Control and bidi characters are echoed escaped, never raw.
    for (const text of [problem.detail, ...problem.errors!.flatMap((e) => [e.path, e.message])]) expect(text).toMatch(/^[\x20-\x7e]*$/);
  });

  it('hostile keys in every shape stay under 4 KB: quotes, backslashes, control, bidi and non-ASCII characters', async () => {
    const { m, fileId } = await withUpload();
    const nasty = ['"\\'.repeat(200), '\u0000\u0001'.repeat(200), '\u202e'.repeat(200), '🖼️零'.repeat(200)];
    const operations = nasty.map((key) => ({ operation: 'blur', [key]: 1, [`${key}x`]: 2 }));
    const body = Object.fromEntries([['operations', [...operations, ...operations.slice(0, 2)]], ...nasty.map((key) => [key, 1])]);
    const problem = await expectSmallProblem(await m.send(`/process/${fileId}`, postJson(body)));
    expect(problem.errors!.length).toBeGreaterThan(1);
  });

  it('a malformed id is quoted short, escaped', async () => {
    const m = memoryApp();
    for (const path of [`/status/${'%00'.repeat(40)}`, `/download/${'x'.repeat(5000)}`]) {
      const problem = await expectSmallProblem(await m.send(path));
      expect(problem.detail.length, path.slice(0, 20)).toBeLessThan(120);
    }
  });
});

describe('a parameter given more than once', () => {
  it.each<[string, string, string, number?]>([
    ['POST', '/process/{id}?operation=blur&operation=resize', 'operation'],
    ['POST', '/process/{id}?operation=resize&width=1&width=2', 'width'],
    ['POST', '/process/{id}?operation=blur&intensity=1&intensity=2&intensity=3', 'intensity', 3],
    ['GET', '/list?limit=1&limit=2', 'limit'],
    ['GET', '/list?cursor=a&cursor=b', 'cursor'],
    ['GET', '/status/{processing_id}?wait=1&wait=2', 'wait'],
  ])('%s %s names %s as given more than once', async (method, template, field, times = 2) => {
    const { m, fileId } = await withUpload();
    const path = template.replace('{id}', fileId).replace('{processing_id}', crypto.randomUUID());
    const problem = await expectSmallProblem(await m.send(path, { method }));
    expect(problem.errors).toEqual([{ path: field, message: `${field} was given ${times} times; it must be given once` }]);
    expect(problem.detail).toBe(`${field} was given ${times} times; it must be given once`);
  });
});

describe('request shapes that must never be a 500', () => {
  it('broken percent-encoding, NUL bytes and huge query strings are 400s naming the field', async () => {
    const { m, fileId } = await withUpload();
    const cases: Array<[string, string, string, RegExp]> = [
      ['GET', '/status/%E0%A4%A', 'invalid_request', /^processing_id must be a UUID like .*, got "%E0%A4%A"$/],
      ['GET', '/download/%E0%A4%A', 'invalid_request', /^processing_id must be a UUID/],
      ['POST', '/process/%E0%A4%A?operation=blur', 'invalid_request', /^file_id must be a UUID/],
      ['GET', '/status/%00', 'invalid_request', /^processing_id must be a UUID .*, got "\\u0000"$/],
      ['GET', '/list?limit=%E0%A4%A', 'invalid_limit', /^limit must be an integer from 1 to 100, got "%E0%A4%A"$/],
      ['GET', '/list?limit=1%00', 'invalid_limit', /^limit must be an integer from 1 to 100, got "1\\u0000"$/],
      ['GET', '/list?cursor=%ZZ%', 'invalid_cursor', /^cursor must be the next_cursor of a previous \/list page$/],
      ['GET', `/list?cursor=${'W'.repeat(100_000)}`, 'invalid_cursor', /^cursor must be/],
      ['GET', `/status/${crypto.randomUUID()}?wait=%FF`, 'invalid_wait', /^wait must be an integer from 0 to 30 \(seconds\), got "%FF"$/],
      ['POST', `/process/${fileId}?operation=%E0%A4%A`, 'invalid_request', /^operation must be one of .*, got "%E0%A4%A"$/],
      ['POST', `/process/${fileId}?operation=blur%00`, 'invalid_request', /^operation must be one of .*, got "blur\\u0000"$/],
      ['POST', `/process/${fileId}?operation=blur&%E0%A4%A=1`, 'invalid_request', /^"%E0%A4%A" is not a parameter of blur/],
      [
        'POST',
        `/process/${fileId}?operation=resize&width=${'1'.repeat(100_000)}`,
        'invalid_request',
        /^width must be an integer from 1 to 8192, got "1{36}\.\.\.$/,
      ],
      [
        'POST',
        `/process/${fileId}?operation=resize&height=1e400`,
        'invalid_request',
        /^height must be an integer from 1 to 8192, got "1e400"$/,
      ],
    ];
    for (const [method, path, code, detail] of cases) {
      const problem = await expectSmallProblem(await m.send(path, { method }), code);
      expect(problem.detail, path.slice(0, 60)).toMatch(detail);
    }
  });

  it('an unknown route with a huge path or an odd method is a short 404', async () => {
    const m = memoryApp();
    const problem = await expectSmallProblem(await m.send(`/${'a'.repeat(10_000)}`), 'not_found', 404);
    expect(problem.detail).toMatch(/^no route for GET \/a{96}\.\.\.$/);
    const odd = await expectSmallProblem(await m.send('/nope', { method: 'X'.repeat(1000) }), 'not_found', 404);
    expect(odd.detail).toBe(`no route for ${'X'.repeat(37)}... /nope`);
  });
});
