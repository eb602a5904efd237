/**
 * @module
 * Builds the adapters for a configuration, once, at start-up. Without `REDIS_URL`: the embedded default
 * (`compose-embedded.ts`). With it: Redis mode (`compose-redis.ts`, loaded only then: ioredis and BullMQ are
 * a third of the heap the embedded default would otherwise carry). Files go to the store `STORAGE_URL`
 * names (S3), or to `UPLOAD_DIR`/`PROCESSED_DIR` on disk.
 */
import { composeEmbedded } from './compose-embedded.js';
import type { Edge, Service } from './compose-shared.js';
import type { Config } from './config.js';
import { silentLogger } from './log.js';
import { createMetrics } from './metrics.js';

export type { Service } from './compose-shared.js';
export type ComposeOptions = Partial<Edge>;

export async function composeService(
  config: Config,
  { logger = silentLogger, metrics = createMetrics(), ...rest }: ComposeOptions = {},
): Promise<Service> {
  const edge: Edge = { logger, metrics, ...rest };
  if (!config.REDIS_URL) return composeEmbedded(config, edge);
  const { composeRedis } = await import('./compose-redis.js');
  return composeRedis(config, config.REDIS_URL, edge);
}
