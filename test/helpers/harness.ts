/**
 * @module
 * Builds the whole app over real adapters in a temporary folder, for the contract suite and others.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../src/app.js';
import { composeEmbedded, type Service } from '../../src/compose.js';
import { loadConfig } from '../../src/config.js';

export interface Harness {
  /** Sends a request to the app, as `app.request` does. */
  request(path: string, init?: RequestInit): Promise<Response>;
  service: Service;
  dir: string;
  /** Waits until no job is waiting or running. */
  idle(): Promise<void>;
  /** The same storage, opened again by a new service (a restart). */
  restart(): Promise<Harness>;
  close(): Promise<void>;
}

export type HarnessFactory = (env?: Record<string, string>) => Promise<Harness>;

/** The embedded default over a fresh temporary folder. */
export const embeddedHarness: HarnessFactory = async (env = {}) => open(await mkdtemp(join(tmpdir(), 'image-service-')), env);

async function open(dir: string, env: Record<string, string>): Promise<Harness> {
  const config = loadConfig({
    UPLOAD_DIR: join(dir, 'uploads'),
    PROCESSED_DIR: join(dir, 'processed'),
    STATE_DIR: join(dir, 'state'),
    WORKER_CONCURRENCY: '2',
    ...env,
  });
  const service = await composeEmbedded(config);
  const app = createApp(service.deps);
  return {
    request: async (path, init) => app.request(path, init),
    service,
    dir,
    idle: () => service.idle(),
    restart: async () => {
      await service.idle();
      return open(dir, env);
    },
    close: async () => {
      await service.idle();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
