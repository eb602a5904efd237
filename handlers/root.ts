/**
 * @module
 * `GET /`: cheap liveness. Touches no dependency, so a load balancer never takes a busy instance out.
 */
import { createRoute, z, type RouteHandler } from '@hono/zod-openapi';
import type { AppDeps } from '../src/ports.js';
import type { AppEnv } from './schemas.js';

export const rootRoute = createRoute({
  method: 'get',
  path: '/',
  summary: 'Liveness',
  tags: ['service'],
  responses: {
    200: {
      description: 'The service is up',
      content: {
        'application/json': {
          schema: z.object({ service: z.string(), version: z.string(), status: z.literal('ok'), docs: z.string(), openapi: z.string() }),
        },
      },
    },
  },
});

export function rootHandler({ settings }: Pick<AppDeps, 'settings'>): RouteHandler<typeof rootRoute, AppEnv> {
  const body = { service: 'image-service', version: settings.version, status: 'ok' as const, docs: '/docs', openapi: '/openapi.json' };
  return function root(c) {
    return c.json(body, 200);
  };
}
