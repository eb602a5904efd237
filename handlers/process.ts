/**
 * @module
 * `POST /process/{file_id}`: asks for work. Answers at once with a `processing_id`: `queued`, or
 * `completed` with `cached: true` when the same result (same content, same normalised request) exists.
 */
import { createRoute, z, type RouteHandler } from '@hono/zod-openapi';
import { sha256Hex } from '../src/domain/digest.js';
import { AppError, badRequest, invalidRequest, notFound, unavailable, unsupportedMedia } from '../src/domain/errors.js';
import { defaultOutputFormat, keepsAnimation, LOSSY_FORMATS, OUTPUT_FORMATS, type OutputFormat } from '../src/domain/formats.js';
import { publicJob, resultName, storedResult, type FileRecord, type JobRecord } from '../src/domain/jobs.js';
import { isBlank, parseJsonBody } from '../src/domain/json-body.js';
import {
  DEFAULT_QUALITY,
  FIT_MODES,
  MAX_OUTPUT_DIMENSION,
  OPERATION_NAMES,
  outputSize,
  parsePipelineJson,
  parsePipelineQuery,
  quote,
  type Pipeline,
} from '../src/domain/operations.js';
import { mib } from '../src/memory-budget.js';
import type { AppDeps } from '../src/ports.js';
import { announceEndedJob } from '../src/webhooks/events.js';
import {
  defaultNotifyUrl,
  defaultNotifyUrlProblem,
  MAX_NOTIFY_URL_LENGTH,
  notifyUrlProblem,
  WEBHOOKS_NOT_CONFIGURED,
} from '../src/webhooks/notify-url.js';
import { idempotencyKeyOf, once, replayHeaders } from './idempotency.js';
import {
  type AppEnv,
  FileIdParams,
  IdempotencyKeyHeader,
  JobStatusSchema,
  problemResponse,
  REPLAYED_HEADER,
  REQUEST_ID_HEADER,
  routeErrors,
} from './schemas.js';

/**
 * The query form's parameters: text at run time (parsePipelineQuery checks them with the pipeline's own
 * schema, so each refusal names the field and its range), typed and bounded in the document.
 */
const queryParam = (openapi: Record<string, unknown> & { description: string }) => z.string().optional().openapi(openapi);
const dimension = (side: string) =>
  queryParam({
    type: 'integer',
    minimum: 1,
    maximum: MAX_OUTPUT_DIMENSION,
    example: side === 'width' ? 200 : 150,
    description: `resize: the ${side}, 1–${MAX_OUTPUT_DIMENSION} (at least one of width and height)`,
  });

const ProcessQuery = z.object({
  operation: queryParam({
    type: 'string',
    enum: [...OPERATION_NAMES],
    example: 'resize',
    description: 'The query form: one operation and its parameters (required unless the body is a JSON pipeline)',
  }),
  width: dimension('width'),
  height: dimension('height'),
  fit: queryParam({
    type: 'string',
    enum: [...FIT_MODES],
    example: 'cover',
    description: 'resize: how both sides are honoured (default cover); ignored with one side',
  }),
  without_enlargement: queryParam({
    type: 'boolean',
    default: false,
    example: false,
    description: 'resize: never enlarge (true/false, also 1/0)',
  }),
  intensity: queryParam({
    type: 'number',
    minimum: 0,
    maximum: 100,
    example: 2,
    description:
      'blur 0.3–100 (default 2), sharpen 0.3–10 (1), sepia 0–1 (1), brightness 0–10 (1.2), contrast 0–10 (1.2); not a parameter of resize or grayscale',
  }),
  format: queryParam({
    type: 'string',
    enum: [...OUTPUT_FORMATS],
    example: 'webp',
    description: "The output format (default: the input's where it can be written; BMP gives PNG)",
  }),
  quality: queryParam({
    type: 'integer',
    minimum: 1,
    maximum: 100,
    default: DEFAULT_QUALITY,
    example: DEFAULT_QUALITY,
    description: `Lossy formats only, 1–100 (default ${DEFAULT_QUALITY})`,
  }),
  keep_metadata: queryParam({
    type: 'boolean',
    default: false,
    example: false,
    description: 'Keep EXIF and other metadata (true/false, also 1/0; default false)',
  }),
  // No `format: uri`: the empty value (no webhook) is a valid one.
  notify_url: queryParam({
    type: 'string',
    maxLength: MAX_NOTIFY_URL_LENGTH,
    example: 'https://example.com/hooks/images',
    description:
      "Where the job's end is announced by a signed webhook (Standard Webhooks); https only, no private or loopback addresses unless WEBHOOK_ALLOWED_HOSTS allows them; needs WEBHOOK_SECRETS. " +
      "Absent: the deployment's default, if any (the API key's, WEBHOOK_KEY_URLS, else WEBHOOK_DEFAULT_URL). Empty (`notify_url=`): no webhook for this job, whatever the default",
  }),
});

const Accepted = JobStatusSchema.extend({ status_url: z.string(), download_url: z.string() }).openapi('ProcessAccepted');

export const processRoute = createRoute({
  method: 'post',
  path: '/process/{file_id}',
  operationId: 'processImage',
  summary: 'Process an upload',
  description:
    'Either the query form (`?operation=resize&width=200&height=150`, no body) or a JSON pipeline of 1 to 10 operations, applied in order (the query is then not read).',
  tags: ['images'],
  request: {
    params: FileIdParams,
    query: ProcessQuery,
    headers: IdempotencyKeyHeader,
    // A reference, not the zod schema: the handler reads the body itself (`pipelineOf`), so that an empty
    // form body means the query form and each refusal says what is accepted. app.ts registers the schema.
    body: {
      required: false,
      content: {
        'application/json': {
          schema: { $ref: '#/components/schemas/PipelineRequest' },
          example: {
            operations: [
              { operation: 'resize', width: 800, height: 800, fit: 'inside' },
              { operation: 'sharpen', intensity: 1 },
            ],
            format: 'webp',
            quality: 80,
          },
        },
      },
    },
  },
  responses: {
    200: {
      description: 'Accepted (queued) or answered from the cache (completed)',
      headers: { ...REQUEST_ID_HEADER, ...REPLAYED_HEADER },
      content: { 'application/json': { schema: Accepted } },
    },
    400: problemResponse(
      400,
      'Unknown operation or a parameter out of range (each offending field is named); a result over the pixel or memory limits; a JSON body that is empty, not UTF-8, not JSON, or nested too deep; a malformed Idempotency-Key; a notify_url refused (invalid_notify_url: not https, a private or loopback address, or no WEBHOOK_SECRETS)',
    ),
    404: problemResponse(404, 'Unknown file_id'),
    409: problemResponse(
      409,
      'idempotency_key_in_progress: a request with this Idempotency-Key is still being handled; retry after Retry-After',
    ),
    413: problemResponse(413, 'body_too_large: the JSON body is over 64 KiB (the connection is closed)'),
    415: problemResponse(415, 'A body that is not application/json (the query form takes an empty body), or a compressed one'),
    422: problemResponse(422, 'idempotency_key_reused: this Idempotency-Key came with another request'),
    ...routeErrors,
    503: problemResponse(
      503,
      "The queue is unavailable or full, Redis or the file store is unreachable, notify_url could not be looked up (dns_unavailable), or the deployment's default notify_url fails the SSRF guard (default_notify_url_refused: the operator's to mend; send a notify_url of your own, or an empty one, meanwhile); retry after Retry-After seconds",
    ),
    507: problemResponse(507, 'storage_full: the store is out of space; retry after Retry-After seconds'),
  },
});

type ProcessDeps = Pick<AppDeps, 'settings' | 'jobs' | 'queue' | 'store' | 'idempotency' | 'processor' | 'webhooks'>;

export function processHandler(deps: ProcessDeps): RouteHandler<typeof processRoute, AppEnv> {
  const accept = jobAcceptor(deps);
  return async function process(c) {
    const { file_id: fileId } = c.req.valid('param');
    const key = idempotencyKeyOf(c);
    const pipeline = await pipelineOf(c.req.raw, () => c.req.query());
    // The fingerprint is the request as sent (a default is resolved inside, once): a replay answers the first
    // job even after the deployment's default changed; the key is the caller's, and so is its default.
    const { body, replayed } = await once(deps.idempotency, 'process', key, `${fileId}:${JSON.stringify(pipeline)}`, () =>
      accept(fileId, pipeline, c.get('caller')),
    );
    return c.json(body, 200, replayHeaders(replayed));
  };
}

/** The answer of `POST /process/{file_id}`. */
export type AcceptedJob = ReturnType<typeof accepted>;

/**
 * What `POST /process/{file_id}` does once the request is parsed, for it and for `POST /upload-image/`:
 * checks the pipeline against the upload, answers from the result cache or queues the job.
 */
export function jobAcceptor({
  settings,
  jobs,
  queue,
  store,
  processor,
  webhooks,
}: Omit<ProcessDeps, 'idempotency'>): (fileId: string, pipeline: Pipeline, caller?: string) => Promise<AcceptedJob> {
  return accept;

  /** `caller`: who asks (`key:<key-id>` when API_KEYS is set), whose default notify_url applies. */
  async function accept(fileId: string, pipeline: Pipeline, caller?: string) {
    const file = await jobs.getFile(fileId);
    if (!file) throw notFound('file_not_found', `no upload has file_id ${fileId}`);
    const output = { format: pipeline.format ?? defaultOutputFormat(file.format), quality: pipeline.quality };
    checkOutputSize(file, pipeline, output.format);
    const notifyUrl = await notifyUrlOf(pipeline.notify_url, caller);
    const now = new Date().toISOString();
    const job: JobRecord = {
      processing_id: crypto.randomUUID(),
      file_id: fileId,
      status: 'queued',
      cached: false,
      operations: pipeline.operations,
      output,
      keep_metadata: pipeline.keep_metadata,
      // Quality is part of the result only where the encoder uses it.
      cache_key: await sha256Hex(
        JSON.stringify([
          file.sha256,
          pipeline.operations,
          output.format,
          LOSSY_FORMATS.has(output.format) ? output.quality : null,
          pipeline.keep_metadata,
        ]),
      ),
      created_at: now,
      ...(notifyUrl === undefined ? {} : { notify_url: notifyUrl }),
    };

    const hit = await cachedResult(job);
    if (hit) {
      const answer: JobRecord = {
        ...job,
        status: 'completed',
        cached: true,
        started_at: now,
        completed_at: now,
        duration_ms: 0,
        result: hit,
      };
      // No runner sees a job answered from the cache, so its end is announced here, before the job is
      // written: an outbox that cannot take the message leaves no job that would never be announced.
      await announceEndedJob(webhooks?.outbox, answer);
      await jobs.putJob(answer);
      // The newest job now stands for the result, which lives on for another retention period.
      await jobs.markCompleted(job.cache_key, job.processing_id);
      await store.touchResult(resultName(job));
      return accepted(answer);
    }
    // Only work still to be done needs memory: a cached result is answered whatever its job once cost.
    checkMemory(file, pipeline, output.format);
    if ((await queue.depth()) >= settings.maxQueueDepth) {
      throw unavailable('queue_full', `the queue holds ${settings.maxQueueDepth} waiting jobs (MAX_QUEUE_DEPTH); retry shortly`, 10);
    }
    await jobs.putJob(job);
    try {
      await queue.enqueue(job.processing_id);
    } catch (error) {
      await jobs
        .updateJob(job.processing_id, { status: 'failed', error: { code: 'queue_unavailable', message: 'the job could not be queued' } })
        .catch(() => undefined);
      throw error instanceof AppError ? error : unavailable('queue_unavailable', 'the job queue is unavailable; retry shortly');
    }
    // The answer is the job as accepted: a worker may already have moved it on, which /status shows.
    return accepted(job);
  }

  /**
   * Where the job's end is announced: the request's own URL, else the caller's key's default, else the
   * deployment's; none when the request says `null`/`""` (or nothing, with no default).
   */
  async function notifyUrlOf(asked: string | null | undefined, caller: string | undefined): Promise<string | undefined> {
    if (asked === null) return undefined;
    if (asked !== undefined) return vetted(asked);
    const fallback = defaultNotifyUrl(webhooks?.defaults, caller);
    if (!fallback || !webhooks) return undefined;
    // Its host is resolved and pinned now, as a request's own URL is (configuration checked only its syntax).
    const verdict = await webhooks.notifyUrls.check(fallback.url);
    if (!verdict.ok) throw defaultNotifyUrlProblem(verdict, fallback.source);
    return verdict.url;
  }

  /** The URL as it will be posted to, once it passed the SSRF guard (a 400 naming the reason otherwise). */
  async function vetted(url: string): Promise<string> {
    const verdict = webhooks ? await webhooks.notifyUrls.check(url) : WEBHOOKS_NOT_CONFIGURED;
    if (!verdict.ok && verdict.reason === 'dns_unavailable') throw unavailable('dns_unavailable', verdict.detail, 5);
    if (!verdict.ok) throw notifyUrlProblem(verdict);
    return verdict.url;
  }
  /** The result is bounded like an input: width × height × frames within MAX_INPUT_PIXELS. */
  function checkOutputSize(file: FileRecord, pipeline: Pipeline, format: OutputFormat): void {
    const { width, height } = outputSize(file, pipeline.operations);
    const frames = keepsAnimation(file.format, file.pages, format) ? file.pages : 1;
    const pixels = width * height * frames;
    if (pixels > settings.maxInputPixels) {
      throw invalidRequest(
        [
          {
            path: 'operations',
            message: `the result would be ${width}×${height}${frames > 1 ? `×${frames} frames` : ''} = ${pixels} pixels, over the limit of ${settings.maxInputPixels} (MAX_INPUT_PIXELS); ask for a smaller size`,
          },
        ],
        'output_too_large',
      );
    }
  }

  /** A job no worker could admit (its estimated peak is over the whole memory budget) is refused now, not failed later. */
  function checkMemory(file: FileRecord, pipeline: Pipeline, format: OutputFormat): void {
    const need = processor.estimateMemory(file, pipeline.operations, { format });
    if (need <= settings.memoryBudgetBytes) return;
    const budget = `the memory budget of ${mib(settings.memoryBudgetBytes)} MiB (MEMORY_BUDGET_MB)`;
    // What to change depends on what costs: reading the upload (nothing the request can change), or the result.
    const reading = processor.readingMemory(file);
    const unreadable = reading > settings.memoryBudgetBytes;
    const lighter = format !== 'jpeg' && format !== 'png';
    throw invalidRequest(
      [
        {
          path: unreadable || !lighter ? 'operations' : 'format',
          message: unreadable
            ? `this upload needs about ${mib(reading)} MiB just to be read, more than ${budget}: no job can run on it`
            : `this job needs about ${mib(need)} MiB at its peak (${format} output), more than ${budget}; ask for a smaller size${lighter ? ' or a lighter output format (jpeg, png)' : ''}`,
        },
      ],
      'out_of_memory_budget',
    );
  }

  async function cachedResult(job: JobRecord) {
    return (await storedResult(jobs, store, job.cache_key))?.result;
  }
}

/**
 * The pipeline a request asks for: a JSON body (`Content-Type: application/json`), or the query form
 * with an empty body, whatever its Content-Type (curl's `-d ''` sends application/x-www-form-urlencoded).
 */
async function pipelineOf(request: Request, query: () => Record<string, string>): Promise<Pipeline> {
  const contentType = request.headers.get('content-type');
  const bytes = await bodyOf(request);
  const coding = request.headers.get('content-encoding')?.trim().toLowerCase();
  if (bytes.length > 0 && coding && coding !== 'identity') {
    throw unsupportedMedia(
      'unsupported_content_encoding',
      `the body must be sent as is: Content-Encoding ${quote(coding)} is not accepted`,
    ).withHeaders({ 'Accept-Encoding': 'identity' });
  }
  if (contentType?.split(';')[0]!.trim().toLowerCase() === 'application/json') {
    if (isBlank(bytes)) {
      throw badRequest(
        'empty_body',
        'Content-Type is application/json but the body is empty: send a pipeline like {"operations": [{"operation": "blur"}]}, or no body and no Content-Type: application/json for the query form (?operation=blur)',
      );
    }
    return parsePipelineJson(parseJsonBody(bytes));
  }
  if (bytes.length === 0) return parsePipelineQuery(query());
  throw unsupportedMedia(
    'unsupported_media_type',
    `a body must be application/json (a pipeline like {"operations": [{"operation": "blur"}]}); the query form (?operation=blur) takes an empty body; got a ${bytes.length}-byte body ${contentType === null ? 'with no Content-Type' : `of Content-Type ${quote(contentType)}`}`,
  ).withHeaders({ 'Accept-Post': 'application/json' });
}

/** The whole body (at most MAX_JSON_BYTES: bodyLimit in app.ts has bounded it). */
async function bodyOf(request: Request): Promise<Uint8Array> {
  if (request.body === null) return new Uint8Array(0);
  try {
    return new Uint8Array(await request.arrayBuffer());
  } catch {
    throw badRequest('body_incomplete', 'the body broke off before its end');
  }
}

function accepted(job: JobRecord) {
  return { ...publicJob(job), status_url: `/status/${job.processing_id}`, download_url: `/download/${job.processing_id}` };
}
