/**
 * @module
 * Prometheus metrics (`GET /metrics`): request durations by route and status, job outcomes and processing
 * durations by operation, webhook delivery attempts by outcome, queue depth gauges read at scrape time, and the process defaults.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Operation } from './domain/operations.js';
import type { Logger } from './log.js';
import type { BudgetUse } from './memory-budget.js';
import type { JobQueue, QueueCounts } from './ports.js';
import type { AttemptOutcome } from './webhooks/delivery.js';

export interface Metrics {
  registry: Registry;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  observeJob(outcome: 'completed' | 'failed', operations: Operation[], seconds: number): void;
  /** One webhook delivery attempt made by this process, by its outcome. */
  observeWebhook(outcome: AttemptOutcome): void;
  /** Makes the queue gauges read `queue` at each scrape. */
  watchQueue(queue: JobQueue): void;
  /** Makes the memory budget gauges read `use` at each scrape. */
  watchMemory(use: () => BudgetUse): void;
  /** Makes the status streams gauge read `open` at each scrape. */
  watchStreams(open: () => number): void;
  /** Everything, in Prometheus text format. */
  exposition(): Promise<{ contentType: string; text: string }>;
}

/** One label value per job: the operation, or `pipeline` for several (bounded cardinality). */
const operationLabel = (operations: Operation[]) => (operations.length === 1 ? operations[0]!.operation : 'pipeline');

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const jobs = new Counter({
    name: 'jobs_total',
    help: 'Jobs finished by this process, by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'job_processing_duration_seconds',
    help: 'Processing time of finished jobs by operation (pipeline = several)',
    labelNames: ['operation', 'outcome'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const webhooks = new Counter({
    name: 'webhook_deliveries_total',
    help: 'Webhook delivery attempts made by this process, by outcome: delivered, retrying (failed, tried again later), gone (410, stopped), failed (given up)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  let queue: JobQueue | undefined;
  // Both queue gauges read one `counts()` per scrape (in Redis mode that is several commands, CLIENT LIST among them).
  let recent: { at: number; counts: Promise<QueueCounts | undefined> } | undefined;
  const queueCounts = () => {
    if (!recent || Date.now() - recent.at > 1000)
      recent = { at: Date.now(), counts: queue ? queue.counts().catch(() => undefined) : Promise.resolve(undefined) };
    return recent.counts;
  };
  new Gauge({
    name: 'queue_jobs',
    help: 'Jobs in the queue by state (read at scrape time)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await queueCounts();
      if (!counts) return;
      for (const state of ['waiting', 'active', 'completed', 'failed'] as const) this.set({ state }, counts[state]);
    },
  });
  new Gauge({
    name: 'queue_workers',
    help: 'Workers connected to the queue',
    registers: [registry],
    async collect() {
      const counts = await queueCounts();
      if (counts) this.set(counts.workers);
    },
  });
  let memory: (() => BudgetUse) | undefined;
  new Gauge({
    name: 'job_memory_bytes',
    help: 'The memory budget for jobs (MEMORY_BUDGET_MB) and the part of it running jobs hold, by their estimates',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const use = memory?.();
      if (!use) return;
      this.set({ state: 'budget' }, use.budgetBytes);
      this.set({ state: 'in_use' }, use.inUseBytes);
    },
  });
  new Gauge({
    name: 'jobs_waiting_for_memory',
    help: 'Jobs taken from the queue that wait for room in the memory budget',
    registers: [registry],
    collect() {
      const use = memory?.();
      if (use) this.set(use.waiting);
    },
  });
  let streams: (() => number) | undefined;
  new Gauge({
    name: 'status_streams_open',
    help: 'Status streams (Server-Sent Events on GET /status) this process holds open',
    registers: [registry],
    collect() {
      if (streams) this.set(streams());
    },
  });
  return {
    registry,
    observeRequest: (method, route, status, seconds) => requests.observe({ method, route, status: String(status) }, seconds),
    observeJob: (outcome, operations, seconds) => {
      jobs.inc({ outcome });
      durations.observe({ operation: operationLabel(operations), outcome }, seconds);
    },
    observeWebhook: (outcome) => webhooks.inc({ outcome }),
    watchQueue: (watched) => {
      queue = watched;
    },
    watchMemory: (use) => {
      memory = use;
    },
    watchStreams: (open) => {
      streams = open;
    },
    exposition: async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
  };
}

/** Logs one EMF line: CloudWatch turns it into the metrics QueueWaiting and QueueActive. */
export async function publishQueueMetrics(queue: JobQueue, logger: Logger, namespace: string): Promise<void> {
  const counts = await queue.counts();
  logger.info(
    {
      _aws: {
        Timestamp: Date.now(),
        CloudWatchMetrics: [
          {
            Namespace: namespace,
            Dimensions: [['Queue']],
            Metrics: [
              { Name: 'QueueWaiting', Unit: 'Count' },
              { Name: 'QueueActive', Unit: 'Count' },
            ],
          },
        ],
      },
      Queue: 'images',
      QueueWaiting: counts.waiting,
      QueueActive: counts.active,
    },
    'queue depth',
  );
}
