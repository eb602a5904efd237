/**
 * `/health` in Redis mode says `degraded`, and why, when jobs wait and no worker has been connected for
 * WORKER_ABSENT_SECONDS: an API with no workers used to say `healthy` while nothing ran.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { submit, upload } from './helpers/client.js';
import { redisHarness } from './helpers/harness.js';
import { noisyJpeg } from './helpers/images.js';
import { testRedis } from './helpers/redis.js';

const redis = await testRedis();
afterAll(() => redis?.dispose());

describe.runIf(redis !== undefined)('/health and absent workers', () => {
  it('is healthy at first, then degraded with a reason while jobs wait for a worker that never comes', async () => {
    const h = await redisHarness(redis!.url)({ WORKER_CONCURRENCY: '0', WORKER_ABSENT_SECONDS: '1' });
    try {
      const health = async () =>
        (await (await h.request('/health')).json()) as { status: string; reasons?: string[]; services: { queue: { waiting: number } } };
      expect((await health()).status).toBe('healthy');
      const file = await upload(h.request, await noisyJpeg(40, 30), 'waiting.jpg');
      expect((await submit(h.request, file.file_id, 'operation=grayscale')).status).toBe('queued');
      // The condition must hold for WORKER_ABSENT_SECONDS, as seen by this API: the first look starts the clock.
      expect((await health()).status).toBe('healthy');
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const body = await health();
      expect(body.status).toBe('degraded');
      expect(body.reasons).toEqual([expect.stringMatching(/^1 jobs are waiting and no worker has been connected for \d+ s$/)]);
    } finally {
      // The job never runs (there is no worker), so the stop does not wait for it.
      await h.close(false);
    }
  });
});
