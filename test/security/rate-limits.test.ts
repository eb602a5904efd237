/**
 * Rate limits that cannot be walked around: counted per validated API key, otherwise per client address
 * (never per token: a fresh token per request bought a fresh bucket); 401s count against the address;
 * `X-Forwarded-For` believed only as far as `TRUST_PROXY` says; the docs page's own files never limited.
 * Run over the embedded default and over Redis (two API instances on one Redis share the counts).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { expectProblem } from '../helpers/client.js';
import { embeddedHarness, redisHarness, type HarnessFactory } from '../helpers/harness.js';
import { deleteKeys, testRedis } from '../helpers/redis.js';

const redis = await testRedis();
afterAll(() => redis?.dispose());

const KEY = 'valid-key-0123456789abcdef';

interface PeerApp {
  /** A request from the connection peer `peer` (what @hono/node-server's getConnInfo would report). */
  send(path: string, init?: RequestInit & { peer?: string }): Promise<Response>;
  close(): Promise<void>;
}

/**
 * The harness's service behind an app told each request's peer, as `src/server.ts` tells it. Apps given
 * the same `REDIS_KEY_PREFIX` share their Redis counts; the keys under it are deleted on close.
 */
async function peerApp(make: HarnessFactory, env: Record<string, string>): Promise<PeerApp> {
  const harness = await make(env);
  const app = createApp(harness.service.deps, {
    logger: silentLogger,
    metrics: createMetrics(),
    clientAddress: (c) => (c.env as { peer?: string }).peer,
  });
  return {
    send: async (path, { peer = '192.0.2.10', ...init } = {}) => app.request(path, init, { peer }),
    close: async () => {
      await harness.close();
      if (redis && env.REDIS_KEY_PREFIX) await deleteKeys(redis.url, env.REDIS_KEY_PREFIX);
    },
  };
}

const statuses = async (count: number, request: (i: number) => Promise<Response>) => {
  const seen: number[] = [];
  for (let i = 0; i < count; i++) seen.push((await request(i)).status);
  return seen;
};
const randomToken = () => ({ authorization: `Bearer ${randomUUID()}${randomUUID()}` });

const modes: Array<[string, HarnessFactory]> = [
  ['embedded', embeddedHarness],
  ...(redis ? [['redis', redisHarness(redis.url)] as [string, HarnessFactory]] : []),
];

describe.each(modes)('rate limits (%s)', (_mode, make) => {
  const open = async (env: Record<string, string>) => peerApp(make, { REDIS_KEY_PREFIX: `rl-${randomUUID().slice(0, 8)}`, ...env });

  it('with API_KEYS unset, a fresh bearer token per request is still counted against the address', async () => {
    const service = await open({ RATE_LIMIT_PER_MINUTE: '3' });
    try {
      expect(await statuses(4, () => service.send('/list', { headers: randomToken() }))).toEqual([200, 200, 200, 429]);
      expect(await statuses(1, () => service.send('/list'))).toEqual([429]);
      // Another address has its own allowance.
      expect((await service.send('/list', { peer: '198.51.100.20', headers: randomToken() })).status).toBe(200);
    } finally {
      await service.close();
    }
  });

  it('with API_KEYS, unknown tokens get 401 and count against the address (then 429); a valid key keeps its own bucket', async () => {
    const service = await open({ RATE_LIMIT_PER_MINUTE: '3', API_KEYS: KEY });
    try {
      const guesses = await statuses(3, (i) => service.send('/list', { headers: i === 1 ? {} : randomToken() }));
      expect(guesses).toEqual([401, 401, 401]);
      const refused = await service.send('/list', { headers: randomToken() });
      const body = await expectProblem(refused, 429, 'rate_limited');
      expect(body.detail).toMatch(/at most 3 requests a minute \(RATE_LIMIT_PER_MINUTE\)/);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      // The valid key, from the same address, was not charged for the guesses.
      const valid = { authorization: `Bearer ${KEY}` };
      expect(await statuses(4, () => service.send('/list', { headers: valid }))).toEqual([200, 200, 200, 429]);
      // Another address guessing is refused for the key, not for the rate.
      await expectProblem(await service.send('/list', { peer: '198.51.100.20', headers: randomToken() }), 401, 'unauthorized');
    } finally {
      await service.close();
    }
  });

  it('TRUST_PROXY=1 (behind the ALB): distinct clients in X-Forwarded-For get distinct buckets; what a client prepends is ignored', async () => {
    const service = await open({ RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: '1' });
    const alb = '10.0.1.5';
    const via = (client: string, spoofed = '') =>
      service.send('/list', { peer: alb, headers: { 'x-forwarded-for': `${spoofed}${client}` } });
    try {
      expect(await statuses(3, () => via('203.0.113.1'))).toEqual([200, 200, 429]);
      expect(await statuses(2, () => via('203.0.113.2'))).toEqual([200, 200]);
      // A spoofed entry to the left, or a fresh one each time, does not change who the ALB says called.
      expect(await statuses(2, (i) => via('203.0.113.1', `198.51.100.${i}, `))).toEqual([429, 429]);
      // IPv6 clients count by their /64.
      expect(await statuses(3, (i) => via(`2001:db8:5:6::${i + 1}`))).toEqual([200, 200, 429]);
    } finally {
      await service.close();
    }
  });

  it('TRUST_PROXY=0 (the default): X-Forwarded-For is ignored, so spoofing it (or the token) buys nothing', async () => {
    const service = await open({ RATE_LIMIT_PER_MINUTE: '2' });
    try {
      const spoofing = (i: number) => service.send('/list', { headers: { 'x-forwarded-for': `203.0.113.${i}`, ...randomToken() } });
      expect(await statuses(3, spoofing)).toEqual([200, 200, 429]);
      expect((await service.send('/list', { peer: '::ffff:198.51.100.7' })).status).toBe(200);
    } finally {
      await service.close();
    }
  });

  it('the docs page, its script and the OpenAPI document (and /, /health) are never limited, with or without API_KEYS', async () => {
    for (const env of [{ RATE_LIMIT_PER_MINUTE: '1' }, { RATE_LIMIT_PER_MINUTE: '1', API_KEYS: KEY }] as Array<Record<string, string>>) {
      const service = await open(env);
      try {
        for (const path of ['/docs', '/docs/scalar.js', '/openapi.json', '/', '/health']) {
          expect(await statuses(3, () => service.send(path)), path).toEqual([200, 200, 200]);
        }
        // They did not spend the address's allowance either.
        const first = await service.send('/list', { headers: { authorization: `Bearer ${KEY}` } });
        expect(first.status).toBe(200);
      } finally {
        await service.close();
      }
    }
  });
});

describe.runIf(redis !== undefined)('rate limits over one Redis', () => {
  it("two API instances share each address's and each key's count, and keep different clients apart", async () => {
    const env = { RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: '1', API_KEYS: KEY, REDIS_KEY_PREFIX: `rl-${randomUUID().slice(0, 8)}` };
    const a = await peerApp(redisHarness(redis!.url), env);
    const b = await peerApp(redisHarness(redis!.url), env);
    const from = (client: string, authorization?: string) => ({
      peer: '10.0.1.5',
      headers: { 'x-forwarded-for': client, ...(authorization ? { authorization } : {}) },
    });
    try {
      expect(await statuses(4, (i) => (i % 2 ? b : a).send('/list', from('203.0.113.1')))).toEqual([401, 401, 401, 429]);
      expect(await statuses(4, (i) => (i % 2 ? a : b).send('/list', from('203.0.113.1', `Bearer ${KEY}`)))).toEqual([200, 200, 200, 429]);
      expect((await b.send('/list', from('203.0.113.2'))).status).toBe(401);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
