/**
 * @module
 * Schemas shared by the routes: ids, the problem document, the records the API returns, and the pieces
 * every route's OpenAPI declaration spreads in (error responses, headers).
 */
import { z } from '@hono/zod-openapi';
import type { RequestIdVariables } from 'hono/request-id';
import { codesForStatus, ERROR_CODE_NAMES, errorCodeTable, type ErrorCode } from '../src/domain/error-codes.js';
import { INPUT_FORMATS, OUTPUT_FORMATS } from '../src/domain/formats.js';
import { Operation, quote } from '../src/domain/operations.js';
import { NotificationSchema } from '../src/webhooks/schemas.js';

/** The Hono environment every route shares: no runtime bindings, so any Fetch runtime can serve the app. */
export type AppEnv = { Variables: RequestIdVariables & { /** A hash of the caller's API key, when API_KEYS is set. */ caller?: string } };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The same pattern for the document: JSON Schema patterns take no flags, so the case is spelt out. */
const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const EXAMPLE_ID = '3f2b7c9e-8a41-4d0c-9c55-2b1e6f0a7d13';

/** A path parameter holding a UUID; anything else is a 400 naming the parameter. */
function uuidParam<const N extends string>(name: N) {
  const id = z
    .string()
    .regex(UUID, { error: (iss) => `${name} must be a UUID like ${EXAMPLE_ID}, got ${quote(iss.input)}` })
    .transform((value) => value.toLowerCase())
    .openapi({ param: { name, in: 'path', example: EXAMPLE_ID }, pattern: UUID_PATTERN, format: 'uuid', example: EXAMPLE_ID });
  return z.object({ [name]: id } as { [K in N]: typeof id });
}

export const FileIdParams = uuidParam('file_id');
export const ProcessingIdParams = uuidParam('processing_id');

const ErrorCodeSchema = z.enum(ERROR_CODE_NAMES).openapi('ErrorCode', {
  description: `The closed vocabulary of error codes, as in docs/errors.md (a status of — : only a failed job's \`error.code\`).\n\n${errorCodeTable()}`,
});

export const Problem = z
  .object({
    type: z.string().openapi({ description: '`/problems/<code>`', example: '/problems/invalid_request' }),
    title: z.string().openapi({ description: "The status's reason phrase", example: 'Bad Request' }),
    status: z.number().int().openapi({ example: 400 }),
    code: ErrorCodeSchema,
    detail: z
      .string()
      .openapi({ description: 'What was wrong and what is allowed, in words', example: 'width must be an integer from 1 to 8192, got 0' }),
    request_id: z.string().openapi({ description: 'The same as the X-Request-Id response header' }),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .openapi({ description: 'Each offending field (invalid_request)' }),
  })
  .passthrough()
  .openapi('Problem', {
    description:
      'An RFC 9457 problem document. Some codes add members (a 409 from /download adds `job_status`, and `error` when the job failed).',
  });

const problemFor = new Map<number, z.ZodType>();
/** The problem document of one status: its `code` is one of the codes that status carries. */
function problemOf(status: number): z.ZodType {
  let schema = problemFor.get(status);
  if (!schema) {
    const codes = codesForStatus(status) as [ErrorCode, ...ErrorCode[]];
    if (!codes.length) throw new Error(`no error code has status ${status}: add one to src/domain/error-codes.ts`);
    schema = Problem.extend({ status: z.literal(status), code: z.enum(codes) }).openapi(`Problem${status}`);
    problemFor.set(status, schema);
  }
  return schema;
}

/** Response headers, registered as components by `describeApi` (handlers/openapi.ts). */
const header = (name: string) => ({ [name]: { $ref: `#/components/headers/${name}` } });
export const REQUEST_ID_HEADER = header('X-Request-Id');
export const RETRY_AFTER_HEADER = header('Retry-After');
export const REPLAYED_HEADER = header('Idempotent-Replayed');
export const ETAG_HEADER = header('ETag');

/** Statuses whose answer carries Retry-After (a 409 only for idempotency_key_in_progress). */
const RETRY_STATUSES = new Set([409, 429, 503, 507]);

/** A documented problem response, for spreading into a route's `responses`. */
export const problemResponse = (status: number, description: string) => ({
  description,
  headers: { ...REQUEST_ID_HEADER, ...(RETRY_STATUSES.has(status) ? RETRY_AFTER_HEADER : {}) },
  content: { 'application/problem+json': { schema: problemOf(status) } },
});

/** What any route can answer: something broke on our side. */
export const openRouteErrors = {
  500: problemResponse(500, 'internal_error: something went wrong on our side; quote request_id'),
};

/** What every route behind the access check (all but /, /health and the documentation) can answer too. */
export const routeErrors = {
  401: {
    ...problemResponse(401, 'unauthorized: API_KEYS is set and the request has no valid `Authorization: Bearer <key>`'),
    headers: {
      ...REQUEST_ID_HEADER,
      'WWW-Authenticate': { description: 'Bearer realm="image-service"', schema: { type: 'string' as const } },
    },
  },
  429: problemResponse(429, 'rate_limited: over RATE_LIMIT_PER_MINUTE; retry after Retry-After seconds'),
  ...openRouteErrors,
  503: problemResponse(503, 'A dependency (Redis, the file store, the queue) is unreachable; retry after Retry-After seconds'),
};

/** Request headers. Hono reads header names in lower case; they are matched case-insensitively. */
export const IdempotencyKeyHeader = z.object({
  'idempotency-key': z.string().optional().openapi({
    description:
      'Makes a retry safe: the same key with the same request gets the first answer again (with `Idempotent-Replayed: true`); with another request, a 422. 1 to 255 visible ASCII characters; a key is remembered for 24 hours.',
  }),
});

const dateTime = (description?: string) => z.string().openapi({ format: 'date-time', ...(description ? { description } : {}) });
const uuid = () => z.string().uuid().openapi({ pattern: UUID_PATTERN, example: EXAMPLE_ID });
const sha256 = () => z.string().openapi({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the bytes, in hex' });

export const UploadedFile = z
  .object({
    file_id: uuid(),
    filename: z.string(),
    content_type: z.string(),
    format: z.enum(INPUT_FORMATS),
    size_bytes: z.number().int(),
    width: z.number().int(),
    height: z.number().int(),
    uploaded_at: dateTime(),
    sha256: sha256(),
  })
  .openapi('UploadedFile');

export const Output = z.object({ format: z.enum(OUTPUT_FORMATS), quality: z.number().int() }).openapi('Output');

export const JobStatusSchema = z
  .object({
    processing_id: uuid(),
    task_id: uuid().openapi({ description: "The same as processing_id, under the original service's name for it (GET /status/{task_id})" }),
    file_id: uuid(),
    status: z.enum(['queued', 'processing', 'completed', 'failed']),
    cached: z.boolean(),
    operations: z.array(Operation),
    output: Output,
    created_at: dateTime(),
    started_at: dateTime().optional(),
    completed_at: dateTime().optional(),
    duration_ms: z.number().optional(),
    result: z
      .object({
        format: z.enum(OUTPUT_FORMATS),
        width: z.number().int(),
        height: z.number().int(),
        size_bytes: z.number().int(),
        sha256: sha256(),
      })
      .optional(),
    error: z
      .object({ code: ErrorCodeSchema, message: z.string() })
      .optional()
      .openapi({ description: 'Why the job failed (status failed)' }),
    download_url: z.string().optional().openapi({ description: 'Where the result is, once completed' }),
    notification: NotificationSchema.optional().openapi({
      description: "The webhook announcing the job's end, for a job asked with notify_url: its delivery so far",
    }),
  })
  .openapi('JobStatus');
