/**
 * @module
 * Typed domain errors. Every failure a client can cause or see is an `AppError` with an HTTP status and a
 * stable snake_case `code`; `problem()` renders them, so the mapping to HTTP lives in one place.
 */

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
    readonly code: string,
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
      errors: this.errors, extensions: this.extensions, headers: { ...this.headers, ...headers },
    });
  }
}

/** 400 for a request whose fields are wrong; `detail` joins the field messages. */
export function invalidRequest(errors: FieldError[], code = 'invalid_request'): AppError {
  return new AppError(400, code, errors.map((e) => e.message).join('; '), { errors });
}

export const badRequest = (code: string, detail: string) => new AppError(400, code, detail);
export const notFound = (code: string, detail: string) => new AppError(404, code, detail);
export const tooLarge = (code: string, detail: string) => new AppError(413, code, detail);
export const unsupportedMedia = (code: string, detail: string) => new AppError(415, code, detail);
export const unavailable = (code: string, detail: string, retryAfterSeconds = 5) =>
  new AppError(503, code, detail, { headers: { 'Retry-After': String(retryAfterSeconds) } });
/** 507: the store is full (a disk out of space); retrying later may succeed once retention frees some. */
export const insufficientStorage = (code: string, detail: string, retryAfterSeconds = 60) =>
  new AppError(507, code, detail, { headers: { 'Retry-After': String(retryAfterSeconds) } });

/** The store cannot be written or reached: a 507 when it is full, a 503 otherwise. */
export function storageFault(kind: 'full' | 'unavailable'): AppError {
  return kind === 'full'
    ? insufficientStorage('storage_full', 'the file store is out of space; retry later')
    : unavailable('storage_unavailable', 'the file store cannot be reached or written; retry shortly', 5);
}
