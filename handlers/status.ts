/**
 * @module
 * `GET /status/{processing_id}`: where a job stands. With `?wait=N` (seconds, 0–30) the answer waits until
 * the job is completed or failed, or N seconds have passed: a client learns of completion at once (the job
 * store's notice wakes the request) without polling many times (each poll costs both sides a request).
 * With `Accept: text/event-stream` it streams the job's changes instead (handlers/status-stream.ts).
 */
import { createRoute, z, type RouteHandler } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { onFinish } from '../src/domain/change-listeners.js';
import { badRequest, notFound } from '../src/domain/errors.js';
import { isFinished, publicJob, type JobRecord } from '../src/domain/jobs.js';
import { quote } from '../src/domain/operations.js';
import type { AppDeps, JobStore, WebhookOutbox } from '../src/ports.js';
import { type AppEnv, JobStatusSchema, ProcessingIdParams, problemResponse, REQUEST_ID_HEADER, routeErrors } from './schemas.js';
import { EVENT_STREAM, lastEventId, RETRY_MS, StatusStreams, wantsEventStream } from './status-stream.js';

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
  description: `Where a job stands. With \`wait\`, the answer comes as soon as the job is completed or failed, or after that many seconds. Also the original service's \`GET /status/{task_id}\`: a task_id (POST /upload-image/) is a processing_id, and every job answer carries both.

With \`Accept: text/event-stream\` the answer is a stream of Server-Sent Events instead (\`EventSource\` in a browser): one event per state change, its \`data\` the job's status as the JSON answer shows it, its \`id\` the state's place in the job's life (1 queued, 2 processing, 3 completed or failed), so ids rise and any API process gives the same one. The stream opens with \`retry: ${RETRY_MS}\`, sends a comment line every SSE_HEARTBEAT_SECONDS (15), and closes after the final event. Reconnecting with \`Last-Event-ID\` resumes after that event; after the final event the answer is 204, which stops an EventSource. At most SSE_MAX_STREAMS_PER_CLIENT streams per API key or address (429 \`too_many_streams\`) and SSE_MAX_STREAMS per process (503 \`streams_full\`); a stream is closed after SSE_MAX_SECONDS or when the process stops, and the client reconnects.`,
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
          description: `Seconds to wait for the job to finish before answering, 0–${MAX_WAIT_SECONDS} (default 0: answer at once; not used by a stream)`,
        }),
    }),
    headers: z.object({
      'last-event-id': z.string().optional().openapi({
        description:
          'A stream only: the `id` of the last event the client received (1–3); the stream sends only later states. EventSource sends it when it reconnects.',
        example: '1',
      }),
    }),
  },
  responses: {
    200: {
      description: 'The job (JSON), or a stream of its changes (`Accept: text/event-stream`)',
      headers: REQUEST_ID_HEADER,
      content: {
        'application/json': { schema: JobStatusSchema },
        [EVENT_STREAM]: {
          schema: z.string().openapi({
            description:
              'Server-Sent Events: `retry:` first, then for each state `id: <1–3>` and `data: <the job status JSON>`, comment lines (`: keep-alive`) between',
            example: 'retry: 2000\n\nid: 1\ndata: {"processing_id":"3f2b7c9e-8a41-4d0c-9c55-2b1e6f0a7d13","status":"queued",...}\n\n',
          }),
        },
      },
    },
    204: {
      description: "A stream only: Last-Event-ID is the job's final event already; nothing more will come",
      headers: REQUEST_ID_HEADER,
    },
    400: problemResponse(400, 'Malformed processing_id (invalid_request) or wait (invalid_wait)'),
    404: problemResponse(404, 'Unknown processing_id'),
    ...routeErrors,
    429: problemResponse(
      429,
      'rate_limited: over RATE_LIMIT_PER_MINUTE; or too_many_streams: SSE_MAX_STREAMS_PER_CLIENT streams open already',
    ),
    503: problemResponse(
      503,
      'A dependency (Redis, the queue) is unreachable; or, for a stream, streams_full (SSE_MAX_STREAMS streams open in this process) or service_stopping; retry after Retry-After seconds',
    ),
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
  const stopListening = onFinish(jobs, processingId, () => wake());
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

/** The job as `GET /status` shows it: its public fields, and its webhook's delivery when it asked for one. */
export function statusView(outbox: WebhookOutbox | undefined): (job: JobRecord) => Promise<unknown> {
  return async (job) => {
    // Only a job that asked to be told has a delivery to show (no outbox read for any other).
    const notification = job.notify_url && outbox ? await outbox.state(job.processing_id) : undefined;
    return { ...publicJob(job), ...(notification ? { notification } : {}) };
  };
}

export interface StatusDeps extends Pick<AppDeps, 'jobs' | 'stopping'> {
  /** Whom a stream counts against: the caller's API key hash, else its address. */
  clientOf(c: Context<AppEnv>): string;
  /** The process's status streams (one set per app, bounded by SSE_*). */
  streams: StatusStreams;
  /** The job as an answer shows it (`statusView`); the streams show it by the same one. */
  view(job: JobRecord): Promise<unknown>;
}

export function statusHandler({ jobs, stopping, clientOf, streams, view }: StatusDeps): RouteHandler<typeof statusRoute, AppEnv> {
  return async function status(c) {
    const { processing_id: processingId } = c.req.valid('param');
    const streaming = wantsEventStream(c.req.header('accept'));
    // A stream does not wait: its `wait` is not read (nor refused).
    const waitSeconds = streaming ? 0 : parseWait(c.req.valid('query').wait);
    const job = await jobs.getJob(processingId);
    if (!job) throw notFound('job_not_found', `no job has processing_id ${processingId}`);
    if (streaming) {
      const after = lastEventId(c.req.header('last-event-id'));
      // HEAD gets what the GET would, without a stream nobody would read holding a place.
      return c.req.method === 'HEAD' ? streams.head(job, after, clientOf(c)) : streams.open(job, after, clientOf(c));
    }
    // The signal only when there is waiting to do: on Node, asking for it builds the full Request (~0.1 ms).
    const waiting = waitSeconds > 0 && !isFinished(job.status) && !stopping?.aborted;
    // A stopping process answers its long polls at once, so it can close Redis without cutting them off.
    const signal = waiting ? (stopping ? AbortSignal.any([c.req.raw.signal, stopping]) : c.req.raw.signal) : undefined;
    const answer = signal ? await settled(jobs, processingId, job, waitSeconds * 1000, signal) : job;
    return c.json((await view(answer)) as z.infer<typeof JobStatusSchema>, 200);
  };
}
