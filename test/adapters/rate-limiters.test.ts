/**
 * The rate limiters: a refilling allowance (a burst of the limit, then one request per 60/limit seconds),
 * never a second full allowance at a minute boundary; the memory one bounded in subjects; the Redis one
 * shared by processes, on Redis's clock, and limiting per process from memory while Redis is down.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_SUBJECTS, MemoryRateLimiter, RedisRateLimiter } from '../../src/adapters/rate-limiters.js';
import { connectRedis } from '../../src/adapters/redis-connection.js';
import { ownedTestRedis, releaseTestRedis, testRedis } from '../helpers/redis.js';

const redis = await testRedis();
const prefix = `rate-${randomUUID().slice(0, 8)}`;
const clients: Redis[] = [];
afterAll(() => releaseTestRedis(redis, { clients, prefixes: [prefix] }));

const hits = async (limiter: { hit(subject: string): Promise<{ allowed: boolean }> }, subject: string, count: number) => {
  const answers: boolean[] = [];
  for (let i = 0; i < count; i++) answers.push((await limiter.hit(subject)).allowed);
  return answers;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('MemoryRateLimiter', () => {
  it('allows a burst of the limit, then one request each 60/limit seconds, with Retry-After until then', async () => {
    let now = 1_000_000;
    const limiter = new MemoryRateLimiter(4, { now: () => now });
    expect(await hits(limiter, 'a', 5)).toEqual([true, true, true, true, false]);
    expect(await limiter.hit('a')).toEqual({ allowed: false, retryAfterSeconds: 15 });
    now += 14_000;
    expect(await limiter.hit('a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    now += 1000;
    expect(await hits(limiter, 'a', 2)).toEqual([true, false]);
    expect(await limiter.hit('b')).toMatchObject({ allowed: true });
    // Refused requests cost nothing: a client that keeps trying is not locked out for longer.
    now += 15_000;
    expect(await limiter.hit('a')).toMatchObject({ allowed: true });
  });

  it('gives no second allowance at a minute boundary (a fixed window gave 2x the limit within a second)', async () => {
    let now = 59_900;
    const limiter = new MemoryRateLimiter(4, { now: () => now });
    expect(await hits(limiter, 'a', 4)).toEqual([true, true, true, true]);
    now = 60_100;
    expect(await hits(limiter, 'a', 4)).toEqual([false, false, false, false]);
  });

  it('a burst is exactly the limit whatever the rounding of the pace', async () => {
    for (const perMinute of [7, 13, 600, 999_999]) {
      const limiter = new MemoryRateLimiter(perMinute, { now: () => 5_000 });
      const answers = await hits(limiter, 's', perMinute + 1);
      expect(answers.filter(Boolean).length, String(perMinute)).toBe(perMinute);
    }
  });

  it('stays bounded under a flood of distinct subjects, forgetting the least recently seen first', async () => {
    let now = 0;
    const limiter = new MemoryRateLimiter(2, { maxSubjects: 1000, now: () => now });
    expect(await hits(limiter, 'regular', 2)).toEqual([true, true]);
    for (let i = 0; i < 20_000; i++) {
      await limiter.hit(`ip:flood-${i}`);
      if (i % 100 === 0) await limiter.hit('busy');
    }
    expect(limiter.size).toBeLessThanOrEqual(1000);
    // 'busy' kept knocking, so it is still remembered (and limited); 'regular' was the oldest, forgotten.
    expect((await limiter.hit('busy')).allowed).toBe(false);
    expect((await limiter.hit('regular')).allowed).toBe(true);
    // A subject whose allowance is whole again is forgotten: memory follows the last minute's subjects.
    now += 61_000;
    await limiter.hit('later');
    expect(limiter.size).toBe(1);
    expect(MAX_SUBJECTS).toBeLessThanOrEqual(100_000);
  });
});

describe.runIf(redis !== undefined)('RedisRateLimiter', () => {
  const connect = () => {
    const client = connectRedis(redis!.url, 'api', () => undefined);
    clients.push(client);
    return client;
  };
  const ready = async (client: Redis) => {
    while (client.status !== 'ready') await sleep(10);
    return client;
  };

  it('two processes share one count, and the key lives no longer than the allowance takes to refill', async () => {
    const [a, b] = [new RedisRateLimiter(await ready(connect()), prefix, 3), new RedisRateLimiter(await ready(connect()), prefix, 3)];
    const subject = `ip:${randomUUID()}`;
    expect([(await a.hit(subject)).allowed, (await b.hit(subject)).allowed, (await a.hit(subject)).allowed]).toEqual([true, true, true]);
    const refused = await b.hit(subject);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(19);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(20);
    const ttl = await clients[0]!.pttl(`${prefix}:rate:${subject}`);
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('refills: after a burst, one more request each 60/limit seconds', async () => {
    const limiter = new RedisRateLimiter(await ready(connect()), prefix, 60);
    const subject = `key:${randomUUID()}`;
    const burst = await hits(limiter, subject, 61);
    expect(burst.filter(Boolean).length).toBe(60);
    expect(burst[60]).toBe(false);
    await sleep(1100);
    // One more each second since the burst began (two if the burst itself took most of a second).
    const later = await hits(limiter, subject, 4);
    expect(later[0]).toBe(true);
    expect(later.filter(Boolean).length).toBeLessThanOrEqual(2);
    expect(later[3]).toBe(false);
  });
});

describe('RedisRateLimiter with Redis down', () => {
  it('limits each process from memory instead of letting every request through', async () => {
    const own = await ownedTestRedis();
    if (!own) return;
    const client = connectRedis(own.url, 'api', () => undefined);
    try {
      while (client.status !== 'ready') await sleep(10);
      const limiter = new RedisRateLimiter(client, prefix, 3);
      expect(await hits(limiter, 'ip:192.0.2.1', 1)).toEqual([true]);
      await own.stop();
      while (client.status === 'ready') await sleep(10);
      expect(await hits(limiter, 'ip:192.0.2.1', 4)).toEqual([true, true, true, false]);
      expect((await limiter.hit('ip:192.0.2.2')).allowed).toBe(true);
    } finally {
      client.disconnect();
      await own.dispose();
    }
  });
});
