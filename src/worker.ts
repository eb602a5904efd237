/**
 * @module
 * The worker entry point (Redis mode): processes jobs from the queue, `WORKER_CONCURRENCY` at a time, and
 * serves no HTTP. On SIGTERM it stops taking jobs and lets running ones finish (up to
 * SHUTDOWN_TIMEOUT_SECONDS); one still running then is picked up by another worker when its lock expires.
 */
import { composeService } from './compose.js';
import { onStopSignal, readConfigOrExit } from './entry.js';
import { log } from './log.js';

async function main(): Promise<void> {
  const config = readConfigOrExit();
  if (!config.REDIS_URL) {
    console.error('npm run worker needs REDIS_URL: without Redis, the API process does the work itself (npm start)');
    process.exit(1);
  }
  if (config.WORKER_CONCURRENCY === 0) {
    console.error('WORKER_CONCURRENCY must be at least 1 for a worker process');
    process.exit(1);
  }
  const service = await composeService(config);
  log('info', 'worker started', { mode: service.mode, worker_concurrency: config.WORKER_CONCURRENCY });
  onStopSignal(() => service.close(config.SHUTDOWN_TIMEOUT_SECONDS * 1000));
}

void main();
