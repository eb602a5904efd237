/**
 * @module
 * `GET /status/{processing_id}`: where a job stands.
 */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { notFound } from '../src/domain/errors.js';
import { publicJob } from '../src/domain/jobs.js';
import type { AppDeps } from '../src/ports.js';
import { type AppEnv, JobStatusSchema, problemResponse, ProcessingIdParams } from './schemas.js';

export const statusRoute = createRoute({
  method: 'get',
  path: '/status/{processing_id}',
  summary: 'Job status',
  tags: ['images'],
  request: { params: ProcessingIdParams },
  responses: {
    200: { description: 'The job', content: { 'application/json': { schema: JobStatusSchema } } },
    400: problemResponse('Malformed processing_id'),
    404: problemResponse('Unknown processing_id'),
  },
});

export function statusHandler({ jobs }: Pick<AppDeps, 'jobs'>): RouteHandler<typeof statusRoute, AppEnv> {
  return async function status(c) {
    const { processing_id: processingId } = c.req.valid('param');
    const job = await jobs.getJob(processingId);
    if (!job) throw notFound('job_not_found', `no job has processing_id ${processingId}`);
    return c.json(publicJob(job), 200);
  };
}
