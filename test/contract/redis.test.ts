import { afterAll, describe } from 'vitest';
import { redisHarness } from '../helpers/harness.js';
import { testRedis } from '../helpers/redis.js';
import { contractSuite } from './suite.js';

const redis = await testRedis();
afterAll(() => redis?.dispose());

// Without a Redis (and without REQUIRE_REDIS=1) testRedis() has already said loudly that this is skipped.
describe.runIf(redis !== undefined)('Redis mode', () => contractSuite('Redis mode', redisHarness(redis?.url ?? '')));
