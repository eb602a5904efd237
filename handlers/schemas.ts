/**
 * @module
 * Schemas shared by the routes: ids, the problem document, the records the API returns.
 */
import { z } from '@hono/zod-openapi';
import type { RequestIdVariables } from 'hono/request-id';
import { INPUT_FORMATS, OUTPUT_FORMATS } from '../src/domain/formats.js';
import { Operation, quote } from '../src/domain/operations.js';

/** The Hono environment every route shares: no runtime bindings, so any Fetch runtime can serve the app. */
export type AppEnv = { Variables: RequestIdVariables & { /** A hash of the caller's API key, when API_KEYS is set. */ caller?: string } };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A path parameter holding a UUID; anything else is a 400 naming the parameter. */
function uuidParam<const N extends string>(name: N) {
  const id = z
    .string()
    .regex(UUID, { error: (iss) => `${name} must be a UUID like 3f2b7c9e-8a41-4d0c-9c55-2b1e6f0a7d13, got ${quote(iss.input)}` })
    .transform((value) => value.toLowerCase())
    .openapi({ param: { name, in: 'path' }, example: '3f2b7c9e-8a41-4d0c-9c55-2b1e6f0a7d13' });
  return z.object({ [name]: id } as { [K in N]: typeof id });
}

export const FileIdParams = uuidParam('file_id');
export const ProcessingIdParams = uuidParam('processing_id');

export const Problem = z
  .object({
    type: z.string().openapi({ example: '/problems/invalid_request' }),
    title: z.string(),
    status: z.number().int(),
    code: z.string().openapi({ example: 'invalid_request' }),
    detail: z.string().openapi({ example: 'width must be an integer from 1 to 8192, got 0' }),
    request_id: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .passthrough()
  .openapi('Problem');

/** A documented problem response, for spreading into a route's `responses`. */
export const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem } },
});

export const UploadedFile = z
  .object({
    file_id: z.string().uuid(),
    filename: z.string(),
    content_type: z.string(),
    format: z.enum(INPUT_FORMATS),
    size_bytes: z.number().int(),
    width: z.number().int(),
    height: z.number().int(),
    uploaded_at: z.string(),
    sha256: z.string(),
  })
  .openapi('UploadedFile');

export const Output = z.object({ format: z.enum(OUTPUT_FORMATS), quality: z.number().int() }).openapi('Output');

export const JobStatusSchema = z
  .object({
    processing_id: z.string().uuid(),
    task_id: z.string().uuid().openapi({ description: "The same as processing_id, under the original service's name for it (GET /status/{task_id})" }),
    file_id: z.string().uuid(),
    status: z.enum(['queued', 'processing', 'completed', 'failed']),
    cached: z.boolean(),
    operations: z.array(Operation),
    output: Output,
    created_at: z.string(),
    started_at: z.string().optional(),
    completed_at: z.string().optional(),
    duration_ms: z.number().optional(),
    result: z
      .object({ format: z.enum(OUTPUT_FORMATS), width: z.number().int(), height: z.number().int(), size_bytes: z.number().int(), sha256: z.string() })
      .optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
    download_url: z.string().optional(),
  })
  .openapi('JobStatus');
