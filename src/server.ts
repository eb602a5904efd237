/**
 * @module
 * The Node entry point: configuration → adapters → app → HTTP server, and a clean stop on SIGTERM/SIGINT.
 */
import { serve } from '@hono/node-server';
import { existsSync } from 'node:fs';
import { createApp } from './app.js';
import { composeEmbedded } from './compose.js';
import { ConfigError, loadConfig, type Config } from './config.js';

const SHUTDOWN_GRACE_MS = 25_000;

function readConfig(): Config {
  if (existsSync('.env')) process.loadEnvFile('.env');
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  if (config.REDIS_URL) {
    console.error('REDIS_URL is set, but Redis mode is not built yet: unset it to run on the embedded default');
    process.exit(1);
  }
  const service = await composeEmbedded(config);
  const app = createApp(service.deps, {
    onUnexpectedError: (error, requestId) => console.error(JSON.stringify({ level: 'error', request_id: requestId, error: String(error), stack: (error as Error)?.stack })),
  });
  const server = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, (info) => {
    console.log(JSON.stringify({ level: 'info', msg: 'listening', port: info.port, mode: 'embedded', worker_concurrency: config.WORKER_CONCURRENCY }));
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(JSON.stringify({ level: 'info', msg: 'stopping', signal }));
    server.close();
    const deadline = new Promise((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS).unref());
    // Unfinished jobs are on disk as queued/processing and are run again at the next start.
    void Promise.race([service.idle(), deadline]).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
