/**
 * @module
 * The app over in-memory ports only: the memory store, an in-memory job store and queue, the real sharp
 * processor reading from that store. No file system, no server: handler tests send plain `Request`s.
 */
import { EmbeddedJobStore } from '../../src/adapters/embedded-job-store.js';
import { EmbeddedQueue } from '../../src/adapters/embedded-queue.js';
import { MemoryIdempotency } from '../../src/adapters/memory-idempotency.js';
import { MemoryStore } from '../../src/adapters/memory-store.js';
import { MultipartReceiver, type ReceiverLimits } from '../../src/adapters/multipart-receiver.js';
import { SharpProcessor } from '../../src/adapters/sharp-processor.js';
import { createApp } from '../../src/app.js';
import { createJobRunner } from '../../src/job-runner.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import type { AppDeps, ImageStore, JobStore, StatusStreamLimits } from '../../src/ports.js';

export interface MemoryApp {
  /** Sends a plain `Request` to the app. */
  send(path: string, init?: RequestInit): Promise<Response>;
  store: MemoryStore;
  jobs: EmbeddedJobStore;
  queue: EmbeddedQueue;
  deps: AppDeps;
}

export interface MemoryAppOptions {
  maxFileSize?: number;
  storeBytes?: number;
  /** Wraps the store or the job store the handlers see (to inject a fault of our own port). */
  wrapStore?: (store: MemoryStore) => ImageStore;
  wrapJobs?: (jobs: EmbeddedJobStore) => JobStore;
  /** The upload receiver's cap and deadlines (defaults: the configuration's). */
  receiverLimits?: Partial<ReceiverLimits>;
  /** MEMORY_BUDGET_MB in bytes (default: the configuration's 1024 MiB). */
  memoryBudgetBytes?: number;
  /** Jobs run at once (default 1); 0 leaves every job queued. */
  concurrency?: number;
  /** Status stream limits (default: 100 streams, 100 per client, 15 s heartbeats, an hour's age). */
  statusStreams?: Partial<StatusStreamLimits>;
  /** The process's stop, as the server aborts it on SIGTERM. */
  stopping?: AbortSignal;
}

export function memoryApp({
  maxFileSize = 10_485_760,
  storeBytes,
  wrapStore = (s) => s,
  wrapJobs = (j) => j,
  receiverLimits,
  memoryBudgetBytes = 1024 * 1024 * 1024,
  concurrency = 1,
  statusStreams,
  stopping,
}: MemoryAppOptions = {}): MemoryApp {
  const store = new MemoryStore({ maxBytes: storeBytes });
  const jobs = EmbeddedJobStore.inMemory();
  const seenStore = wrapStore(store);
  const seenJobs = wrapJobs(jobs);
  const processor = new SharpProcessor(seenStore, { maxInputPixels: 50_000_000, memoryBudgetBytes });
  const queue = new EmbeddedQueue(createJobRunner({ jobs: seenJobs, store: seenStore, processor, timeoutSeconds: 30 }), concurrency);
  const deps: AppDeps = {
    settings: {
      version: '0.0.0-test',
      maxFileSize,
      maxInputPixels: 50_000_000,
      memoryBudgetBytes,
      allowedExtensions: ['jpg', 'jpeg', 'png', 'gif', 'webp', 'bmp', 'tiff', 'tif'],
      maxQueueDepth: 100,
      workerAbsentSeconds: 30,
      apiKeys: [],
      rateLimitPerMinute: 0,
      startedAt: new Date(),
      statusStreams: { maxStreams: 100, maxPerClient: 100, heartbeatSeconds: 15, maxSeconds: 3600, ...statusStreams },
    },
    uploads: new MultipartReceiver(seenStore, undefined, receiverLimits),
    store: seenStore,
    processor,
    jobs: seenJobs,
    queue,
    docs: { scalarScript: async () => ({ sha256: '0'.repeat(64), identity: new TextEncoder().encode('/* docs */') }) },
    idempotency: new MemoryIdempotency({ leaseSeconds: 60, ttlSeconds: 3600 }),
    ...(stopping ? { stopping } : {}),
  };
  const app = createApp(deps, { logger: silentLogger, metrics: createMetrics() });
  return {
    send: async (path, init) => app.fetch(new Request(new URL(path, 'http://handlers.test'), init)),
    store,
    jobs,
    queue,
    deps,
  };
}
