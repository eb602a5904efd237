/**
 * Several processes on one set of folders (a Compose volume, EFS): a process that starts must not touch what
 * another is still writing. Reproduces the fault where every start deleted all partial files: an upload still
 * streaming to another process was destroyed (its client got a 415 for a valid JPEG), and so were result writes.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readWhole } from '../../src/adapters/byte-tap.js';
import { DiskStore } from '../../src/adapters/disk-store.js';
import { processToBytes } from '../helpers/client.js';
import { look, noisyJpeg } from '../helpers/images.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';

const started: ServerProcess[] = [];
const folders: string[] = [];
afterAll(async () => {
  await Promise.all(started.map((server) => server.stop('SIGKILL')));
  await Promise.all([...folders, ...started.map((server) => server.dir)].map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Files (not folders) anywhere under `dir`. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  const files: string[] = [];
  for (const entry of entries) if ((await stat(join(dir, entry)).catch(() => undefined))?.isFile()) files.push(entry);
  return files;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('processes sharing UPLOAD_DIR and PROCESSED_DIR', () => {
  it('a second process starting while an upload streams to the first leaves that upload whole', async () => {
    const shared = await mkdtemp(join(tmpdir(), 'shared-folders-'));
    folders.push(shared);
    const env = { UPLOAD_DIR: join(shared, 'uploads'), PROCESSED_DIR: join(shared, 'processed') };
    const first = await startServer(env);
    started.push(first);
    const photo = await noisyJpeg(1200, 900);

    // Half of the upload now; the rest once the second process is up.
    const boundary = 'sharedFoldersBoundary';
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const body = Buffer.concat([head, photo, tail]);
    const half = head.length + Math.floor(photo.length / 2);
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        `${first.baseUrl}/upload`,
        { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length } },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.write(body.subarray(0, half));
      void until('the second process', async () => (started.length === 2 ? true : undefined), 20_000).then(
        () => req.end(body.subarray(half)),
        reject,
      );
    });
    const staged = await until('the first half to be staged', async () => {
      const files = await filesUnder(join(shared, 'uploads', '.staging'));
      return files.length === 1 ? files[0] : undefined;
    });

    const second = await startServer(env);
    started.push(second);
    expect(second.output()).toContain('"listening"');
    // The second process did not touch the first one's staged upload...
    expect(await filesUnder(join(shared, 'uploads', '.staging'))).toEqual([staged]);
    // ...which completes whole, and both processes can work from the shared folders.
    const { status, text } = await answer;
    expect(status, text).toBe(200);
    const file = JSON.parse(text) as { file_id: string; sha256: string; width: number };
    expect(file).toMatchObject({ sha256: createHash('sha256').update(photo).digest('hex'), width: 1200 });
    const send = (path: string, init?: RequestInit) => fetch(`${second.baseUrl}${path}`, init);
    const result = await processToBytes(send, photo, 'again.jpg', 'operation=resize&width=300');
    expect((await look(result.bytes)).width).toBe(300);
  });

  it('a second store opened while the first writes a result leaves the write whole', async () => {
    const shared = await mkdtemp(join(tmpdir(), 'shared-store-'));
    folders.push(shared);
    const dirs = { uploadDir: join(shared, 'uploads'), processedDir: join(shared, 'processed') };
    const first = await DiskStore.open({ ...dirs, instanceId: 'task-a' });
    const bytes = Buffer.alloc(200 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 251;
    const writing = first.writeResult('big.png', bytes);
    // The write is under way: its partial file is in the first store's own staging folder.
    await until('the partial result file', async () =>
      (await filesUnder(join(shared, 'processed', '.staging', 'task-a'))).length ? true : undefined,
    );
    const second = await DiskStore.open({ ...dirs, instanceId: 'task-b' });
    const written = await writing;
    expect(written.sizeBytes).toBe(bytes.length);
    const stored = await second.openResult('big.png');
    expect(stored?.sizeBytes).toBe(bytes.length);
    expect((await readWhole(stored!)).equals(bytes)).toBe(true);
  });
});
