/**
 * @module
 * Typed domain errors. Every failure a client can cause or see is an `AppError` with an HTTP status and a
 * stable snake_case `code` from the closed vocabulary in `error-codes.ts`; `problem()` renders them, so the
 * mapping to HTTP lives in one place.
 */
import type { CodeFor, ErrorCode } from './error-codes.js';

export type { CodeFor, ErrorCode, JobErrorCode } from './error-codes.js';

/** One offending field: `path` in the request's own terms (`width`, `operations.1.intensity`). */
export interface FieldError {
  path: string;
  message: string;
}

export interface AppErrorOptions {
  errors?: FieldError[];
  /** Extra members of the problem document, e.g. `job_status` on a 409. */
  extensions?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** An error whose `detail` is safe to show to the client. */
export class AppError extends Error {
  readonly errors?: FieldError[];
  readonly extensions?: Record<string, unknown>;
  readonly headers?: Record<string, string>;

  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly detail: string,
    options: AppErrorOptions = {},
  ) {
    super(detail);
    this.name = 'AppError';
    this.errors = options.errors;
    this.extensions = options.extensions;
    this.headers = options.headers;
  }

  /** The same error with more response headers. */
  withHeaders(headers: Record<string, string>): AppError {
    return new AppError(this.status, this.code, this.detail, {
      errors: this.errors,
      extensions: this.extensions,
      headers: { ...this.headers, ...headers },
    });
  }
}

/** Characters of a client's own text (a value, a key) that an error echoes back. */
export const ECHO_CHARS = 40;
/** Field errors one problem lists, and how many of their messages its `detail` repeats. */
export const MAX_FIELD_ERRORS = 10;
const DETAIL_MESSAGES = 3;
const MAX_PATH_CHARS = 64;
const MAX_MESSAGE_CHARS = 200;

/**
 * `text` cut to at most `max` characters, the cut marked by `...`: no error echoes a whole hostile payload.
 * @example cut('k'.repeat(60_000)) // 37 k's and '...'
 */
export function cut(text: string, max = ECHO_CHARS): string {
  if (text.length <= max) return text;
  let end = max - 3;
  // Never half a surrogate pair.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}...`;
}

/**
 * 400 for a request whose fields are wrong. The problem stays small whatever the request: at most
 * MAX_FIELD_ERRORS errors, each cut short, and a `detail` that repeats the first few and counts the rest.
 */
export function invalidRequest(errors: FieldError[], code: CodeFor<400> = 'invalid_request'): AppError {
  const listed = errors
    .slice(0, MAX_FIELD_ERRORS)
    .map((e) => ({ path: cut(e.path, MAX_PATH_CHARS), message: cut(e.message, MAX_MESSAGE_CHARS) }));
  const rest = errors.length - DETAIL_MESSAGES;
  let detail = listed
    .slice(0, DETAIL_MESSAGES)
    .map((e) => e.message)
    .join('; ');
  if (rest > 0) {
    const where = listed.length < errors.length ? `errors lists the first ${listed.length} of ${errors.length}` : 'see errors';
    detail += `; and ${rest} more (${where})`;
  }
  return new AppError(400, code, detail, { errors: listed });
}

export const badRequest = (code: CodeFor<400>, detail: string) => new AppError(400, code, detail);
export const notFound = (code: CodeFor<404>, detail: string) => new AppError(404, code, detail);
export const tooLarge = (code: CodeFor<413>, detail: string) => new AppError(413, code, detail);
export const unsupportedMedia = (code: CodeFor<415>, detail: string) => new AppError(415, code, detail);
export const tooMany = (code: CodeFor<429>, detail: string, retryAfterSeconds: number) =>
  new AppError(429, code, detail, { headers: { 'Retry-After': String(retryAfterSeconds) } });
export const unavailable = (code: CodeFor<503>, detail: string, retryAfterSeconds = 5) =>
  new AppError(503, code, detail, { headers: { 'Retry-After': String(retryAfterSeconds) } });
/** 507: the store is full (a disk out of space); retrying later may succeed once retention frees some. */
export const insufficientStorage = (code: CodeFor<507>, detail: string, retryAfterSeconds = 60) =>
  new AppError(507, code, detail, { headers: { 'Retry-After': String(retryAfterSeconds) } });

/** The store cannot be written or reached: a 507 when it is full, a 503 otherwise. */
export function storageFault(kind: 'full' | 'unavailable'): AppError {
  return kind === 'full'
    ? insufficientStorage('storage_full', 'the file store is out of space; retry later')
    : unavailable('storage_unavailable', 'the file store cannot be reached or written; retry shortly', 5);
}
