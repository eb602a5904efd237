/**
 * @module
 * The one error shape: RFC 9457 `application/problem+json`, used by the validation hook, `onError`,
 * `notFound` and every handler (through thrown `AppError`s).
 */
import type { AppError } from './domain/errors.js';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  507: 'Insufficient Storage',
};

/** What a problem document holds; `type` is derived from `code`. */
export function problemBody(error: AppError, requestId: string) {
  return {
    type: `/problems/${error.code}`,
    title: TITLES[error.status] ?? 'Error',
    status: error.status,
    code: error.code,
    detail: error.detail,
    request_id: requestId,
    ...(error.errors?.length ? { errors: error.errors } : {}),
    ...error.extensions,
  };
}

/**
 * Renders an `AppError` as a problem response.
 * @example problem(notFound('file_not_found', 'no upload has id 42'), 'req-1')
 */
export function problem(error: AppError, requestId: string): Response {
  return new Response(JSON.stringify(problemBody(error, requestId)), {
    status: error.status,
    headers: { 'Content-Type': 'application/problem+json', 'X-Request-Id': requestId, ...error.headers },
  });
}
