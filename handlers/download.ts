/**
 * @module
 * `GET /download/{processing_id}` (and `HEAD`): the result, streamed from storage, with a strong ETag. The
 * `file_id` of an upload made with `POST /upload-image/` downloads its resize (the original service's call).
 */
import { createRoute, z, type RouteHandler } from '@hono/zod-openapi';
import { AppError, notFound } from '../src/domain/errors.js';
import { contentDisposition, stemOf } from '../src/domain/filenames.js';
import { FILE_EXTENSIONS, MIME_TYPES } from '../src/domain/formats.js';
import { resultName } from '../src/domain/jobs.js';
import type { AppDeps } from '../src/ports.js';
import { type AppEnv, ETAG_HEADER, problemResponse, ProcessingIdParams, REQUEST_ID_HEADER, routeErrors } from './schemas.js';

const IfNoneMatch = z.object({
  'if-none-match': z.string().optional().openapi({
    description: 'The ETag of a copy already held: a 304 when it is still the result',
    example: '"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"',
  }),
});

/** What GET and HEAD answer (HEAD: the same headers, no body). */
export const downloadResponses = {
  200: {
    description: 'The image bytes',
    headers: {
      ...REQUEST_ID_HEADER,
      ...ETAG_HEADER,
      'Content-Disposition': {
        description: 'attachment; filename="<original-stem>-<processing_id>.<ext>" (and filename*= when not ASCII)',
        schema: { type: 'string' as const },
      },
      'Cache-Control': { description: 'private, max-age=86400', schema: { type: 'string' as const } },
    },
    content: { 'image/*': { schema: z.string().openapi({ format: 'binary' }) } },
  },
  304: { description: 'Not modified: If-None-Match names the current ETag', headers: { ...REQUEST_ID_HEADER, ...ETAG_HEADER } },
  400: problemResponse(400, 'Malformed processing_id'),
  404: problemResponse(
    404,
    'Unknown processing_id, nor the file_id of a POST /upload-image/ upload (job_not_found), or the result is no longer stored (result_missing)',
  ),
  409: problemResponse(409, 'Not completed yet (job_not_completed), or failed (job_failed): the problem carries job_status (and error)'),
  ...routeErrors,
};

export const downloadRoute = createRoute({
  method: 'get',
  path: '/download/{processing_id}',
  operationId: 'downloadResult',
  summary: 'Download a result',
  description:
    "The result of a completed job, with a strong ETag (the SHA-256 of the bytes). HEAD gives the same headers without the body. The file_id of an upload made with the original service's `POST /upload-image/` works too (its resize result); any other file_id is a 404 saying so.",
  tags: ['images'],
  request: { params: ProcessingIdParams, headers: IfNoneMatch },
  responses: downloadResponses,
});

export function downloadHandler({ jobs, store }: Pick<AppDeps, 'jobs' | 'store'>): RouteHandler<typeof downloadRoute, AppEnv> {
  /** The job an id names: a processing id, or the file_id of an upload `POST /upload-image/` made a job for. */
  async function jobNamed(id: string) {
    const job = await jobs.getJob(id);
    if (job) return job;
    const task = await jobs.taskOf(id);
    const linked = task ? await jobs.getJob(task) : undefined;
    if (linked) return linked;
    const hint = (await jobs.getFile(id))
      ? `${id} is the file_id of an upload, not a processing_id: results are downloaded by the processing_id that POST /process/${id} answered`
      : `no job has processing_id ${id}; results are downloaded by the processing_id that POST /process answered (a file_id works only for uploads made with POST /upload-image/)`;
    throw notFound('job_not_found', hint);
  }

  return async function download(c) {
    const job = await jobNamed(c.req.valid('param').processing_id);
    const processingId = job.processing_id;
    if (job.status !== 'completed' || !job.result) {
      const failed = job.status === 'failed';
      throw new AppError(
        409,
        failed ? 'job_failed' : 'job_not_completed',
        failed
          ? `the job failed: ${job.error?.message ?? 'unknown error'}`
          : `the job is ${job.status}; poll /status/${processingId} until it is completed`,
        {
          extensions: { job_status: job.status, ...(job.error ? { error: job.error } : {}) },
        },
      );
    }
    const etag = `"${job.result.sha256}"`;
    if (matches(c.req.header('if-none-match'), etag)) return c.body(null, 304, { ETag: etag });
    // Every lookup that can fail comes before the result is opened, so nothing is left open on a refusal.
    const upload = await jobs.getFile(job.file_id);
    const file = await store.openResult(resultName(job));
    if (!file) throw notFound('result_missing', 'the result is no longer in storage; ask for it again with POST /process');
    const name = `${stemOf(upload?.filename ?? 'image')}-${processingId}.${FILE_EXTENSIONS[job.result.format]}`;
    const headers = {
      'Content-Type': MIME_TYPES[job.result.format],
      'Content-Length': String(file.sizeBytes),
      ETag: etag,
      'Content-Disposition': contentDisposition(name),
      'Cache-Control': 'private, max-age=86400',
    };
    if (c.req.method === 'HEAD') {
      await file.body.cancel();
      return c.body(null, 200, headers);
    }
    return c.body(file.body, 200, headers);
  };
}

function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const value = tag.trim().replace(/^W\//, '');
    return value === '*' || value === etag;
  });
}
