/**
 * @module
 * The closed vocabulary of error codes: every `code` a problem document (or a failed job's `error.code`)
 * can carry, the HTTP status(es) it comes with, and what it means in one line. `AppError` takes only these,
 * so a new code is added here first; the OpenAPI document (`Problem.code`) and docs/errors.md list them.
 */

/** Where a code shows: as a problem answer (`http`), as a failed job's `error.code` (`job`), or both. */
export type ErrorCodeUse = 'http' | 'job';

export interface ErrorCodeEntry {
  /** The statuses a problem with this code is answered with (none for a code only a failed job shows). */
  readonly status: readonly number[];
  readonly meaning: string;
  /** Default `['http']`. */
  readonly use?: readonly ErrorCodeUse[];
}

export const ERROR_CODES = {
  // 400: the request as sent cannot be read or is out of bounds.
  invalid_request: {
    status: [400],
    meaning: 'A parameter, header or field is malformed or out of range; `errors` names each one (`path`, `message`).',
  },
  out_of_memory_budget: {
    status: [400, 413],
    meaning: 'The job (400) or the upload alone (413) would need more memory than MEMORY_BUDGET_MB.',
    use: ['http', 'job'],
  },
  output_too_large: { status: [400], meaning: 'The result would have more pixels (width × height × frames) than MAX_INPUT_PIXELS.' },
  malformed_json: { status: [400], meaning: 'The JSON body is not valid JSON, or not UTF-8.' },
  json_too_deep: { status: [400], meaning: 'The JSON body nests lists and objects deeper than the limit.' },
  empty_body: { status: [400], meaning: 'Content-Type is application/json but the body is empty.' },
  body_incomplete: { status: [400], meaning: 'The request body broke off before its end.' },
  bad_request: { status: [400], meaning: 'The HTTP layer could not read the request (a body it could not parse).' },
  invalid_limit: { status: [400], meaning: '`limit` is not an integer from 1 to 100.' },
  invalid_cursor: { status: [400], meaning: '`cursor` is not the `next_cursor` of a previous `/list` page.' },
  invalid_wait: { status: [400], meaning: '`wait` is not an integer from 0 to 30 (seconds).' },
  invalid_idempotency_key: { status: [400], meaning: 'Idempotency-Key is not 1 to 255 visible ASCII characters.' },
  not_multipart: { status: [400], meaning: 'POST /upload was not sent as multipart/form-data.' },
  malformed_multipart: { status: [400], meaning: 'The multipart body has no boundary or cannot be parsed.' },
  missing_file: { status: [400], meaning: 'No part named `file` holding a file.' },
  unexpected_file_field: { status: [400], meaning: 'The file came in a part not named `file`.' },
  too_many_files: { status: [400], meaning: 'More than one file in one upload.' },
  too_many_parts: { status: [400], meaning: 'More multipart parts or fields than an upload may have.' },
  empty_file: { status: [400], meaning: 'The uploaded file is empty.' },
  invalid_notify_url: {
    status: [400],
    meaning:
      '`notify_url` is refused: not https (or http where allowed), credentials in it, a private, loopback or metadata address, or no WEBHOOK_SECRETS configured; `reason` says which.',
  },
  upload_interrupted: { status: [400], meaning: 'The upload ended before its body was complete.' },
  // 401, 404, 405, 408
  unauthorized: { status: [401], meaning: 'API_KEYS is set and the request has no valid `Authorization: Bearer <key>`.' },
  not_found: { status: [404], meaning: 'No route has this method and path.' },
  file_not_found: { status: [404], meaning: 'No upload has this `file_id` (never uploaded, or removed by retention).' },
  job_not_found: { status: [404], meaning: 'No job has this `processing_id` (never created, or removed by retention).' },
  result_missing: { status: [404], meaning: 'The job completed but its result is no longer in storage; ask for it again.' },
  method_not_allowed: { status: [405], meaning: 'The path exists but not with this method; `Allow` lists the methods it takes.' },
  request_timeout: { status: [408], meaning: 'The request (headers or body) did not arrive in time; the connection is closed.' },
  upload_timeout: { status: [408], meaning: 'The upload stalled (UPLOAD_IDLE_TIMEOUT_SECONDS) or took too long (UPLOAD_TIMEOUT_SECONDS).' },
  // 409
  job_not_completed: {
    status: [409],
    meaning: 'The job is still queued or processing; poll its status. The problem carries `job_status`.',
  },
  job_failed: { status: [409], meaning: 'The job failed, so there is nothing to download. The problem carries `job_status` and `error`.' },
  idempotency_key_in_progress: {
    status: [409],
    meaning: 'A request with this Idempotency-Key is still being handled; retry after Retry-After.',
  },
  // 413, 415
  body_too_large: { status: [413], meaning: 'The JSON body is larger than the limit (64 KiB).' },
  file_too_large: { status: [413], meaning: 'The upload is larger than MAX_FILE_SIZE.' },
  too_many_pixels: { status: [413], meaning: 'Width × height × frames is over MAX_INPUT_PIXELS.', use: ['http', 'job'] },
  unsupported_media_type: {
    status: [415],
    meaning: 'A body of a type the route does not take (POST /process takes application/json or no body).',
  },
  unsupported_content_encoding: { status: [415], meaning: 'A compressed body (Content-Encoding other than identity).' },
  unsupported_extension: { status: [415], meaning: "The file name's extension is not in ALLOWED_EXTENSIONS." },
  unsupported_format: { status: [415], meaning: 'The bytes are not an image of an allowed format.' },
  undecodable_image: { status: [415], meaning: 'The bytes look like an image format but its header cannot be read.' },
  // 422
  idempotency_key_reused: { status: [422], meaning: 'This Idempotency-Key was already used with a different request.' },
  // Only ever a failed job's `error.code` (GET /status), never an answer's status.
  decode_failed: { status: [], meaning: 'The image could not be decoded while processing.', use: ['job'] },
  timeout: { status: [], meaning: 'Processing took longer than JOB_TIMEOUT_SECONDS.', use: ['job'] },
  out_of_memory: { status: [], meaning: 'The job ran out of memory; ask for a smaller size.', use: ['job'] },
  processing_failed: { status: [], meaning: 'The image library refused the work.', use: ['job'] },
  file_missing: { status: [], meaning: "The job's upload was removed before the job ran.", use: ['job'] },
  worker_lost: { status: [], meaning: 'The job was interrupted three times while it ran (Redis mode); ask for it again.', use: ['job'] },
  retries_exhausted: {
    status: [],
    meaning: 'The job failed three times on a fault of the service (Redis mode); ask for it again.',
    use: ['job'],
  },
  // 429, 5xx
  rate_limited: { status: [429], meaning: 'Over RATE_LIMIT_PER_MINUTE for this API key or address; retry after Retry-After.' },
  too_many_streams: {
    status: [429],
    meaning: 'This API key or address holds SSE_MAX_STREAMS_PER_CLIENT status streams already; close one, or retry after Retry-After.',
  },
  internal_error: {
    status: [500],
    meaning: 'Something went wrong on our side; quote `request_id` when reporting it.',
    use: ['http', 'job'],
  },
  redis_unavailable: { status: [503], meaning: 'Redis is unreachable; retry after Retry-After.', use: ['http', 'job'] },
  redis_error: { status: [503], meaning: 'Redis refused a command; retry after Retry-After.', use: ['http', 'job'] },
  queue_unavailable: { status: [503], meaning: 'The job queue cannot be reached; retry after Retry-After.', use: ['http', 'job'] },
  dns_unavailable: {
    status: [503],
    meaning: "notify_url's host could not be looked up just now (the resolver timed out or failed); retry after Retry-After.",
  },
  default_notify_url_refused: {
    status: [503],
    meaning:
      "The deployment's default notify_url (WEBHOOK_KEY_URLS or WEBHOOK_DEFAULT_URL) failed the SSRF guard for a job that named none: the operator's to mend; `reason` says why. Send a notify_url of your own, or an empty one for no webhook.",
  },
  webhook_queue_unavailable: { status: [503], meaning: 'The webhook delivery queue cannot be reached; retry after Retry-After.' },
  queue_full: { status: [503], meaning: 'MAX_QUEUE_DEPTH jobs are waiting; retry after Retry-After.' },
  service_stopping: {
    status: [503],
    meaning: 'This process is stopping and opens no new status stream; retry after Retry-After (another process answers).',
  },
  streams_full: { status: [503], meaning: 'This process holds SSE_MAX_STREAMS status streams already; retry after Retry-After.' },
  too_many_uploads: { status: [503], meaning: 'MAX_CONCURRENT_UPLOADS uploads are arriving already; retry after Retry-After.' },
  storage_unavailable: {
    status: [503],
    meaning: 'The file store cannot be reached or written; retry after Retry-After.',
    use: ['http', 'job'],
  },
  storage_full: { status: [507], meaning: 'The file store is out of space; retry after Retry-After.', use: ['http', 'job'] },
} as const satisfies Record<string, ErrorCodeEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes a problem with `status` may carry. */
export type CodeFor<S extends number> = { [K in ErrorCode]: S extends (typeof ERROR_CODES)[K]['status'][number] ? K : never }[ErrorCode];

/** The codes a failed job usually ends with (`error.code`; a job may end with any code of the vocabulary). */
export type JobErrorCode = {
  [K in ErrorCode]: (typeof ERROR_CODES)[K] extends { use: readonly (infer U)[] } ? ('job' extends U ? K : never) : never;
}[ErrorCode];

export const ERROR_CODE_NAMES = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

const usesOf = (code: ErrorCode): readonly ErrorCodeUse[] => (ERROR_CODES[code] as ErrorCodeEntry).use ?? ['http'];

/** The codes a problem answer with `status` carries (sorted as declared). */
export function codesForStatus(status: number): ErrorCode[] {
  return ERROR_CODE_NAMES.filter(
    (code) => usesOf(code).includes('http') && (ERROR_CODES[code].status as readonly number[]).includes(status),
  );
}

/** Whether the code also shows as a failed job's `error.code` (a job can end with any code; these are the usual ones). */
export const isJobCode = (code: ErrorCode): boolean => usesOf(code).includes('job');

const HTTP_LAYER_CODES: Partial<Record<number, ErrorCode>> = {
  401: 'unauthorized',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  413: 'body_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

/**
 * The code of a refusal raised by the HTTP layer (Hono's `HTTPException`), which has none of its own;
 * `undefined` for a status no such refusal should have (the app answers those as an internal error).
 * @example codeForHttpStatus(400, 'Malformed JSON in request body') // 'malformed_json'
 */
export function codeForHttpStatus(status: number, message = ''): ErrorCode | undefined {
  if (status === 400) return /json/i.test(message) ? 'malformed_json' : 'bad_request';
  return HTTP_LAYER_CODES[status];
}

/**
 * The vocabulary as a Markdown table (code, statuses, meaning), for docs/errors.md and the document.
 * @example errorCodeTable().split('\n')[2] // '| `invalid_request` | 400 | A parameter, ... |'
 */
export function errorCodeTable(): string {
  const rows = ERROR_CODE_NAMES.map((code) => {
    const statuses = (ERROR_CODES[code].status as readonly number[]).join(', ') || '—';
    const where = isJobCode(code) ? (usesOf(code).includes('http') ? ' (also job)' : ' (job)') : '';
    return `| \`${code}\` | ${statuses}${where} | ${ERROR_CODES[code].meaning} |`;
  });
  return ['| code | status | meaning |', '|---|---|---|', ...rows].join('\n');
}
