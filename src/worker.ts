/**
 * @module
 * The worker entry point (Redis mode): processes jobs from the queue, `WORKER_CONCURRENCY` at a time, and
 * serves no HTTP. Every few seconds it logs the queue depth as a CloudWatch Embedded Metric Format line, the
 * metric the ECS worker service scales on. On SIGTERM it stops taking jobs and lets running ones finish
 * (up to SHUTDOWN_TIMEOUT_SECONDS); one still running then is run again by another worker when its lock
 * expires.
 */
import { composeService } from './compose.js';
import { onStopSignal, readConfigOrExit } from './entry.js';
import { createLogger } from './log.js';
import { keepEventLoopFirst } from './thread-priority.js';
import { publishQueueMetrics } from './metrics.js';

const METRIC_INTERVAL_MS = 10_000;

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
  const logger = createLogger(config.LOG_LEVEL, 'worker');
  const service = await composeService(config, { logger });
  // BullMQ renews its job locks from the event loop: it must not wait behind libvips for a core.
  keepEventLoopFirst();
  logger.info({ mode: service.mode, worker_concurrency: config.WORKER_CONCURRENCY }, 'worker started');
  const timer = setInterval(
    () => void publishQueueMetrics(service.deps.queue, logger, 'ImageService').catch(() => undefined),
    METRIC_INTERVAL_MS,
  );
  onStopSignal(logger, async () => {
    clearInterval(timer);
    await service.close(config.SHUTDOWN_TIMEOUT_SECONDS * 1000);
  });
}

void main();
