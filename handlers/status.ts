/**
 * @module
 * `GET /status/{processing_id}`: where a job stands. With `?wait=N` (seconds, 0–30) the answer waits until
 * the job is completed or failed, or N seconds have passed: a client learns of completion at once (the job
 * store's notice wakes the request) without polling many times (each poll costs both sides a request).
 */
import { createRoute, z, type RouteHandler } from '@hono/zod-openapi';
import { badRequest, notFound } from '../src/domain/errors.js';
import { isFinished, publicJob, type JobRecord } from '../src/domain/jobs.js';
import { quote } from '../src/domain/operations.js';
import type { AppDeps, JobStore } from '../src/ports.js';
import { type AppEnv, JobStatusSchema, ProcessingIdParams, problemResponse, REQUEST_ID_HEADER, routeErrors } from './schemas.js';

const MAX_WAIT_SECONDS = 30;
/**
 * A waiting request is woken by the store's notice that the job ended; it also reads the job again this
 * often on its own, in case a notice was lost (a dropped Redis connection).
 */
const SAFETY_RECHECK_MS = 1000;

export const statusRoute = createRoute({
  method: 'get',
  path: '/status/{processing_id}',
  operationId: 'getStatus',
  summary: 'Job status',
  description: `Where a job stands. With \`wait\`, the answer comes as soon as the job is completed or failed, or after that many seconds. Also the original service's \`GET /status/{task_id}\`: a task_id (POST /upload-image/) is a processing_id, and every job answer carries both.`,
  tags: ['images'],
  request: {
    params: ProcessingIdParams,
    query: z.object({
      // Text at run time (parseWait names the bad value); an integer in the document.
      wait: z
        .string()
        .optional()
        .openapi({
          type: 'integer',
          minimum: 0,
          maximum: MAX_WAIT_SECONDS,
          default: 0,
          example: 0,
          description: `Seconds to wait for the job to finish before answering, 0–${MAX_WAIT_SECONDS} (default 0: answer at once)`,
        }),
    }),
  },
  responses: {
    200: { description: 'The job', headers: REQUEST_ID_HEADER, content: { 'application/json': { schema: JobStatusSchema } } },
    400: problemResponse(400, 'Malformed processing_id (invalid_request) or wait (invalid_wait)'),
    404: problemResponse(404, 'Unknown processing_id'),
    ...routeErrors,
  },
});

function parseWait(text: string | undefined): number {
  if (text === undefined) return 0;
  const value = /^\d{1,2}$/.test(text) ? Number(text) : NaN;
  if (!(value >= 0 && value <= MAX_WAIT_SECONDS)) {
    throw badRequest('invalid_wait', `wait must be an integer from 0 to ${MAX_WAIT_SECONDS} (seconds), got ${quote(text)}`);
  }
  return value;
}

/** The job once it is finished, or as it stands when `waitMs` is up or the client has gone. */
async function settled(jobs: JobStore, processingId: string, first: JobRecord, waitMs: number, signal: AbortSignal): Promise<JobRecord> {
  const deadline = Date.now() + waitMs;
  // A notice that comes while no one sleeps is remembered, so the loop reads again at once.
  let noticed = false;
  let wake = () => {
    noticed = true;
  };
  const stopListening = jobs.onFinished(processingId, () => wake());
  const onAbort = () => wake();
  signal.addEventListener('abort', onAbort);
  try {
    // Read again once listening: the job may have ended just before.
    let job = (await jobs.getJob(processingId)) ?? first;
    while (!isFinished(job.status) && Date.now() < deadline && !signal.aborted) {
      if (!noticed) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(SAFETY_RECHECK_MS, deadline - Date.now()));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      noticed = false;
      wake = () => {
        noticed = true;
      };
      job = (await jobs.getJob(processingId)) ?? job;
    }
    return job;
  } finally {
    stopListening();
    signal.removeEventListener('abort', onAbort);
  }
}

export function statusHandler({
  jobs,
  stopping,
  webhooks,
}: Pick<AppDeps, 'jobs' | 'stopping' | 'webhooks'>): RouteHandler<typeof statusRoute, AppEnv> {
  return async function status(c) {
    const { processing_id: processingId } = c.req.valid('param');
    const waitSeconds = parseWait(c.req.valid('query').wait);
    const job = await jobs.getJob(processingId);
    if (!job) throw notFound('job_not_found', `no job has processing_id ${processingId}`);
    // The signal only when there is waiting to do: on Node, asking for it builds the full Request (~0.1 ms).
    const waiting = waitSeconds > 0 && !isFinished(job.status) && !stopping?.aborted;
    // A stopping process answers its long polls at once, so it can close Redis without cutting them off.
    const signal = waiting ? (stopping ? AbortSignal.any([c.req.raw.signal, stopping]) : c.req.raw.signal) : undefined;
    const answer = signal ? await settled(jobs, processingId, job, waitSeconds * 1000, signal) : job;
    // Only a job that asked to be told has a delivery to show (no outbox read for any other).
    const notification = answer.notify_url && webhooks?.outbox ? await webhooks.outbox.state(processingId) : undefined;
    return c.json({ ...publicJob(answer), ...(notification ? { notification } : {}) }, 200);
  };
}
