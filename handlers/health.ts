/**
 * @module
 * `GET /health`: the state of every dependency. 503 when the service cannot accept work.
 */
import { createRoute, z, type RouteHandler } from '@hono/zod-openapi';
import type { AppDeps, QueueCounts } from '../src/ports.js';
import { type AppEnv, openRouteErrors, REQUEST_ID_HEADER } from './schemas.js';

const Health = z
  .object({
    status: z.enum(['healthy', 'degraded', 'unhealthy']),
    version: z.string(),
    uptime_seconds: z.number(),
    started_at: z.string(),
    services: z.object({
      redis: z.object({ status: z.enum(['connected', 'disconnected', 'not_configured']), latency_ms: z.number().optional() }),
      storage: z.object({ status: z.enum(['ok', 'error']), free_bytes: z.number().optional() }),
      queue: z.object({ waiting: z.number(), active: z.number(), completed: z.number(), failed: z.number(), workers: z.number() }),
    }),
    reasons: z.array(z.string()).optional().openapi({ description: 'Why the status is not healthy, in words' }),
  })
  .openapi('Health');

export const healthRoute = createRoute({
  method: 'get',
  path: '/health',
  operationId: 'getHealth',
  summary: 'Dependency health',
  description: 'The state of every dependency. Needs no API key.',
  tags: ['service'],
  security: [],
  responses: {
    200: { description: 'Healthy or degraded', headers: REQUEST_ID_HEADER, content: { 'application/json': { schema: Health } } },
    503: {
      description: 'Cannot accept work (e.g. Redis configured but unreachable): status unhealthy',
      headers: REQUEST_ID_HEADER,
      content: { 'application/json': { schema: Health } },
    },
    ...openRouteErrors,
  },
});

const NO_COUNTS: QueueCounts = { waiting: 0, active: 0, completed: 0, failed: 0, workers: 0 };

export function healthHandler({
  settings,
  store,
  queue,
  redis,
}: Pick<AppDeps, 'settings' | 'store' | 'queue' | 'redis'>): RouteHandler<typeof healthRoute, AppEnv> {
  /** Since when this process has seen jobs waiting with no worker connected (cleared as soon as either ends). */
  let absentSince: number | undefined;
  return async function health(c) {
    const [redisState, freeBytes, counts] = await Promise.all([
      redis ? redis.ping() : Promise.resolve({ status: 'not_configured' as const }),
      // `undefined`: the store has no such figure (S3); `null`: the store did not answer.
      store.freeBytes().catch(() => null),
      queue.counts().catch(() => undefined),
    ]);
    const storage =
      freeBytes === null
        ? { status: 'error' as const }
        : { status: 'ok' as const, ...(freeBytes === undefined ? {} : { free_bytes: freeBytes }) };
    const reasons: string[] = [];
    if (redisState.status === 'disconnected') reasons.push('Redis is unreachable');
    if (counts === undefined) reasons.push('the queue cannot be read');
    if (storage.status === 'error') reasons.push('the file store does not answer');
    const starved = counts !== undefined && counts.workers === 0 && counts.waiting > 0;
    absentSince = starved ? (absentSince ?? Date.now()) : undefined;
    const absentSeconds = absentSince === undefined ? 0 : Math.round((Date.now() - absentSince) / 1000);
    if (starved && absentSeconds >= settings.workerAbsentSeconds) {
      reasons.push(`${counts.waiting} jobs are waiting and no worker has been connected for ${absentSeconds} s`);
    }
    const unhealthy = redisState.status === 'disconnected' || counts === undefined;
    const status: 'healthy' | 'degraded' | 'unhealthy' = unhealthy ? 'unhealthy' : reasons.length ? 'degraded' : 'healthy';
    const body = {
      status,
      version: settings.version,
      uptime_seconds: Math.round((Date.now() - settings.startedAt.getTime()) / 1000),
      started_at: settings.startedAt.toISOString(),
      services: { redis: redisState, storage, queue: counts ?? NO_COUNTS },
      ...(reasons.length ? { reasons } : {}),
    };
    return unhealthy ? c.json(body, 503) : c.json(body, 200);
  };
}
