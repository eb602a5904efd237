/**
 * @module
 * `createApp(deps)`: the Hono app, composed from the handlers over the ports it is given. The same app
 * runs in the Node server and in tests called with plain `Request`s.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { routePath } from 'hono/route';
import {
  DOCS_HASHED_SCRIPT_ROUTE,
  DOCS_PATH,
  DOCS_SCRIPT_PATH,
  docsPageHandler,
  docsScriptHandler,
  FAVICON_PATH,
  faviconHandler,
} from '../handlers/docs.js';
import { downloadHandler, downloadRoute } from '../handlers/download.js';
import { healthHandler, healthRoute } from '../handlers/health.js';
import { tasksHandler, tasksRoute, uploadImageHandler, uploadImageRoute } from '../handlers/legacy.js';
import { listHandler, listRoute } from '../handlers/list.js';
import { describeApi } from '../handlers/openapi.js';
import { processHandler, processRoute } from '../handlers/process.js';
import { rootHandler, rootRoute } from '../handlers/root.js';
import type { AppEnv } from '../handlers/schemas.js';
import { statusHandler, statusRoute, statusView } from '../handlers/status.js';
import { StatusStreams } from '../handlers/status-stream.js';
import { uploadHandler, uploadRoute } from '../handlers/upload.js';
import { accessControl, addressSubject } from './access.js';
import { methodNotAllowed } from './allowed-methods.js';
import { codeForHttpStatus } from './domain/error-codes.js';
import { AppError, badRequest, cut, invalidRequest, tooLarge, unavailable } from './domain/errors.js';
import { fieldErrorsOf, PipelineRequest, queryFieldErrors } from './domain/operations.js';
import { problem } from './problem.js';
import type { AppDeps } from './ports.js';

/** JSON bodies are small pipelines; anything larger is refused before it is parsed. */
const MAX_JSON_BYTES = 64 * 1024;

/** Where the app writes its request log (pino's `Logger` fits). */
export interface RequestLog {
  info(fields: Record<string, unknown>, message: string): void;
}

/** What the app counts, and how `GET /metrics` shows it (`createMetrics()` fits). */
export interface RequestMetrics {
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  /** Makes a gauge read how many status streams are open (optional: a runtime may not count them). */
  watchStreams?(open: () => number): void;
  exposition(): Promise<{ contentType: string; text: string }>;
}

/** What the runtime gives the app: nothing here is Node-bound, so any Fetch runtime can host it. */
export interface AppOptions {
  logger: RequestLog;
  metrics: RequestMetrics;
  /** Called with errors that became a 500, for logging; the client sees no detail of them. */
  onUnexpectedError?: (error: unknown, requestId: string) => void;
  /** The connection's peer address, for per-address rate limits (the runtime knows it; a plain Request does not). */
  clientAddress?: (c: Context) => string | undefined;
}

export function createApp(deps: AppDeps, { logger, metrics, onUnexpectedError = () => {}, clientAddress = () => undefined }: AppOptions) {
  const app = new OpenAPIHono<AppEnv>({
    // `/list/` is `/list`, for every method: a redirect would lose a POST's body.
    strict: false,
    defaultHook: (result, c) => {
      if (result.success) return;
      const errors = result.target === 'query' ? queryFieldErrors(result.error, c.req.queries()) : fieldErrorsOf(result.error);
      return problem(invalidRequest(errors), c.get('requestId'));
    },
  });

  // No answer is ever read as another type than it says (a problem as HTML, a result as script).
  app.use(async function noSniff(c, next) {
    await next();
    c.res.headers.set('X-Content-Type-Options', 'nosniff');
  });
  // An incoming X-Request-Id is honoured only when short and plain ([A-Za-z0-9_=-]); otherwise a UUID.
  app.use(requestId({ limitLength: 128 }));
  app.use(async function observeRequest(c, next) {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const matched = routePath(c, -1);
    const route = matched.endsWith('*') ? 'unmatched' : matched;
    metrics.observeRequest(c.req.method, route, c.res.status, seconds);
    logger.info(
      {
        request_id: c.get('requestId'),
        method: c.req.method,
        route,
        path: c.req.path.slice(0, 200),
        status: c.res.status,
        duration_ms: Math.round(seconds * 10_000) / 10,
      },
      'request',
    );
  });
  const { apiKeys, rateLimitPerMinute: perMinute, trustProxy: trustedHops = 0 } = deps.settings;
  if (apiKeys.length || deps.rateLimiter)
    app.use(accessControl({ apiKeys, limiter: deps.rateLimiter, perMinute, trustedHops, peerAddress: clientAddress }));
  // With Redis down, refuse work at once (before reading a 10 MB body) instead of hanging. (Middleware is
  // registered with `use`, never with a method: only routes count for 405's Allow.)
  for (const path of ['/upload', '/upload-image', '/process/*']) {
    app.use(path, async (c, next) => {
      if (c.req.method === 'POST' && deps.redis && !deps.redis.ready())
        throw unavailable('redis_unavailable', 'Redis is unreachable; retry shortly', 2);
      await next();
    });
  }
  const limitJsonBody = bodyLimit({
    maxSize: MAX_JSON_BYTES,
    onError: (c) =>
      problem(
        tooLarge('body_too_large', `the JSON body must be at most ${MAX_JSON_BYTES} bytes`).withHeaders({ Connection: 'close' }),
        c.get('requestId'),
      ),
  });
  app.use('/process/*', async function boundedBody(c, next) {
    // Without a Content-Length the limit reads the body here; a body that breaks off is the client's doing, not a 500.
    let reading = true;
    try {
      return await limitJsonBody(c, async () => {
        reading = false;
        await next();
      });
    } catch (error) {
      if (reading) throw badRequest('body_incomplete', 'the body broke off before its end');
      throw error;
    }
  });

  app.openapi(rootRoute, rootHandler(deps));
  app.openapi(healthRoute, healthHandler(deps));
  app.openapi(uploadRoute, uploadHandler(deps));
  app.openapi(processRoute, processHandler(deps));
  // The process route's body is documented by reference (its handler reads the body itself).
  app.openAPIRegistry.register('PipelineRequest', PipelineRequest);
  // A stream counts against its caller's key, like the rate limit, else its address.
  const clientOf = (c: Context<AppEnv>) => c.get('caller') ?? addressSubject(c, { trustedHops, peerAddress: clientAddress });
  const view = statusView(deps.webhooks?.outbox);
  const streams = new StatusStreams(deps.settings.statusStreams, { jobs: deps.jobs, view }, deps.stopping);
  metrics.watchStreams?.(() => streams.size);
  app.openapi(statusRoute, statusHandler({ ...deps, clientOf, streams, view }));
  app.openapi(downloadRoute, downloadHandler(deps));
  app.openapi(listRoute, listHandler(deps));
  // The original service's routes (docs/migration.md).
  app.openapi(uploadImageRoute, uploadImageHandler(deps));
  app.openapi(tasksRoute, tasksHandler(deps));

  describeApi(app, deps.settings.version);
  app.get('/metrics', async (c) => {
    const { contentType, text } = await metrics.exposition();
    return c.body(text, 200, { 'Content-Type': contentType });
  });
  app.get(DOCS_PATH, docsPageHandler(deps));
  app.get(DOCS_SCRIPT_PATH, docsScriptHandler(deps));
  app.get(DOCS_HASHED_SCRIPT_ROUTE, docsScriptHandler(deps));
  app.get(FAVICON_PATH, faviconHandler);

  const wrongMethod = methodNotAllowed(() => app.routes);
  app.notFound(
    (c) =>
      wrongMethod(c) ??
      problem(
        new AppError(404, 'not_found', `no route for ${cut(c.req.method)} ${cut(new URL(c.req.url).pathname, 100)}`),
        c.get('requestId'),
      ),
  );
  app.onError((error, c) => {
    const id = c.get('requestId') ?? crypto.randomUUID();
    if (error instanceof AppError) return problem(error, id);
    // A refusal by the HTTP layer gets a code of the vocabulary; one with a status it should never have is ours to fix.
    const code = error instanceof HTTPException ? codeForHttpStatus(error.status, error.message) : undefined;
    if (error instanceof HTTPException && code) {
      const detail = code === 'malformed_json' ? 'the body is not valid JSON' : error.message || 'the request was refused';
      return problem(new AppError(error.status, code, detail), id);
    }
    onUnexpectedError(error, id);
    return problem(new AppError(500, 'internal_error', `something went wrong on our side; quote request_id ${id} when reporting it`), id);
  });
  return app;
}
