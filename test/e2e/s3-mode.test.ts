/**
 * The real server process with its files in S3 (a real S3-protocol server the test starts): the seed flow,
 * a large upload sent as a multipart upload, and memory bounded while several large uploads stream through.
 */
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, processToBytes, upload } from '../helpers/client.js';
import { look, noisyJpeg } from '../helpers/images.js';
import { S3_CREDENTIALS, startS3, type TestS3 } from '../helpers/s3-server.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const UPLOADS = 12;
const UPLOAD_MIB = 9;

describe('S3 mode, a real server process', () => {
  let s3: TestS3;
  let server: ServerProcess;
  let client: S3Client;
  const prefix = `e2e-${Date.now()}`;

  beforeAll(async () => {
    s3 = await startS3();
    server = await startServer({ ...s3.env(prefix), WORKER_CONCURRENCY: '1' });
    expect(server.output()).toContain('"listening"');
    client = new S3Client({
      endpoint: s3.endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
    });
  });
  afterAll(async () => {
    client?.destroy();
    await server?.stop('SIGKILL');
    if (server) await rm(server.dir, { recursive: true, force: true });
    await s3?.stop();
  });

  const keys = async (under: string) => {
    const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/${under}` }));
    return (page.Contents ?? []).map((item) => item.Key!);
  };
  const send = (path: string, init?: RequestInit) => fetch(`${server.baseUrl}${path}`, init);

  it('runs the seed flow with uploads and results as objects under the prefix', async () => {
    const { file, job, bytes } = await processToBytes(
      send,
      await noisyJpeg(320, 240),
      'photo.jpg',
      'operation=resize&width=160&height=120',
    );
    expect((await look(bytes)).width).toBe(160);
    // Other tests of this file share the prefix, in any order: this upload is one of the objects.
    expect(await keys('uploads/')).toContain(`${prefix}/uploads/${file.file_id}`);
    expect((await keys('results/')).length).toBeGreaterThanOrEqual(1);
    expect(job.result?.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    const health = (await (await send('/health')).json()) as { status: string; services: { storage: unknown } };
    expect(health).toMatchObject({ status: 'healthy', services: { storage: { status: 'ok' } } });
  });

  it('takes an upload over one part size as a multipart upload, byte for byte', async () => {
    const big = await noisyJpeg(3600, 2600);
    expect(big.length).toBeGreaterThan(5 * 1024 * 1024);
    const file = await upload(send, big, 'big.jpg');
    expect(file.sha256).toBe(createHash('sha256').update(big).digest('hex'));
    // What S3 holds, read back, is the upload byte for byte (the parts were assembled in order).
    const stored = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/uploads/${file.file_id}` }));
    expect(
      createHash('sha256')
        .update(await stored.Body!.transformToByteArray())
        .digest('hex'),
    ).toBe(file.sha256);
    expect(await keys('staging/')).toEqual([]);
  });

  it.runIf(existsSync('/proc/self/status'))(
    `streams ${UPLOADS} concurrent ${UPLOAD_MIB} MB uploads, holding at most one part each more than the disk store`,
    async () => {
      // The same uploads against the same build on disk (which streams to a file), measured the same way.
      const disk = await startServer({ WORKER_CONCURRENCY: '1' });
      try {
        const onDisk = await uploadGrowth(disk);
        const inS3 = await uploadGrowth(server);
        console.log(
          `upload memory, ${UPLOADS} × ${UPLOAD_MIB} MB at once: disk store +${onDisk.toFixed(0)} MiB, S3 store +${inS3.toFixed(0)} MiB`,
        );
        // Streamed, an S3 upload holds one 5 MiB part at most beyond what a disk upload holds (plus the SDK's
        // garbage, which a busy machine collects later: the slack); held whole it would hold all 9 MiB, past
        // this bound by 108 - 88 = 20 MiB at least.
        expect(inS3).toBeLessThan(onDisk + UPLOADS * PART_MIB + 28);
      } finally {
        await disk.stop('SIGKILL');
        await rm(disk.dir, { recursive: true, force: true });
      }
      // Refused uploads leave nothing staged.
      expect(await keys('staging/')).toEqual([]);
    },
  );
});

const PART_MIB = 5;

/** How much a server's RSS grows while UPLOADS uploads of UPLOAD_MIB arrive at once (after one to warm up). */
async function uploadGrowth(target: ServerProcess): Promise<number> {
  const pid = target.child.pid!;
  // Random bytes behind no magic number: they pass the size limit, are stored, then fail the format check.
  const bytes = new Uint8Array(UPLOAD_MIB * 1024 * 1024).fill(0x33);
  const uploadAll = (count: number) =>
    Promise.all(
      Array.from({ length: count }, async () => {
        const form = new FormData();
        form.append('file', new Blob([bytes]), 'big.png');
        return (await fetch(`${target.baseUrl}/upload`, { method: 'POST', body: form })).status;
      }),
    );
  // One upload first, so lazily loaded code (the AWS SDK's) is not counted as upload memory.
  expect(await uploadAll(1)).toEqual([415]);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const idle = rssMiB(pid);
  let peak = idle;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 5);
  try {
    expect(await uploadAll(UPLOADS)).toEqual(Array(UPLOADS).fill(415));
  } finally {
    clearInterval(sampler);
  }
  return peak - idle;
}

describe('S3 mode when S3 is unreachable', () => {
  it('answers uploads 503 storage_unavailable with Retry-After, and /health says the storage is in error', async () => {
    const s3 = await startS3();
    const server = await startServer({ ...s3.env(), WORKER_CONCURRENCY: '1' });
    try {
      expect(server.output()).toContain('"listening"');
      await s3.stop();
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(await noisyJpeg(64, 48))]), 'photo.jpg');
      const response = await fetch(`${server.baseUrl}/upload`, { method: 'POST', body: form });
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
      await expectProblem(response, 503, 'storage_unavailable');
      const health = (await (await fetch(`${server.baseUrl}/health`)).json()) as {
        status: string;
        services: { storage: { status: string } };
      };
      expect(health).toMatchObject({ status: 'degraded', services: { storage: { status: 'error' } } });
      // The cause is logged for the operator (the client saw none of it).
      expect(server.output()).toMatch(/storage \(S3\) error/);
    } finally {
      await server.stop('SIGKILL');
      await rm(server.dir, { recursive: true, force: true });
      await s3.stop();
    }
  });
});
