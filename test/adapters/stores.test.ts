/**
 * The same suite over the three stores (disk, memory, S3 against a real S3-protocol server): what the
 * ImageStore port promises, at the byte level, including the limit on a part boundary and several
 * processes sharing one store.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskStore } from '../../src/adapters/disk-store.js';
import { MemoryStore } from '../../src/adapters/memory-store.js';
import { S3Store } from '../../src/adapters/s3-store.js';
import { AppError } from '../../src/domain/errors.js';
import type { ImageStore } from '../../src/ports.js';
import { S3_CREDENTIALS, startS3, type TestS3 } from '../helpers/s3-server.js';

const MiB = 1024 * 1024;

/** `total` bytes of a repeatable pattern, in chunks of `size` (as a socket delivers them). */
function* chunks(total: number, size = 64 * 1024): Generator<Uint8Array> {
  for (let sent = 0; sent < total; sent += size) {
    const chunk = new Uint8Array(Math.min(size, total - sent));
    for (let i = 0; i < chunk.length; i++) chunk[i] = (sent + i) % 251;
    yield chunk;
  }
}
const whole = (total: number) => Buffer.concat([...chunks(total)]);
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const future = new Date(Date.now() + 3600_000);

interface StoreKind {
  name: string;
  /** A store for `instance`; the same `space` means the same folders or prefix (processes sharing a store). */
  open(instance: string, space: string): Promise<ImageStore>;
  /** Whether two instances can share one store (the memory store lives in one process). */
  shared: boolean;
}

let s3: TestS3;
const dirs: string[] = [];
beforeAll(async () => {
  s3 = await startS3();
  Object.assign(process.env, S3_CREDENTIALS);
});
afterAll(async () => {
  await s3?.stop();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const spaces = new Map<string, string>();
async function folder(space: string): Promise<string> {
  if (!spaces.has(space)) {
    const dir = await mkdtemp(join(tmpdir(), 'store-suite-'));
    dirs.push(dir);
    spaces.set(space, dir);
  }
  return spaces.get(space)!;
}

const kinds: StoreKind[] = [
  {
    name: 'disk',
    shared: true,
    open: async (instance, space) =>
      DiskStore.open({ uploadDir: join(await folder(space), 'u'), processedDir: join(await folder(space), 'p'), instanceId: instance }),
  },
  { name: 'memory', shared: false, open: async () => new MemoryStore({ maxBytes: 64 * MiB }) },
  {
    name: 'S3',
    shared: true,
    open: async (instance, space) =>
      S3Store.open({
        bucket: s3.bucket,
        prefix: `suite-${space}/`,
        instanceId: instance,
        region: 'us-east-1',
        endpoint: s3.endpoint,
        forcePathStyle: true,
      }),
  },
];

describe.each(kinds)('$name store', (kind) => {
  const fresh = () => kind.open('task-a', randomUUID().slice(0, 8));

  it('stages a stream, commits it, and opens it again byte for byte (stream and whole)', async () => {
    const store = await fresh();
    const bytes = whole(300_000);
    const staged = await store.stage(chunks(bytes.length), { maxBytes: 10 * MiB, headBytes: 1000 });
    expect({ size: staged.sizeBytes, sha256: staged.sha256, head: Buffer.from(staged.head).equals(bytes.subarray(0, 1000)) }).toEqual({
      size: bytes.length,
      sha256: sha(bytes),
      head: true,
    });
    await store.commitUpload(staged.stagingKey, 'file-1');
    const asStream = await store.openUpload('file-1');
    expect(asStream?.sizeBytes).toBe(bytes.length);
    const pieces: Uint8Array[] = [];
    for await (const piece of asStream!.body as unknown as AsyncIterable<Uint8Array>) pieces.push(piece);
    const streamed = Buffer.concat(pieces);
    expect(streamed.equals(bytes)).toBe(true);
    expect(Buffer.from(await (await store.openUpload('file-1'))!.bytes()).equals(bytes)).toBe(true);
    expect(await store.openStaged(staged.stagingKey)).toBeUndefined();
    await store.deleteUploads(['file-1']);
    expect(await store.openUpload('file-1')).toBeUndefined();
    await store.close();
  });

  it.each([
    ['exactly the limit, on a part boundary', 5 * MiB, 5 * MiB],
    ['two whole parts', 10 * MiB, 10 * MiB],
    ['an empty body', 0, MiB],
  ])('accepts %s', async (_label, size, maxBytes) => {
    const store = await fresh();
    const staged = await store.stage(chunks(size), { maxBytes, headBytes: 32 });
    expect(staged.sizeBytes).toBe(size);
    const file = await store.openStaged(staged.stagingKey);
    expect(file?.sizeBytes).toBe(size);
    expect(sha(await file!.bytes())).toBe(sha(whole(size)));
    await store.discardStaged(staged.stagingKey);
    expect(await store.openStaged(staged.stagingKey)).toBeUndefined();
    await store.close();
  });

  it.each([
    ['one byte over, on a part boundary', 5 * MiB + 1, 5 * MiB],
    ['in the middle of a multipart upload', 9 * MiB, 7 * MiB],
  ])('refuses %s with a 413 and leaves nothing staged', async (_label, size, maxBytes) => {
    const store = await fresh();
    const refused = await store.stage(chunks(size), { maxBytes, headBytes: 32 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AppError);
    expect({ status: (refused as AppError).status, code: (refused as AppError).code }).toEqual({ status: 413, code: 'file_too_large' });
    // Whatever the store still held staged would be swept now, by any age: nothing is.
    expect((await store.sweep(new Date(0), future)).staged).toBe(0);
    await store.close();
  });

  it('a source that fails mid-stream (the client went away) rejects, and leaves nothing staged', async () => {
    const store = await fresh();
    async function* goneAfter(bytes: number) {
      yield* chunks(bytes);
      throw new Error('the client went away');
    }
    await expect(store.stage(goneAfter(300_000), { maxBytes: MiB, headBytes: 32 })).rejects.toThrow(/went away/);
    expect((await store.sweep(new Date(0), future)).staged).toBe(0);
    await store.close();
  });

  it('a source destroyed after its end was pushed but before it was read (a refused upload) settles, and leaves nothing once discarded', async () => {
    const store = await fresh();
    const source = new Readable({ read() {} });
    source.push(whole(100_000));
    source.push(null);
    const staged = store.stage(source, { maxBytes: MiB, headBytes: 32 });
    source.destroy();
    // Node's pipeline waited for ever on such a source (the disk store's staged file then stayed).
    const outcome = await Promise.race([
      staged.then(
        (done) => done,
        () => 'rejected' as const,
      ),
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 5000)),
    ]);
    expect(outcome).not.toBe('hung');
    if (typeof outcome === 'object') await store.discardStaged(outcome.stagingKey);
    expect((await store.sweep(new Date(0), future)).staged).toBe(0);
    await store.close();
  });

  it('writes results whole, refreshes them on touch, and sweeps only those older than the cutoff', async () => {
    const store = await fresh();
    const bytes = whole(200_000);
    expect(await store.writeResult('r1.png', bytes)).toEqual({ sizeBytes: bytes.length, sha256: sha(bytes) });
    expect(await store.hasResult('r1.png')).toBe(true);
    const opened = await store.openResult('r1.png');
    expect(opened?.sizeBytes).toBe(bytes.length);
    await opened!.body.cancel();
    expect(await store.hasResult('missing.png')).toBe(false);
    expect(await store.openResult('missing.png')).toBeUndefined();
    // S3 keeps ages in whole seconds: a cutoff well before the write keeps it, one after removes it.
    expect((await store.sweep(new Date(Date.now() - 60_000), new Date(0))).results).toBe(0);
    expect(await store.hasResult('r1.png')).toBe(true);
    expect((await store.sweep(future, new Date(0))).results).toBe(1);
    expect(await store.hasResult('r1.png')).toBe(false);
    await store.close();
  });

  it('tells its free space or that it has no such figure, without failing', async () => {
    const store = await fresh();
    const free = await store.freeBytes();
    expect(free === undefined || (Number.isInteger(free) && free > 0)).toBe(true);
    await store.close();
  });
});

describe('memory store byte budget', () => {
  it('a stage past the budget is a 507 storage_full, and what it had reserved is given back', async () => {
    const store = new MemoryStore({ maxBytes: 200_000 });
    const refused = await store.stage(chunks(300_000), { maxBytes: MiB, headBytes: 32 }).catch((error: unknown) => error);
    expect({ status: (refused as AppError).status, code: (refused as AppError).code }).toEqual({ status: 507, code: 'storage_full' });
    expect(await store.freeBytes()).toBe(200_000);
    expect((await store.sweep(new Date(0), future)).staged).toBe(0);
  });
});

describe.each(kinds.filter((kind) => kind.shared))('$name store shared by several processes', (kind) => {
  it("a second instance opening the same store leaves the first one's staged bytes alone; the age sweep removes them", async () => {
    const space = randomUUID().slice(0, 8);
    const first = await kind.open('task-a', space);
    const staged = await first.stage(chunks(100_000), { maxBytes: MiB, headBytes: 32 });
    const second = await kind.open('task-b', space);
    // The same id again (a restart in place) also leaves a stage touched in the last minute alone.
    const restarted = await kind.open('task-a', space);
    expect((await first.openStaged(staged.stagingKey))?.sizeBytes).toBe(100_000);
    // The sweep removes staged bytes by age, whoever staged them: a cutoff after now takes them.
    expect((await second.sweep(new Date(0), new Date(0))).staged).toBe(0);
    expect((await second.sweep(new Date(0), future)).staged).toBeGreaterThanOrEqual(1);
    expect(await first.openStaged(staged.stagingKey)).toBeUndefined();
    for (const store of [first, second, restarted]) await store.close();
  });
});
