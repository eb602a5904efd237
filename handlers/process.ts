/**
 * @module
 * `POST /process/{file_id}`: asks for work. Answers at once with a `processing_id`: `queued`, or
 * `completed` with `cached: true` when the same result (same content, same normalised request) exists.
 */
import { createRoute, z, type RouteHandler } from '@hono/zod-openapi';
import { sha256Hex } from '../src/domain/digest.js';
import { AppError, invalidRequest, notFound, unavailable } from '../src/domain/errors.js';
import { defaultOutputFormat, keepsAnimation, LOSSY_FORMATS, type OutputFormat } from '../src/domain/formats.js';
import { factsOf, publicJob, resultName, storedResult, type FileRecord, type JobRecord } from '../src/domain/jobs.js';
import { normalisePipeline, outputSize, parsePipelineQuery, PipelineRequest, type Pipeline } from '../src/domain/operations.js';
import type { AppDeps } from '../src/ports.js';
import { idempotencyKeyOf, once, replayHeaders } from './idempotency.js';
import { type AppEnv, FileIdParams, JobStatusSchema, problemResponse } from './schemas.js';

const queryText = (description: string) => z.string().optional().openapi({ description });

const ProcessQuery = z.object({
  operation: queryText('query form: one of resize, blur, sharpen, grayscale, sepia, brightness, contrast'),
  width: queryText('resize: 1–8192'),
  height: queryText('resize: 1–8192'),
  fit: queryText('resize: cover | contain | fill | inside | outside'),
  without_enlargement: queryText('resize: true | false'),
  intensity: queryText('blur 0.3–100, sharpen 0.3–10, sepia 0–1, brightness 0–10, contrast 0–10'),
  format: queryText('jpeg | png | webp | avif | gif | tiff'),
  quality: queryText('1–100 (default 80)'),
  keep_metadata: queryText('true | false (default false)'),
});

const Accepted = JobStatusSchema.extend({ status_url: z.string(), download_url: z.string() }).openapi('ProcessAccepted');

export const processRoute = createRoute({
  method: 'post',
  path: '/process/{file_id}',
  summary: 'Process an upload',
  description: 'Either the query form (`?operation=resize&width=200&height=150`) or a JSON pipeline of 1 to 10 operations, applied in order.',
  tags: ['images'],
  request: {
    params: FileIdParams,
    query: ProcessQuery,
    body: { required: false, content: { 'application/json': { schema: PipelineRequest } } },
  },
  responses: {
    200: { description: 'Accepted (queued) or answered from the cache (completed)', content: { 'application/json': { schema: Accepted } } },
    400: problemResponse('Unknown operation or a parameter out of range; each offending field is named'),
    404: problemResponse('Unknown file_id'),
    413: problemResponse('JSON body too large'),
    503: problemResponse('The queue is unavailable or full; retry after Retry-After seconds'),
  },
});

type ProcessDeps = Pick<AppDeps, 'settings' | 'jobs' | 'queue' | 'store' | 'idempotency' | 'processor'>;

export function processHandler({ settings, jobs, queue, store, idempotency, processor }: ProcessDeps): RouteHandler<typeof processRoute, AppEnv> {
  return async function process(c) {
    const { file_id: fileId } = c.req.valid('param');
    const key = idempotencyKeyOf(c);
    const isJson = /^application\/json/i.test(c.req.header('content-type') ?? '');
    const pipeline: Pipeline = isJson ? normalisePipeline(c.req.valid('json')) : parsePipelineQuery(c.req.query());
    const { body, replayed } = await once(idempotency, 'process', key, `${fileId}:${JSON.stringify(pipeline)}`, () => accept(fileId, pipeline));
    return c.json(body, 200, replayHeaders(replayed));
  };

  async function accept(fileId: string, pipeline: Pipeline) {
    const file = await jobs.getFile(fileId);
    if (!file) throw notFound('file_not_found', `no upload has file_id ${fileId}`);
    const output = { format: pipeline.format ?? defaultOutputFormat(file.format), quality: pipeline.quality };
    checkOutputSize(file, pipeline, output.format);
    checkMemory(file, pipeline, output.format);
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
      cache_key: await sha256Hex(JSON.stringify([file.sha256, pipeline.operations, output.format, LOSSY_FORMATS.has(output.format) ? output.quality : null, pipeline.keep_metadata])),
      created_at: now,
    };

    const hit = await cachedResult(job);
    if (hit) {
      const answer: JobRecord = { ...job, status: 'completed', cached: true, started_at: now, completed_at: now, duration_ms: 0, result: hit };
      await jobs.putJob(answer);
      // The newest job now stands for the result, which lives on for another retention period.
      await jobs.markCompleted(job.cache_key, job.processing_id);
      await store.touchResult(resultName(job));
      return accepted(answer);
    }
    if ((await queue.depth()) >= settings.maxQueueDepth) {
      throw unavailable('queue_full', `the queue holds ${settings.maxQueueDepth} waiting jobs (MAX_QUEUE_DEPTH); retry shortly`, 10);
    }
    await jobs.putJob(job);
    try {
      await queue.enqueue(job.processing_id);
    } catch (error) {
      await jobs.updateJob(job.processing_id, { status: 'failed', error: { code: 'queue_unavailable', message: 'the job could not be queued' } }).catch(() => undefined);
      throw error instanceof AppError ? error : unavailable('queue_unavailable', 'the job queue is unavailable; retry shortly');
    }
    // The answer is the job as accepted: a worker may already have moved it on, which /status shows.
    return accepted(job);
  }

  /** The result is bounded like an input: width × height × frames within MAX_INPUT_PIXELS. */
  function checkOutputSize(file: FileRecord, pipeline: Pipeline, format: OutputFormat): void {
    const { width, height } = outputSize(file, pipeline.operations);
    const frames = keepsAnimation(file.format, file.pages, format) ? file.pages : 1;
    const pixels = width * height * frames;
    if (pixels > settings.maxInputPixels) {
      throw invalidRequest([{
        path: 'operations',
        message: `the result would be ${width}×${height}${frames > 1 ? `×${frames} frames` : ''} = ${pixels} pixels, over the limit of ${settings.maxInputPixels} (MAX_INPUT_PIXELS); ask for a smaller size`,
      }], 'output_too_large');
    }
  }

  /** A job no worker could admit (its estimated peak is over the whole memory budget) is refused now, not failed later. */
  function checkMemory(file: FileRecord, pipeline: Pipeline, format: OutputFormat): void {
    const need = processor.estimateMemory(factsOf(file), pipeline.operations, { format });
    if (need <= settings.memoryBudgetBytes) return;
    const mib = (bytes: number) => Math.ceil(bytes / 2 ** 20);
    throw invalidRequest([{
      path: pipeline.format ? 'format' : 'operations',
      message: `this job needs about ${mib(need)} MiB at its peak (${format} output), more than the memory budget of ${mib(settings.memoryBudgetBytes)} MiB (MEMORY_BUDGET_MB); ask for a smaller size or a lighter output format (jpeg, png)`,
    }], 'out_of_memory_budget');
  }

  async function cachedResult(job: JobRecord) {
    return (await storedResult(jobs, store, job.cache_key))?.result;
  }
}

function accepted(job: JobRecord) {
  return { ...publicJob(job), status_url: `/status/${job.processing_id}`, download_url: `/download/${job.processing_id}` };
}
