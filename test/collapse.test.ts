/**
 * Identical requests at the same moment compute once: both used to answer cached: false and both spent the
 * CPU. The second job now waits for the first one's result (across processes in Redis mode).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { submit, upload, waitForJob } from './helpers/client.js';
import { embeddedHarness, redisHarness, type HarnessFactory } from './helpers/harness.js';
import { noisyJpeg } from './helpers/images.js';
import { testRedis } from './helpers/redis.js';

const redis = await testRedis();
afterAll(() => redis?.dispose());

const modes: Array<[string, HarnessFactory]> = [['embedded', embeddedHarness]];
if (redis) modes.push(['Redis', redisHarness(redis.url)]);

describe.each(modes)('identical jobs at once (%s)', (_mode, makeHarness) => {
  it('computes the result once: one job computes, the others take its result', async () => {
    const h = await makeHarness({ WORKER_CONCURRENCY: '2' });
    try {
      const file = await upload(h.request, await noisyJpeg(1600, 1200), 'same.jpg');
      const request = {
        operations: [
          { operation: 'blur', intensity: 20 },
          { operation: 'resize', width: 300 },
        ],
        format: 'png',
      };
      const accepted = await Promise.all([0, 1, 2].map(() => submit(h.request, file.file_id, request)));
      expect(accepted.map((job) => job.cached)).toEqual([false, false, false]);
      const jobs = await Promise.all(accepted.map((job) => waitForJob(h.request, job.processing_id)));
      expect(jobs.map((job) => job.status)).toEqual(['completed', 'completed', 'completed']);
      expect(new Set(jobs.map((job) => job.result?.sha256)).size).toBe(1);
      expect(jobs.filter((job) => job.cached === false)).toHaveLength(1);
    } finally {
      await h.close();
    }
  });
});
