/**
 * @module
 * Builds the adapters for a configuration, once, at start-up: the embedded default (state in this process
 * and on disk, work on an in-process queue). Entry points and end-to-end tests share it.
 */
import { readFileSync } from 'node:fs';
import { DiskStore } from './adapters/disk-store.js';
import { EmbeddedJobStore } from './adapters/embedded-job-store.js';
import { EmbeddedQueue } from './adapters/embedded-queue.js';
import { MultipartReceiver } from './adapters/multipart-receiver.js';
import { scalarAssets } from './adapters/scalar-assets.js';
import { SharpProcessor } from './adapters/sharp-processor.js';
import type { Config } from './config.js';
import { createJobRunner } from './job-runner.js';
import type { AppDeps } from './ports.js';

export interface Service {
  deps: AppDeps;
  /** Resolves when no job is waiting or running. */
  idle(): Promise<void>;
}

/** The version in package.json, found from this file whether it runs from `src/` or `dist/src/`. */
export function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'image-service' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}

export async function composeEmbedded(config: Config): Promise<Service> {
  const store = await DiskStore.open({ uploadDir: config.UPLOAD_DIR, processedDir: config.PROCESSED_DIR });
  const jobs = await EmbeddedJobStore.open(config.STATE_DIR);
  const processor = new SharpProcessor(store, config.MAX_INPUT_PIXELS);
  const runJob = createJobRunner({ jobs, store, processor, timeoutSeconds: config.JOB_TIMEOUT_SECONDS });
  const queue = new EmbeddedQueue(runJob, config.WORKER_CONCURRENCY);
  // Jobs that were queued or running when the process last stopped are finished now.
  for (const processingId of await jobs.unfinishedJobs()) await queue.enqueue(processingId);
  const deps: AppDeps = {
    settings: {
      version: packageVersion(),
      maxFileSize: config.MAX_FILE_SIZE,
      maxInputPixels: config.MAX_INPUT_PIXELS,
      allowedExtensions: config.ALLOWED_EXTENSIONS,
      startedAt: new Date(),
    },
    uploads: new MultipartReceiver(store),
    store,
    processor,
    jobs,
    queue,
    docs: scalarAssets,
  };
  return { deps, idle: () => queue.idle() };
}
