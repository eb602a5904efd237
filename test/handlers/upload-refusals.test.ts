/**
 * Every refusal of an upload over the memory store, with bodies streamed as a client sends them: the
 * documented problem, and afterwards the store holds no byte more than before (staged or reserved). Also a
 * body that stalls, a client gone mid-body, the cap on uploads at once, and a store out of space (507).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../helpers/client.js';
import { memoryApp, type MemoryApp } from '../helpers/memory-app.js';
import { CONTENT_TYPE, eventually, formBody, inChunks, refusals, type Refusal } from '../helpers/refusals.js';

const MAX_FILE_SIZE = 200_000;
const STORE_BYTES = 8 * 1024 * 1024;
const future = () => new Date(Date.now() + 3600_000);
let table: Refusal[];

beforeAll(async () => {
  table = await refusals(MAX_FILE_SIZE);
});

/** A body that yields `chunks` and then, unless told to `end`, stays open until `fail` is called. */
function streamed(chunks: Buffer[], { end = true } = {}) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      for (const chunk of chunks) c.enqueue(new Uint8Array(chunk));
      if (end) c.close();
    },
  });
  return { body, fail: () => controller.error(new Error('the client went away')) };
}

const post = (m: MemoryApp, body: ReadableStream<Uint8Array>) =>
  m.send('/upload', { method: 'POST', headers: { 'content-type': CONTENT_TYPE }, body, duplex: 'half' } as RequestInit);

/** The store back to empty: nothing staged, nothing reserved by a stage still running. */
async function nothingLeft(m: MemoryApp, storeBytes = STORE_BYTES): Promise<void> {
  await eventually(
    async () => (await m.store.freeBytes()) === storeBytes,
    async () => `${storeBytes - (await m.store.freeBytes())} bytes still held`,
  );
  expect((await m.store.sweep(new Date(0), future())).staged).toBe(0);
}

describe('upload refusals over the memory store', () => {
  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])('refusal %i leaves no byte in the store', async (index) => {
    const refusal = table[index]!;
    const m = memoryApp({ maxFileSize: MAX_FILE_SIZE, storeBytes: STORE_BYTES });
    const response = await post(m, streamed(refusal.chunks).body);
    await expectProblem(response, refusal.status, refusal.code);
    await nothingLeft(m);
  });

  it('a client gone mid-body leaves no byte in the store', async () => {
    const m = memoryApp({ maxFileSize: MAX_FILE_SIZE, storeBytes: STORE_BYTES });
    const body = streamed(
      inChunks(formBody([{ name: 'file', filename: 'gone.jpg', bytes: Buffer.alloc(150_000, 1) }]).subarray(0, 100_000), 16_384),
      { end: false },
    );
    const answer = post(m, body.body);
    await eventually(
      async () => (await m.store.freeBytes()) < STORE_BYTES,
      () => 'nothing staged yet',
    );
    body.fail();
    await expectProblem(await answer, 400, 'upload_interrupted');
    await nothingLeft(m);
  });

  it('a body that stalls is a 408 upload_timeout with Connection: close, and leaves nothing', async () => {
    const m = memoryApp({ maxFileSize: MAX_FILE_SIZE, storeBytes: STORE_BYTES, receiverLimits: { idleSeconds: 1 } });
    const body = streamed([formBody([{ name: 'file', filename: 'stall.jpg', bytes: Buffer.alloc(150_000, 2) }]).subarray(0, 80_000)], {
      end: false,
    });
    const response = await post(m, body.body);
    const problem = await expectProblem(response, 408, 'upload_timeout');
    expect(problem.detail).toMatch(/no bytes of the upload arrived for 1 s, the limit \(UPLOAD_IDLE_TIMEOUT_SECONDS\)/);
    expect(response.headers.get('connection')).toBe('close');
    await nothingLeft(m);
  });

  it('past MAX_CONCURRENT_UPLOADS an upload is a 503 too_many_uploads with Retry-After, and the held ones leave nothing once gone', async () => {
    const m = memoryApp({ maxFileSize: MAX_FILE_SIZE, storeBytes: STORE_BYTES, receiverLimits: { maxConcurrent: 2 } });
    const head = formBody([{ name: 'file', filename: 'held.jpg', bytes: Buffer.alloc(150_000, 3) }]).subarray(0, 30_000);
    const held = [streamed([head], { end: false }), streamed([head], { end: false })];
    const answers = held.map((body) => post(m, body.body));
    await eventually(
      async () => (await m.store.freeBytes()) <= STORE_BYTES - 2 * 20_000,
      () => 'the two are not staging yet',
    );
    const refused = await post(m, streamed(table[2]!.chunks).body);
    await expectProblem(refused, 503, 'too_many_uploads');
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.headers.get('connection')).toBe('close');
    for (const body of held) body.fail();
    for (const answer of answers) await expectProblem(await answer, 400, 'upload_interrupted');
    await nothingLeft(m);
    // Both slots are free again.
    await expectProblem(await post(m, streamed(table[2]!.chunks).body), 415, 'unsupported_extension');
  });

  it('a store out of space is a 507 storage_full with Retry-After, and what was staged is given back', async () => {
    const storeBytes = 100_000;
    const m = memoryApp({ maxFileSize: MAX_FILE_SIZE, storeBytes });
    const response = await post(
      m,
      streamed(inChunks(formBody([{ name: 'file', filename: 'big.jpg', bytes: Buffer.alloc(150_000, 4) }]), 16_384)).body,
    );
    await expectProblem(response, 507, 'storage_full');
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    await nothingLeft(m, storeBytes);
  });
});
