/**
 * @module
 * Natural code against the typed client, checked by `npm run typecheck` (never run): what a user writes
 * must compile under `strict` without `!` or casts, and each `@ts-expect-error` is a wrong shape the types
 * must refuse (if one stops being refused, tsc fails on the unused directive).
 * Lines that lean on the exact document (typed query numbers, download_url, closed codes) are in `client-types-document.ts`.
 */
import { openAsBlob } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createImageClient, ProblemError, type FinishedJob, type Operation, type Problem } from '../client/index.js';

/** The README's typed-client example, word for word (test/e2e/readme.test.ts checks they agree). */
export async function readmeExample(): Promise<void> {
  // README:begin
  const images = createImageClient({ baseUrl: 'http://localhost:8000', apiKey: process.env.API_KEY });
  const file = await images.upload(await openAsBlob('docs/example.jpg'), 'example.jpg');
  const job = await images.process(file.file_id, {
    operations: [{ operation: 'resize', width: 800, height: 800, fit: 'inside' }, { operation: 'sharpen' }],
    format: 'webp',
  });
  const done = await images.waitFor(job.processing_id, { timeoutMs: 30_000 });
  if (done.status === 'failed') throw new Error(done.error.message);
  await writeFile('example.webp', await images.download(done.processing_id));

  // Every route is typed too: data, or the problem document the service answered.
  const { data, error } = await images.GET('/list', { params: { query: { limit: 10 } } });
  console.log(
    data?.items.map((item) => item.filename),
    error?.code,
  );
  // README:end
}

export async function naturalCode(bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  const images = createImageClient({ baseUrl: 'http://localhost:8000', apiKey: 'a-key-of-sixteen-chars' });

  // Upload: a Blob (a File in a browser) and its name.
  const file: Blob = new Blob([bytes], { type: 'image/jpeg' });
  const uploaded = await images.upload(file, 'cat.jpg');
  const width: number = uploaded.width;
  const fileId: string = uploaded.file_id;
  // @ts-expect-error the upload takes a Blob, not a path
  await images.upload('/tmp/cat.jpg', 'cat.jpg');

  // The raw route takes the same body; a multipart body needs its serializer.
  const raw = await images.POST('/upload', {
    body: { file },
    bodySerializer: (body) => {
      const form = new FormData();
      form.append('file', body.file, 'cat.jpg');
      return form;
    },
  });
  if (raw.data) console.log(raw.data.sha256.length);
  // @ts-expect-error the part is a Blob, not a string
  await images.POST('/upload', { body: { file: 'cat.jpg' } });

  // A pipeline: defaults may be left out, each operation takes only its own parameters.
  const pipeline: Operation[] = [
    { operation: 'resize', width: 200, height: 150, fit: 'inside' },
    { operation: 'blur' },
    { operation: 'grayscale' },
  ];
  const accepted = await images.process(fileId, { operations: pipeline, format: 'webp', quality: 80 });
  const processingId: string = accepted.processing_id;
  const statusUrl: string = accepted.status_url;
  const cached: boolean = accepted.cached;
  // @ts-expect-error no such operation
  await images.process(fileId, { operations: [{ operation: 'rotate', degrees: 90 }] });
  // @ts-expect-error a width is a number in the JSON form
  await images.process(fileId, { operations: [{ operation: 'resize', width: '200' }] });
  // @ts-expect-error blur has no width
  await images.process(fileId, { operations: [{ operation: 'blur', width: 3 }] });
  // @ts-expect-error not an output format
  await images.process(fileId, { operations: pipeline, format: 'bmp' });
  // @ts-expect-error the operations are required
  await images.process(fileId, { format: 'png' });

  // Waiting: the answer says which way it ended.
  const job: FinishedJob = await images.waitFor(processingId, { timeoutMs: 30_000 });
  if (job.status === 'completed') {
    const size: [number, number] = [job.result.width, job.result.height];
    const downloadUrl: string = job.download_url;
    console.log(size, downloadUrl, job.result.format === 'webp');
  } else {
    const reason: string = `${job.error.code}: ${job.error.message}`;
    console.log(reason);
  }
  const bytesOut: Uint8Array = await images.download(processingId);

  // Raw routes: data or a typed problem.
  const status = await images.GET('/status/{processing_id}', { params: { path: { processing_id: processingId } } });
  if (status.error) {
    const problem: Problem = status.error;
    console.log(problem.code, problem.detail, problem.errors?.[0]?.path);
  } else {
    const state: 'queued' | 'processing' | 'completed' | 'failed' = status.data.status;
    console.log(state, status.data.result?.sha256);
  }
  // @ts-expect-error the path parameter is required
  await images.GET('/status/{processing_id}', {});
  // @ts-expect-error no such route
  await images.GET('/jobs/{processing_id}', { params: { path: { processing_id: processingId } } });
  // @ts-expect-error /list has no POST
  await images.POST('/list', {});

  const page = await images.GET('/list');
  if (page.data) {
    const names: string[] = page.data.items.map((item) => item.filename);
    const next: string | null = page.data.next_cursor;
    console.log(names, next, page.data.total);
  }

  // Refusals from the helpers are thrown as typed problems.
  try {
    await images.process(fileId, { operations: [{ operation: 'resize', width: 0 }] });
  } catch (error) {
    if (error instanceof ProblemError && error.status === 400) {
      const fields: string[] = (error.problem.errors ?? []).map((e) => e.path);
      console.log(error.code, error.problem.detail, error.problem.request_id, fields);
    }
  }
  console.log(width, statusUrl, cached, bytesOut.length);
}
