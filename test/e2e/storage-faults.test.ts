/**
 * Storage faults on a real file system: the server's folders on a small tmpfs that really fills up, then is
 * remounted read-only. Uploads and `POST /process` answer 507 storage_full or 503 storage_unavailable with
 * Retry-After, never a 500, leave nothing staged, and work again once the fault is gone.
 *
 * Mounting needs root; CI runs the suite as root, so a failed mount fails this file loudly rather than
 * skipping it. Every mount is undone in afterAll, even when a test failed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectProblem, multipart, upload } from '../helpers/client.js';
import { noisyJpeg } from '../helpers/images.js';
import { filesUnder } from '../helpers/raw-upload.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';

const MOUNT_BYTES = 8 * 1024 * 1024;
let home: string;
let mounted = false;
let server: ServerProcess;
let fileId: string;
let photo: Buffer;
const send = (path: string, init?: RequestInit) => fetch(`${server.baseUrl}${path}`, init);
const uploads = () => join(home, 'data', 'uploads');

function mount(...args: string[]): void {
  execFileSync('mount', args, { stdio: 'pipe' });
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'image-service-storage-'));
  try {
    execFileSync('mkdir', ['-p', join(home, 'data')]);
    mount('-t', 'tmpfs', '-o', `size=${MOUNT_BYTES}`, 'tmpfs', join(home, 'data'));
    mounted = true;
  } catch (error) {
    throw new Error(`this test mounts a tmpfs and needs root (CI runs as root): ${String((error as { stderr?: Buffer }).stderr ?? error)}`);
  }
  const data = join(home, 'data');
  server = await startServer(
    { UPLOAD_DIR: join(data, 'uploads'), PROCESSED_DIR: join(data, 'processed'), STATE_DIR: join(data, 'state'), WORKER_CONCURRENCY: '1' },
    home,
  );
  photo = await noisyJpeg(120, 90);
  fileId = (await upload(send, photo, 'before.jpg')).file_id;
});

afterAll(async () => {
  server?.child.kill('SIGKILL');
  await server?.exited;
  if (mounted) {
    // Lazily, should anything still hold a file there; the folder is then removed as usual.
    execFileSync('umount', ['-l', join(home, 'data')]);
  }
  await rm(home, { recursive: true, force: true });
});

let before: string[] = [];
beforeEach(async () => {
  before = await filesUnder(uploads());
});

async function nothingStaged(): Promise<void> {
  expect((await filesUnder(uploads())).filter((path) => !before.includes(path))).toEqual([]);
}

/** Fills the file system to the last byte with one file, and returns a function that frees it again. */
async function fill(): Promise<() => Promise<void>> {
  const path = join(home, 'data', 'filler');
  const handle = await open(path, 'w');
  const block = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) await handle.write(block);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  }
  try {
    for (;;) await handle.write(block.subarray(0, 1));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  }
  await handle.close();
  const { bavail } = await statfs(join(home, 'data'));
  expect(bavail).toBe(0);
  return () => rm(path, { force: true });
}

describe('a full disk', () => {
  it('an upload is a 507 storage_full with Retry-After, and leaves nothing staged; it works again once space is free', async () => {
    const free = await fill();
    try {
      const response = await send('/upload', { method: 'POST', body: multipart(photo, 'full.jpg') });
      await expectProblem(response, 507, 'storage_full');
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
      await nothingStaged();
    } finally {
      await free();
    }
    await upload(send, photo, 'after.jpg');
  });

  it('POST /process is a 507 storage_full with Retry-After, never a 500; it works again once space is free', async () => {
    const free = await fill();
    try {
      const response = await send(`/process/${fileId}?operation=grayscale`, { method: 'POST' });
      await expectProblem(response, 507, 'storage_full');
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    } finally {
      await free();
    }
    expect((await send(`/process/${fileId}?operation=blur&intensity=1`, { method: 'POST' })).status).toBe(200);
  });
});

describe('a read-only disk', () => {
  async function readOnly<T>(run: () => Promise<T>): Promise<T> {
    mount('-o', 'remount,ro', join(home, 'data'));
    try {
      return await run();
    } finally {
      mount('-o', 'remount,rw', join(home, 'data'));
    }
  }

  it('an upload is a 503 storage_unavailable with Retry-After; it works again once writable', async () => {
    await readOnly(async () => {
      const response = await send('/upload', { method: 'POST', body: multipart(photo, 'ro.jpg') });
      await expectProblem(response, 503, 'storage_unavailable');
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    });
    await nothingStaged();
    await upload(send, photo, 'writable.jpg');
  });

  it('POST /process is a 503 storage_unavailable with Retry-After, never a 500', async () => {
    await readOnly(async () => {
      const response = await send(`/process/${fileId}?operation=sepia`, { method: 'POST' });
      await expectProblem(response, 503, 'storage_unavailable');
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    });
    expect((await send(`/process/${fileId}?operation=sepia&intensity=0.5`, { method: 'POST' })).status).toBe(200);
  });
});
