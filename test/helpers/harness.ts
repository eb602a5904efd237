/**
 * @module
 * Builds the whole app over real adapters in a temporary folder, for the contract suite and others.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createApp } from '../../src/app.js';
import { composeService, type ComposeOptions, type Service } from '../../src/compose.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { MemoryStore } from '../../src/adapters/memory-store.js';
import { deleteKeys } from './redis.js';
import { S3_CREDENTIALS, type TestS3 } from './s3-server.js';

export interface Harness {
  /** Sends a request to the app, as `app.request` does. */
  request(path: string, init?: RequestInit): Promise<Response>;
  /**
   * The same, with the body also handed over as a Node stream, as @hono/node-server does (`c.env.incoming`):
   * exercises the uploads' direct-stream path without a socket.
   */
  requestAsNode(path: string, init?: RequestInit): Promise<Response>;
  service: Service;
  dir: string;
  /** Waits until no job is waiting or running. */
  idle(): Promise<void>;
  /** The same storage, opened again by a new service (a restart). */
  restart(): Promise<Harness>;
  /** Stops the service (after its jobs finish, unless told not to wait) and removes its folder and keys. */
  close(waitForJobs?: boolean): Promise<void>;
}

export type HarnessFactory = (env?: Record<string, string>, seen?: ComposeOptions) => Promise<Harness>;

/** The embedded default over a fresh temporary folder. */
export const embeddedHarness: HarnessFactory = async (env = {}, seen = {}) =>
  open(await mkdtemp(join(tmpdir(), 'image-service-')), env, seen);

/** The embedded default with uploads and results in memory (records still under a temporary folder). */
export const memoryHarness: HarnessFactory = async (env = {}, seen = {}) =>
  open(await mkdtemp(join(tmpdir(), 'image-service-memory-')), env, { store: new MemoryStore(), ...seen });

/**
 * The embedded default with uploads and results in the S3 server `s3`, under a key prefix of its own. The
 * AWS SDK reads the credentials from the environment (the standard chain), so they are set here.
 */
export function s3Harness(s3: TestS3): HarnessFactory {
  return async (env = {}, seen = {}) => {
    const s3env = s3.env();
    Object.assign(process.env, S3_CREDENTIALS);
    return open(await mkdtemp(join(tmpdir(), 'image-service-s3-')), { ...s3env, ...env }, seen);
  };
}

/** Redis mode against `url`, under a key prefix of its own, with a worker in the same process. */
export function redisHarness(url: string): HarnessFactory {
  return async (env = {}, seen = {}) => {
    const prefix = `test-${randomUUID().slice(0, 8)}`;
    const harness = await open(
      await mkdtemp(join(tmpdir(), 'image-service-redis-')),
      { REDIS_URL: url, REDIS_KEY_PREFIX: prefix, ...env },
      seen,
    );
    const close = harness.close;
    return {
      ...harness,
      close: async (waitForJobs) => {
        await close(waitForJobs);
        await deleteKeys(url, prefix);
      },
    };
  };
}

async function open(dir: string, env: Record<string, string>, seen: ComposeOptions): Promise<Harness> {
  const config = loadConfig({
    UPLOAD_DIR: join(dir, 'uploads'),
    PROCESSED_DIR: join(dir, 'processed'),
    STATE_DIR: join(dir, 'state'),
    // Kept across restart(): a restarted process is the same instance and clears its own leftovers.
    INSTANCE_ID: `test-${dir.slice(-6).replace(/[^A-Za-z0-9]/g, 'x')}`,
    WORKER_CONCURRENCY: '2',
    ...env,
  });
  const nodeBodies = new WeakMap<Request, Readable>();
  const logger = seen.logger ?? silentLogger;
  const metrics = seen.metrics ?? createMetrics();
  const service = await composeService(config, { ...seen, logger, metrics, nodeBodyOf: (request) => nodeBodies.get(request) });
  const app = createApp(service.deps, { logger, metrics });
  return {
    request: async (path, init) => app.request(path, init),
    requestAsNode: async (path, init) => {
      const request = new Request(new URL(path, 'http://localhost'), init);
      // The server's stream and the Request share one body; reading it through the Request is what the
      // receiver must avoid while it holds the Node stream, so it is cloned for the stream.
      if (request.body) nodeBodies.set(request, Readable.fromWeb(request.clone().body as import('node:stream/web').ReadableStream));
      return app.request(request);
    },
    service,
    dir,
    idle: () => service.idle(),
    restart: async () => {
      await service.idle();
      await service.close();
      return open(dir, env, seen);
    },
    close: async (waitForJobs = true) => {
      if (waitForJobs) await service.idle();
      await service.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
