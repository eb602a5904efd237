/**
 * @module
 * The original Python service's routes, mapped onto this one (docs/migration.md):
 * - `POST /upload-image/`: `POST /upload`, then `POST /process/{file_id}` with a resize to fit 800×800, in
 *   one call; answers `task_id` and `file_id` as the original did, plus this service's own fields.
 * - `GET /tasks/`: the jobs, newest first, a page at a time.
 * `GET /status/{task_id}` and `GET /download/{file_id}` are the status and download routes themselves (a
 * `task_id` is a `processing_id`; the download route also takes the `file_id` of an upload made here).
 * Every path is also answered with a trailing slash (the app is not strict about it).
 */
import { createRoute, z, type RouteHandler } from '@hono/zod-openapi';
import { publicJob, type JobCursor } from '../src/domain/jobs.js';
import { parsePipelineJson } from '../src/domain/operations.js';
import type { AppDeps } from '../src/ports.js';
import { idempotencyKeyOf, replayHeaders } from './idempotency.js';
import { decodePair, encodePair, pageQuery, parseLimit } from './list.js';
import { jobAcceptor } from './process.js';
import { type AppEnv, JobStatusSchema, problemResponse, REPLAYED_HEADER, REQUEST_ID_HEADER, routeErrors, UploadedFile } from './schemas.js';
import { uploadIntake, uploadRoute } from './upload.js';

/**
 * What the original's "resize to fit 800×800" did: Pillow's `thumbnail((800, 800))`, the usual way to
 * write it, keeps the aspect ratio, fits both sides inside the box and never enlarges a smaller image.
 */
export const LEGACY_RESIZE = { operation: 'resize', width: 800, height: 800, fit: 'inside', without_enlargement: true } as const;

const UploadImageAccepted = JobStatusSchema.extend({
  status_url: z.string().openapi({ description: 'GET it to follow the job (the same as /status/{task_id})' }),
  download_url: z.string().openapi({ description: 'GET it for the result once completed; /download/{file_id} works too' }),
  upload: UploadedFile,
}).openapi('UploadImageAccepted');

const { 200: _stored, ...uploadRefusals } = uploadRoute.responses;

export const uploadImageRoute = createRoute({
  method: 'post',
  path: '/upload-image',
  operationId: 'legacyUploadImage',
  summary: "Upload an image and resize it to fit 800×800 (the original service's call)",
  description:
    "The original service's `POST /upload-image/` (with or without the trailing slash): `POST /upload`, then " +
    '`POST /process/{file_id}?operation=resize&width=800&height=800&fit=inside&without_enlargement=true` in one call, ' +
    "in the upload's own format. Same limits and refusals as `POST /upload`; `Idempotency-Key` covers both steps. " +
    'Answers `task_id` (= `processing_id`) and `file_id` as the original did: follow with `GET /status/{task_id}` and ' +
    '`GET /download/{file_id}` (or `/download/{processing_id}`). New clients: call `POST /upload` and `POST /process/{file_id}`.',
  tags: ['legacy'],
  deprecated: true,
  request: { headers: uploadRoute.request.headers, body: uploadRoute.request.body },
  responses: {
    200: {
      description: 'Stored, and the resize queued (or answered from the cache: completed)',
      headers: { ...REQUEST_ID_HEADER, ...REPLAYED_HEADER },
      content: { 'application/json': { schema: UploadImageAccepted } },
    },
    ...uploadRefusals,
    503: problemResponse(
      503,
      "As `POST /upload` (too_many_uploads, storage_unavailable, redis_unavailable), the queue is unavailable or full (queue_unavailable, queue_full), or the deployment's default notify_url cannot be used (dns_unavailable, default_notify_url_refused); retry after Retry-After seconds",
    ),
  },
});

type LegacyDeps = Pick<AppDeps, 'settings' | 'uploads' | 'store' | 'processor' | 'jobs' | 'queue' | 'idempotency' | 'webhooks'>;

export function uploadImageHandler(deps: LegacyDeps): RouteHandler<typeof uploadImageRoute, AppEnv> {
  const intake = uploadIntake(deps);
  const accept = jobAcceptor(deps);
  // Parsed as a POST /process JSON body is, so the same request made there shares its cached result.
  const pipeline = parsePipelineJson({ operations: [LEGACY_RESIZE] });
  return async function uploadImage(c) {
    const { body, replayed } = await intake(c.req.raw, idempotencyKeyOf(c), 'upload-image', async (file) => {
      // The deployment's default notify_url applies here too: the operator set it for every job a caller starts.
      const job = await accept(file.file_id, pipeline, c.get('caller'));
      await deps.jobs.linkTask(file.file_id, job.processing_id);
      return { ...job, upload: file };
    });
    return c.json(body, 200, replayHeaders(replayed));
  };
}

export const tasksRoute = createRoute({
  method: 'get',
  path: '/tasks',
  operationId: 'listTasks',
  summary: 'List jobs',
  description:
    'Every job (whichever route made it), newest first, a page at a time as `GET /list` pages uploads; each item is ' +
    "what `GET /status/{processing_id}` answers. Also answered at `/tasks/`, the original service's path. Jobs are " +
    'kept for RETENTION_SECONDS, as their records are.',
  tags: ['images', 'legacy'],
  request: {
    query: pageQuery('Jobs'),
  },
  responses: {
    200: {
      description: 'A page of jobs',
      headers: REQUEST_ID_HEADER,
      content: {
        'application/json': {
          schema: z
            .object({ items: z.array(JobStatusSchema), total: z.number().int(), next_cursor: z.string().nullable() })
            .openapi('TaskPage'),
        },
      },
    },
    400: problemResponse(400, 'Bad limit (invalid_limit) or cursor (invalid_cursor)'),
    ...routeErrors,
  },
});

export function tasksHandler({ jobs }: Pick<AppDeps, 'jobs'>): RouteHandler<typeof tasksRoute, AppEnv> {
  return async function tasks(c) {
    const query = c.req.valid('query');
    const limit = parseLimit(query.limit);
    const after = query.cursor === undefined || query.cursor === '' ? undefined : decodeCursor(query.cursor);
    const page = await jobs.listJobs(limit, after);
    const last = page.items.at(-1);
    return c.json(
      { items: page.items.map(publicJob), total: page.total, next_cursor: page.hasMore && last ? encodeCursor(last) : null },
      200,
    );
  };
}

const encodeCursor = ({ created_at, processing_id }: JobCursor) => encodePair(created_at, processing_id);

function decodeCursor(text: string): JobCursor {
  const [created_at, processing_id] = decodePair(text, '/tasks');
  return { created_at, processing_id };
}
