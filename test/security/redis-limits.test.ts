/**
 * With Redis configured, the rate-limit counters live in Redis: several API processes share one limit.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { redisHarness } from '../helpers/harness.js';
import { testRedis } from '../helpers/redis.js';

const redis = await testRedis();
afterAll(() => redis?.dispose());

describe.runIf(redis !== undefined)('rate limit in Redis mode', () => {
  it('two API instances on one Redis share one RATE_LIMIT_PER_MINUTE', async () => {
    const env = { RATE_LIMIT_PER_MINUTE: '4', REDIS_KEY_PREFIX: `limit-${randomUUID().slice(0, 8)}` };
    const make = redisHarness(redis!.url);
    const [a, b] = [await make(env), await make(env)];
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await (i % 2 ? b : a).request('/list')).status);
      // 4 allowed in all, not 4 each (a minute boundary inside the loop would allow at most 4 more).
      expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(1);
      expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
