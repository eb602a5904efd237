/**
 * @module
 * `GET /`: cheap liveness. Touches no dependency, so a load balancer never takes a busy instance out.
 */
import { createRoute, z, type RouteHandler } from '@hono/zod-openapi';
import type { AppDeps } from '../src/ports.js';
import { type AppEnv, openRouteErrors, REQUEST_ID_HEADER } from './schemas.js';

export const rootRoute = createRoute({
  method: 'get',
  path: '/',
  operationId: 'getLiveness',
  summary: 'Liveness',
  description: 'Touches no dependency: a load balancer never takes a busy instance out. Needs no API key.',
  tags: ['service'],
  security: [],
  responses: {
    200: {
      description: 'The service is up',
      headers: REQUEST_ID_HEADER,
      content: {
        'application/json': {
          schema: z.object({ service: z.string(), version: z.string(), status: z.literal('ok'), docs: z.string(), openapi: z.string() }),
        },
      },
    },
    ...openRouteErrors,
  },
});

export function rootHandler({ settings }: Pick<AppDeps, 'settings'>): RouteHandler<typeof rootRoute, AppEnv> {
  const body = { service: 'image-service', version: settings.version, status: 'ok' as const, docs: '/docs', openapi: '/openapi.json' };
  return function root(c) {
    return c.json(body, 200);
  };
}
