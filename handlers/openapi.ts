/**
 * @module
 * The OpenAPI document's frame: what no single route declares (info, servers, tags, the API-key scheme,
 * the shared response headers) and the routes served outside `app.openapi` (HEAD /download, /metrics,
 * the documentation). `GET /openapi.json` serves the result; `npm run lint:openapi` lints it.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { z } from '@hono/zod-openapi';
import { API_KEY_SCHEME, DOCS_SCRIPT_PATH, FAVICON_PATH } from './docs.js';
import { downloadResponses, downloadRoute } from './download.js';
import { type AppEnv, openRouteErrors, REQUEST_ID_HEADER, routeErrors } from './schemas.js';

export const OPENAPI_PATH = '/openapi.json';

const TAGS = [
  { name: 'images', description: 'Upload an image, ask for it to be processed, follow the job, download the result.' },
  { name: 'service', description: 'Liveness, health and metrics, for load balancers and monitoring.' },
  { name: 'documentation', description: 'This document and the page that renders it.' },
  {
    name: 'legacy',
    description: "The original Python service's routes, kept for its clients (docs/migration.md); new clients use the images routes.",
  },
];

const DESCRIPTION = [
  'Upload an image, ask for it to be processed, poll the job, download the result.',
  '',
  'Errors are `application/problem+json` (RFC 9457); their `code` is one of the closed vocabulary `ErrorCode` (see docs/errors.md).',
  'Every answer carries `X-Request-Id`.',
  '',
  'Authentication: only when the service is started with `API_KEYS`, every route but `/`, `/health` and the documentation needs `Authorization: Bearer <key>` (401 otherwise). Without `API_KEYS` no key is needed and the security requirements below are not enforced.',
].join('\n');

/** Registers the document's components and extra routes, and serves the document at `/openapi.json`. */
export function describeApi(app: OpenAPIHono<AppEnv>, version: string): void {
  const registry = app.openAPIRegistry;
  registry.registerComponent('securitySchemes', API_KEY_SCHEME, {
    type: 'http',
    scheme: 'bearer',
    description: 'One of the keys in API_KEYS, as `Authorization: Bearer <key>`. Enforced only when API_KEYS is set.',
  });
  const headers: Record<string, { description: string; schema: Record<string, unknown> }> = {
    'X-Request-Id': {
      description: "The request's id (an incoming sane X-Request-Id, or a UUID); a problem's request_id is the same",
      schema: { type: 'string' },
    },
    'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 0 } },
    'Idempotent-Replayed': {
      description: '`true` when the answer is the recorded answer to an earlier request with the same Idempotency-Key',
      schema: { type: 'string', enum: ['true'] },
    },
    ETag: { description: 'A strong ETag: the SHA-256 of the result, quoted', schema: { type: 'string' } },
  };
  for (const [name, header] of Object.entries(headers)) registry.registerComponent('headers', name, header);

  // Hono answers HEAD from the GET route; the document says so on its own.
  const { path, tags, request } = downloadRoute;
  registry.registerPath({
    method: 'head',
    path,
    tags,
    request,
    operationId: 'headResult',
    summary: 'Headers of a result',
    description: 'As GET, without the body: Content-Length, ETag, Content-Type.',
    responses: { ...downloadResponses, 200: { description: 'The headers of the image', headers: downloadResponses[200].headers } },
  });
  registry.registerPath({
    method: 'get',
    path: '/metrics',
    operationId: 'getMetrics',
    summary: 'Prometheus metrics',
    description: 'Request, job and queue metrics in the Prometheus text format. Behind the API key when API_KEYS is set.',
    tags: ['service'],
    responses: {
      200: { description: 'The metrics', headers: REQUEST_ID_HEADER, content: { 'text/plain': { schema: z.string() } } },
      ...routeErrors,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/docs',
    operationId: 'getDocs',
    summary: 'API reference page',
    description: 'This document, rendered (Scalar), with its script served by this app.',
    tags: ['documentation'],
    security: [],
    responses: {
      200: { description: 'The page', headers: REQUEST_ID_HEADER, content: { 'text/html': { schema: z.string() } } },
      ...openRouteErrors,
    },
  });
  registry.registerPath({
    method: 'get',
    path: DOCS_SCRIPT_PATH,
    operationId: 'getDocsScript',
    summary: "The reference page's script",
    description: 'Served by this app, so the page works with no internet access.',
    tags: ['documentation'],
    security: [],
    responses: {
      200: { description: 'The script', headers: REQUEST_ID_HEADER, content: { 'application/javascript': { schema: z.string() } } },
      ...openRouteErrors,
    },
  });
  registry.registerPath({
    method: 'get',
    path: FAVICON_PATH,
    operationId: 'getFavicon',
    summary: "The reference page's icon",
    description: 'A small icon, cached for a day.',
    tags: ['documentation'],
    security: [],
    responses: {
      200: {
        description: 'The icon',
        headers: REQUEST_ID_HEADER,
        content: { 'image/x-icon': { schema: z.string().openapi({ format: 'binary' }) } },
      },
      ...openRouteErrors,
    },
  });
  registry.registerPath({
    method: 'get',
    path: OPENAPI_PATH,
    operationId: 'getOpenApi',
    summary: 'This document',
    description: 'The OpenAPI 3.1 document, generated from the route declarations.',
    tags: ['documentation'],
    security: [],
    responses: {
      200: {
        description: 'The document',
        headers: REQUEST_ID_HEADER,
        content: { 'application/json': { schema: z.object({}).passthrough() } },
      },
      ...openRouteErrors,
    },
  });

  registry.registerComponent('parameters', 'X-Request-Id', {
    name: 'X-Request-Id',
    in: 'header',
    required: false,
    description:
      "An id of your own for this request, honoured when it is at most 128 of [A-Za-z0-9_=-] (otherwise a UUID is made): it comes back in X-Request-Id, in a problem's request_id and in the logs.",
    schema: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9_=-]+$' },
  });

  // Built once, at the first request (every route is declared by then).
  let document: unknown;
  app.get(OPENAPI_PATH, (c) => {
    document ??= withRequestIdParameter(
      app.getOpenAPI31Document({
        openapi: '3.1.0',
        info: { title: 'Image service', version, description: DESCRIPTION },
        servers: [{ url: '/', description: 'This service' }],
        tags: TAGS,
        security: [{ [API_KEY_SCHEME]: [] }],
      }),
    );
    return c.json(document, 200);
  });
}

/** Every operation takes X-Request-Id (the request-id middleware reads it on every route). */
function withRequestIdParameter<D extends { paths?: object }>(doc: D): D {
  for (const item of Object.values(doc.paths ?? {}) as object[]) {
    for (const operation of Object.values(item) as Array<{ parameters?: unknown[] }>) {
      operation.parameters = [...(operation.parameters ?? []), { $ref: '#/components/parameters/X-Request-Id' }];
    }
  }
  return doc;
}
