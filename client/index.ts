/**
 * @module
 * The typed client of the image service: openapi-fetch over the types generated from the service's OpenAPI
 * document (`client/schema.ts`, `npm run gen:client`), plus four helpers for the usual flow. Fetch only, no
 * Node module: it runs in Node 20+, browsers, Deno, Bun and workers.
 *
 * @example
 * const images = createImageClient({ baseUrl: 'http://localhost:8000' });
 * const file = await images.upload(new Blob([bytes]), 'cat.jpg');
 * const job = await images.process(file.file_id, { operations: [{ operation: 'resize', width: 200 }] });
 * const done = await images.waitFor(job.processing_id, { timeoutMs: 30_000 });
 * if (done.status === 'completed') console.log(done.result.width, (await images.download(done.processing_id)).length);
 * // Every route, typed, as openapi-fetch has it:
 * const { data, error } = await images.GET('/status/{processing_id}', { params: { path: { processing_id: job.processing_id } } });
 */
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './schema.js';

export type { components, paths };
type Schemas = components['schemas'];
/** An error answer (RFC 9457 problem document): branch on `code`; `detail` is for people. */
export type Problem = Schemas['Problem'];
export type UploadedFile = Schemas['UploadedFile'];
export type PipelineRequest = Schemas['PipelineRequest'];
export type Operation = PipelineRequest['operations'][number];
export type ProcessAccepted = Schemas['ProcessAccepted'];
export type JobStatus = Schemas['JobStatus'];
/** A job that has ended; the contract sends `result` and `download_url` with success, `error` with failure. */
export type FinishedJob =
  | (JobStatus & { status: 'completed'; result: NonNullable<JobStatus['result']>; download_url: string })
  | (JobStatus & { status: 'failed'; error: NonNullable<JobStatus['error']> });

/** What the service refused, as it said it. */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.code}: ${problem.detail}`);
  }

  get code(): Problem['code'] {
    return this.problem.code;
  }
}

export interface ImageClientOptions {
  /** Where the service is, e.g. `http://localhost:8000`. */
  baseUrl: string;
  /** One of the service's `API_KEYS`, sent as `Authorization: Bearer <key>`. */
  apiKey?: string | undefined;
  /** A `fetch` of your own (instrumented, or an app's `fetch` in tests); default the global one. */
  fetch?: ClientOptions['fetch'] | undefined;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface WriteOptions extends CallOptions {
  /** Sent as `Idempotency-Key`: a retry with the same key gets the first answer, not a second upload or job. */
  idempotencyKey?: string | undefined;
}

export interface WaitOptions extends CallOptions {
  /** How long to wait for the job to end before rejecting with a `TimeoutError` (default 60 s). */
  timeoutMs?: number | undefined;
}

export interface ImageHelpers {
  /** `POST /upload`: stores `file` under `filename` (its extension must be an allowed one). */
  upload(file: Blob, filename: string, options?: WriteOptions): Promise<UploadedFile>;
  /** `POST /process/{file_id}` in its JSON form: the operations are applied in order. */
  process(fileId: string, pipeline: PipelineRequest, options?: WriteOptions): Promise<ProcessAccepted>;
  /** Long-polls `GET /status/{processing_id}?wait=` until the job is completed or failed. */
  waitFor(processingId: string, options?: WaitOptions): Promise<FinishedJob>;
  /** `GET /download/{processing_id}`: the result's bytes. */
  download(processingId: string, options?: CallOptions): Promise<Uint8Array>;
}

export type ImageClient = Client<paths> & ImageHelpers;

/** The longest `?wait=` the service accepts, in seconds. */
const MAX_WAIT_SECONDS = 30;

/** The data of a success; a problem (or any other failure) thrown. */
function dataOf<T>({ data, error, response }: { data?: T; error?: unknown; response: Response }): T {
  if (response.ok && data !== undefined) return data;
  if (typeof error === 'object' && error !== null && typeof (error as Problem).code === 'string') {
    throw new ProblemError(response.status, error as Problem);
  }
  const text = typeof error === 'string' ? `: ${error.slice(0, 200)}` : '';
  throw new Error(`${response.status} from ${response.url}${text}`);
}

const isFinished = (job: JobStatus): job is FinishedJob => job.status === 'completed' || job.status === 'failed';

/**
 * @example
 * const images = createImageClient({ baseUrl: 'http://localhost:8000', apiKey: process.env.IMAGE_API_KEY });
 */
export function createImageClient({ baseUrl, apiKey, fetch }: ImageClientOptions): ImageClient {
  const client = createClient<paths>({
    baseUrl,
    ...(fetch && { fetch }),
    ...(apiKey !== undefined && { headers: { Authorization: `Bearer ${apiKey}` } }),
  });
  // What every helper passes on to fetch (no `undefined` members: callers may build with exactOptionalPropertyTypes).
  const sendWith = ({ idempotencyKey, signal }: WriteOptions) => ({
    headers: idempotencyKey === undefined ? {} : { 'Idempotency-Key': idempotencyKey },
    signal: signal ?? null,
  });

  async function upload(file: Blob, filename: string, options: WriteOptions = {}) {
    const result = await client.POST('/upload', {
      body: { file },
      // openapi-fetch sends JSON unless told: one multipart part named `file`, carrying the name.
      bodySerializer(body) {
        const form = new FormData();
        form.append('file', body.file, filename);
        return form;
      },
      ...sendWith(options),
    });
    return dataOf(result);
  }

  async function processImage(fileId: string, pipeline: PipelineRequest, options: WriteOptions = {}) {
    const result = await client.POST('/process/{file_id}', {
      params: { path: { file_id: fileId } },
      body: pipeline,
      ...sendWith(options),
    });
    return dataOf(result);
  }

  async function waitFor(processingId: string, { timeoutMs = 60_000, signal }: WaitOptions = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Whole seconds, rounded up so the last poll still waits rather than spinning.
      const wait = Math.min(MAX_WAIT_SECONDS, Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
      const asked = Date.now();
      const result = await client.GET('/status/{processing_id}', {
        // A cast until the document types `wait` as an integer (issue 13); the service reads a number.
        params: { path: { processing_id: processingId }, query: { wait } },
        signal: signal ?? null,
      });
      const job = dataOf(result);
      if (isFinished(job)) return job;
      if (Date.now() >= deadline) {
        throw new DOMException(`job ${processingId} still ${job.status} after ${timeoutMs} ms`, 'TimeoutError');
      }
      // A server that is stopping answers long polls at once: do not hammer it.
      if (Date.now() - asked < (wait * 1000) / 2) await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async function download(processingId: string, { signal }: CallOptions = {}) {
    const result = await client.GET('/download/{processing_id}', {
      params: { path: { processing_id: processingId } },
      parseAs: 'arrayBuffer',
      signal: signal ?? null,
    });
    return new Uint8Array(dataOf(result));
  }

  return { ...client, upload, process: processImage, waitFor, download };
}
