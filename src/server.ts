/**
 * @module
 * The API entry point: configuration → adapters → app → HTTP server. On SIGTERM (ECS sends it, then SIGKILL
 * after stopTimeout): stop accepting connections, finish in-flight requests, let running jobs finish within
 * SHUTDOWN_TIMEOUT_SECONDS (embedded: unfinished ones run at the next start; Redis: BullMQ hands them to
 * another worker), close Redis, exit 0.
 */
import { serve, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Server } from 'node:http';
import type { Readable } from 'node:stream';
import { createApp } from './app.js';
import { composeService } from './compose.js';
import { within } from './compose-shared.js';
import { exitOnListenError, onStopSignal, readConfigOrExit } from './entry.js';
import { httpServerOptions, limitConnections } from './http-limits.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';
import { keepEventLoopFirst } from './thread-priority.js';

/** How long a stop waits for cut uploads to remove their staged bytes (a local disk: milliseconds; S3: a call). */
const UPLOADS_SETTLE_MS = 5000;
const STOPPING_KEEP_ALIVE_MS = 1000;

async function main(): Promise<void> {
  const config = readConfigOrExit();
  const logger = createLogger(config.LOG_LEVEL, 'api');
  const metrics = createMetrics();
  // Node's own request stream for each Request, for the upload receiver: the app itself sees only Requests.
  const nodeBodies = new WeakMap<Request, Readable>();
  const service = await composeService(config, { logger, metrics, nodeBodyOf: (request) => nodeBodies.get(request) });
  keepEventLoopFirst();
  const stopping = new AbortController();
  const app = createApp(
    { ...service.deps, stopping: stopping.signal },
    {
      logger,
      metrics,
      onUnexpectedError: (error, requestId) =>
        logger.error({ request_id: requestId, err: error instanceof Error ? error.stack : String(error) }, 'unexpected error'),
      clientAddress: (c) => getConnInfo(c).remote.address,
    },
  );
  const fetch = (request: Request, env: HttpBindings | Http2Bindings) => {
    nodeBodies.set(request, env.incoming);
    // The bindings stay for getConnInfo (the client address) in this file; the app's routes never read them.
    return app.fetch(request, env);
  };
  const server = serve({ fetch, port: config.PORT, hostname: config.HOST, serverOptions: httpServerOptions(config) }, (info) => {
    logger.info({ port: info.port, mode: service.mode, worker_concurrency: config.WORKER_CONCURRENCY }, 'listening');
  }) as Server;
  exitOnListenError(server, config.HOST, config.PORT);
  limitConnections(server, config);

  onStopSignal(logger, async () => {
    const deadline = config.SHUTDOWN_TIMEOUT_SECONDS * 1000;
    stopping.abort();
    // No new connections; idle keep-alive ones close now, busy ones once their request is answered (and
    // idle a second, not the ALB-sized keep-alive: the ALB sends nothing more to a target it has drained).
    server.keepAliveTimeout = STOPPING_KEEP_ALIVE_MS;
    const requestsDone = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const drained = within(requestsDone, deadline).then(async () => {
      // Uploads still arriving at the deadline are cut; what they staged is removed before the store closes.
      server.closeAllConnections();
      await within(service.deps.uploads.idle(), UPLOADS_SETTLE_MS);
    });
    // Jobs finish while requests drain; Redis and the store's connections close only once both are done.
    await service.close(deadline, drained);
  });
}

void main();
