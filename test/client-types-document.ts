/**
 * @module
 * Natural code that only an exact document types right (compiled by `npm run typecheck`, never run):
 * download_url always there, query numbers as numbers, enums as enums, documented headers, closed codes.
 */
import { createImageClient, ProblemError } from '../client/index.js';

export async function documentNaturalCode(fileId: string, processingId: string): Promise<void> {
  const images = createImageClient({ baseUrl: 'http://localhost:8000' });

  // POST /process always sends download_url.
  const accepted = await images.process(fileId, { operations: [{ operation: 'grayscale' }] });
  const downloadUrl: string = accepted.download_url;
  const raw = await images.POST('/process/{file_id}', {
    params: { path: { file_id: fileId } },
    body: { operations: [{ operation: 'sepia' }] },
  });
  if (raw.data) console.log(raw.data.download_url.length);

  // The query form with typed, bounded parameters: numbers are numbers, enums are enums.
  await images.POST('/process/{file_id}', {
    params: {
      path: { file_id: fileId },
      query: { operation: 'resize', width: 200, height: 150, fit: 'inside', without_enlargement: true, format: 'webp', quality: 80 },
    },
  });
  await images.POST('/process/{file_id}', { params: { path: { file_id: fileId }, query: { operation: 'blur', intensity: 2.5 } } });
  // @ts-expect-error a width is a number
  await images.POST('/process/{file_id}', { params: { path: { file_id: fileId }, query: { operation: 'resize', width: '200' } } });
  // @ts-expect-error no such operation
  await images.POST('/process/{file_id}', { params: { path: { file_id: fileId }, query: { operation: 'rotate' } } });
  // @ts-expect-error not an output format
  await images.POST('/process/{file_id}', { params: { path: { file_id: fileId }, query: { operation: 'grayscale', format: 'bmp' } } });

  await images.GET('/status/{processing_id}', { params: { path: { processing_id: processingId }, query: { wait: 10 } } });
  // @ts-expect-error wait is a number of seconds
  await images.GET('/status/{processing_id}', { params: { path: { processing_id: processingId }, query: { wait: '10' } } });

  const page = await images.GET('/list', { params: { query: { limit: 10 } } });
  if (page.data?.next_cursor) await images.GET('/list', { params: { query: { limit: 10, cursor: page.data.next_cursor } } });
  // @ts-expect-error limit is a number
  await images.GET('/list', { params: { query: { limit: '10' } } });

  // The headers the service reads are declared (by their lowercase names, as hono validates them).
  await images.POST('/process/{file_id}', {
    params: { path: { file_id: fileId }, header: { 'idempotency-key': 'retry-safe-1' } },
    body: { operations: [{ operation: 'grayscale' }] },
  });

  // The problem's code is a closed vocabulary a client can switch on.
  try {
    await images.download(processingId);
  } catch (error) {
    if (error instanceof ProblemError) {
      if (error.code === 'job_not_completed' || error.code === 'job_failed') console.log(error.problem.detail);
      // @ts-expect-error not a code the service sends
      if (error.code === 'no_such_code') console.log('never');
    }
  }
  console.log(downloadUrl);
}
