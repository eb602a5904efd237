/**
 * @module
 * The API entry point: configuration → adapters → app → HTTP server. On SIGTERM: stop accepting
 * connections, finish in-flight requests, let running jobs finish (up to SHUTDOWN_TIMEOUT_SECONDS), exit 0.
 */
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { createApp } from './app.js';
import { composeService } from './compose.js';
import { onStopSignal, readConfigOrExit } from './entry.js';
import { log } from './log.js';

async function main(): Promise<void> {
  const config = readConfigOrExit();
  const service = await composeService(config);
  const app = createApp(service.deps, {
    onUnexpectedError: (error, requestId) => log('error', 'unexpected error', { request_id: requestId, error: String(error), stack: (error as Error)?.stack }),
    clientAddress: (c) => getConnInfo(c).remote.address,
  });
  const server = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, (info) => {
    log('info', 'listening', { port: info.port, mode: service.mode, worker_concurrency: config.WORKER_CONCURRENCY });
  });
  onStopSignal(async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await service.close(config.SHUTDOWN_TIMEOUT_SECONDS * 1000);
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 1000))]);
  });
}

void main();
