/**
 * Every refusal of an upload, at every point of its body, against the real server over sockets (the disk
 * store): the answer is the documented status as a problem document, and afterwards no byte of the upload is
 * left under UPLOAD_DIR (its own staging folder and partial files included). Also the deadlines, the cap on
 * uploads at once, a client gone mid-body, and a stop while an upload is arriving.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { filesUnder, rawUpload, uploadChunks, type Answer } from '../helpers/raw-upload.js';
import { eventually, formBody, inChunks, refusals, type Refusal } from '../helpers/refusals.js';
import { startServer, stopAll, type ServerProcess } from '../helpers/server-process.js';

const MAX_FILE_SIZE = 200_000;
const started: ServerProcess[] = [];
let server: ServerProcess;
let table: Refusal[];
const uploadDir = (s: ServerProcess) => join(s.dir, 'uploads');

beforeAll(async () => {
  server = await startServer({
    MAX_FILE_SIZE: String(MAX_FILE_SIZE),
    UPLOAD_IDLE_TIMEOUT_SECONDS: '1',
    UPLOAD_TIMEOUT_SECONDS: '4',
    MAX_CONCURRENT_UPLOADS: '2',
  });
  started.push(server);
  table = await refusals(MAX_FILE_SIZE);
});
afterAll(() => stopAll(started));

let before: string[] = [];
beforeEach(async () => {
  before = await filesUnder(uploadDir(server));
});

/** No new file under UPLOAD_DIR, soon: every upload here is refused, so none may stay, staged or not. */
async function nothingLeft(s: ServerProcess = server): Promise<void> {
  const left = async () => (await filesUnder(uploadDir(s))).filter((path) => !before.includes(path));
  await eventually(
    async () => (await left()).length === 0,
    async () => `left under UPLOAD_DIR: ${(await left()).join(', ')}`,
  );
}

function expectProblemAnswer(answer: Answer | string, status: number, code: string): Answer & { problem: Record<string, unknown> } {
  expect(typeof answer, `no answer: ${String(answer)}`).toBe('object');
  const got = answer as Answer;
  expect(got.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(got.body) as Record<string, unknown>;
  expect({ status: got.status, code: problem.code }, got.body).toEqual({ status, code });
  expect(problem.request_id).toBe(got.headers['x-request-id']);
  expect(problem.detail).toEqual(expect.any(String));
  return { ...got, problem };
}

/** Resolves once the server is staging `count` uploads (their files exist in its staging folder). */
const staging = (count: number) => {
  const staged = async () => (await filesUnder(join(uploadDir(server), '.staging'))).filter((path) => !before.includes(path));
  return eventually(
    async () => (await staged()).length >= count,
    async () => `staging holds ${(await staged()).length}`,
  );
};

describe('refusals of the content, over a socket', () => {
  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])('refusal %i leaves no byte under UPLOAD_DIR', async (index) => {
    const refusal = table[index]!;
    const answer = expectProblemAnswer(await uploadChunks(server.baseUrl, refusal.chunks), refusal.status, refusal.code);
    // Refusals of a body that may still be arriving close the connection instead of reading it to the end.
    if (refusal.status === 413 && refusal.code === 'file_too_large') expect(answer.headers.connection).toBe('close');
    await nothingLeft();
  });
});

describe('refusals of the sending, over a socket', () => {
  it('a client gone mid-body (socket destroyed) leaves no byte behind', async () => {
    const upload = rawUpload(server.baseUrl);
    const body = formBody([{ name: 'file', filename: 'gone.jpg', bytes: Buffer.alloc(150_000, 1) }]);
    await upload.send(inChunks(body.subarray(0, 100_000), 16_384));
    await staging(1);
    upload.req.destroy();
    await nothingLeft();
  });

  it('a body that stalls is answered 408 upload_timeout naming UPLOAD_IDLE_TIMEOUT_SECONDS, with Connection: close', async () => {
    const upload = rawUpload(server.baseUrl);
    await upload.send(
      inChunks(formBody([{ name: 'file', filename: 'stall.jpg', bytes: Buffer.alloc(150_000, 2) }]).subarray(0, 80_000), 16_384),
    );
    const answer = expectProblemAnswer(await upload.answer, 408, 'upload_timeout');
    expect(answer.problem.detail).toMatch(/for 1 s, the limit \(UPLOAD_IDLE_TIMEOUT_SECONDS\)/);
    expect(answer.headers.connection).toBe('close');
    expect(answer.afterMs).toBeLessThan(3500);
    upload.req.destroy();
    await nothingLeft();
  });

  it('a body that trickles past UPLOAD_TIMEOUT_SECONDS is answered 408 upload_timeout naming it', async () => {
    const upload = rawUpload(server.baseUrl);
    const body = formBody([{ name: 'file', filename: 'slow.jpg', bytes: Buffer.alloc(150_000, 3) }]);
    let answered = false;
    void upload.answer.then(() => (answered = true));
    // 1 KiB every 250 ms: never idle for a second, never done within four.
    for (let offset = 0; !answered && offset < body.length; offset += 1024) {
      await upload.send([body.subarray(offset, offset + 1024)]);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const answer = expectProblemAnswer(await upload.answer, 408, 'upload_timeout');
    expect(answer.problem.detail).toMatch(/longer than the limit of 4 s \(UPLOAD_TIMEOUT_SECONDS\)/);
    expect(answer.headers.connection).toBe('close');
    upload.req.destroy();
    await nothingLeft();
  });

  it('an upload past MAX_CONCURRENT_UPLOADS gets 503 too_many_uploads at once, unread, with Retry-After and Connection: close', async () => {
    const held = [rawUpload(server.baseUrl), rawUpload(server.baseUrl)];
    const head = formBody([{ name: 'file', filename: 'held.jpg', bytes: Buffer.alloc(150_000, 4) }]).subarray(0, 20_000);
    for (const upload of held) await upload.send([head]);
    await staging(2);
    // Keep the two alive (under the 1 s idle limit) while the third is refused.
    const keepAlive = setInterval(() => held.forEach((upload) => upload.req.write(Buffer.alloc(10, 4))), 200);
    try {
      const third = rawUpload(server.baseUrl, { contentLength: 5_000_000 });
      void third.send([formBody([{ name: 'file', filename: 'third.jpg', bytes: Buffer.alloc(1_000_000, 5) }])]);
      const answer = expectProblemAnswer(await third.answer, 503, 'too_many_uploads');
      expect(answer.problem.detail).toMatch(/2 uploads already, its limit \(MAX_CONCURRENT_UPLOADS\)/);
      expect(answer.headers['retry-after']).toMatch(/^\d+$/);
      expect(answer.headers.connection).toBe('close');
      expect(answer.afterMs).toBeLessThan(1000);
      third.req.destroy();
    } finally {
      clearInterval(keepAlive);
      for (const upload of held) upload.req.destroy();
    }
    await nothingLeft();
    // The slots are free again.
    expectProblemAnswer(
      await uploadChunks(server.baseUrl, table.find((refusal) => refusal.code === 'unsupported_format')!.chunks),
      415,
      'unsupported_format',
    );
    await nothingLeft();
  });

  it('SIGTERM while an upload is arriving: the stop cuts it at SHUTDOWN_TIMEOUT_SECONDS, removes its staged bytes, exits 0', async () => {
    const stopping = await startServer({ SHUTDOWN_TIMEOUT_SECONDS: '1' });
    started.push(stopping);
    const upload = rawUpload(stopping.baseUrl);
    await upload.send(
      inChunks(formBody([{ name: 'file', filename: 'stop.jpg', bytes: Buffer.alloc(300_000, 6) }]).subarray(0, 100_000), 16_384),
    );
    await eventually(
      async () => (await filesUnder(join(uploadDir(stopping), '.staging'))).length === 1,
      () => 'the upload is not staged',
    );
    stopping.child.kill('SIGTERM');
    expect(await stopping.exited).toBe(0);
    expect(typeof (await upload.answer)).toBe('string');
    // Gone before the process exited: nobody else would have removed them.
    expect(await filesUnder(uploadDir(stopping))).toEqual([]);
  });
});
