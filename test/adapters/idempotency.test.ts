/**
 * Idempotency-Key records in both stores: a claim is a short lease (a process that dies mid-request does not
 * lock the key for 24 h), the in-memory store is bounded, and keys are scoped per API key.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryIdempotency } from '../../src/adapters/memory-idempotency.js';
import { RedisIdempotency } from '../../src/adapters/redis-idempotency.js';
import { expectProblem, submit, upload } from '../helpers/client.js';
import { embeddedHarness } from '../helpers/harness.js';
import { noisyJpeg } from '../helpers/images.js';
import { ownedTestRedis, releaseTestRedis, testRedis } from '../helpers/redis.js';

const redis = await testRedis();
/** A Redis of this file's own, to stop and start again (append-only: its keys outlive the restart). */
const own = await ownedTestRedis();
const prefix = `idem-${randomUUID().slice(0, 8)}`;
const clients: Redis[] = [];
afterAll(async () => {
  await releaseTestRedis(redis, { clients, prefixes: [prefix] });
  await own?.dispose();
});

describe('MemoryIdempotency', () => {
  it('frees a claim whose request never finished once the lease is over, and keeps an answer for the TTL', async () => {
    let now = 0;
    const store = new MemoryIdempotency({ leaseSeconds: 60, ttlSeconds: 86_400 }, 100, () => now);
    expect(await store.claim('k', 'f')).toEqual({ state: 'claimed' });
    now = 59_000;
    expect(await store.claim('k', 'f')).toEqual({ state: 'in_progress' });
    now = 61_000;
    expect(await store.claim('k', 'f')).toEqual({ state: 'claimed' });
    await store.complete('k', 'f', 200, { ok: 1 });
    now = 61_000 + 86_000_000;
    expect(await store.claim('k', 'f')).toEqual({ state: 'replay', status: 200, body: { ok: 1 } });
  });

  it('holds at most maxEntries keys, dropping the oldest', async () => {
    const store = new MemoryIdempotency({ leaseSeconds: 60, ttlSeconds: 86_400 }, 3);
    for (let i = 0; i < 10; i++) await store.complete(`k${i}`, 'f', 200, i);
    expect(store.size).toBe(3);
    expect(await store.claim('k9', 'f')).toMatchObject({ state: 'replay', body: 9 });
    expect(await store.claim('k0', 'f')).toEqual({ state: 'claimed' });
  });
});

describe.runIf(redis !== undefined)('RedisIdempotency', () => {
  it('frees a claim whose request never finished once the lease is over (not after 24 h)', async () => {
    const client = new Redis(redis!.url);
    clients.push(client);
    const store = new RedisIdempotency(client, prefix, { leaseSeconds: 1, ttlSeconds: 86_400 });
    expect(await store.claim('crashed', 'f')).toEqual({ state: 'claimed' });
    expect(await store.claim('crashed', 'f')).toEqual({ state: 'in_progress' });
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(await store.claim('crashed', 'f')).toEqual({ state: 'claimed' });
    await store.complete('crashed', 'f', 200, { done: true });
    expect(await client.ttl(`${prefix}:idem:crashed`)).toBeGreaterThan(86_000);
  });
});

describe.runIf(own !== undefined)('RedisIdempotency with Redis away', () => {
  it("releases a failed request's claim once Redis is back, so the retry its client is told to make runs", async () => {
    // As the API's connection is: no offline queue, so a command fails at once while Redis is away.
    const client = new Redis(own!.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    client.on('error', () => undefined);
    clients.push(client);
    await new Promise((resolve) => client.once('ready', resolve));
    const store = new RedisIdempotency(client, prefix, { leaseSeconds: 60, ttlSeconds: 3600 });
    expect(await store.claim('cut-off', 'f')).toEqual({ state: 'claimed' });
    await own!.stop();
    await expect(store.release('cut-off')).rejects.toBeDefined();
    await own!.start();
    // Within the 60 s lease: the key is free again as soon as the late release lands.
    await expect
      .poll(() => store.claim('cut-off', 'f').catch(() => ({ state: 'unreachable' })), { timeout: 10_000, interval: 200 })
      .toEqual({ state: 'claimed' });
  });
});

describe('Idempotency-Key scoped per API key', () => {
  it('the same key from two API keys is two requests; from one, a replay', async () => {
    const [alice, bob] = ['alice-key-0123456789abcdef', 'bob-key-0123456789abcdef'];
    const h = await embeddedHarness({ API_KEYS: `${alice},${bob}` });
    try {
      const as =
        (token: string) =>
        (path: string, init: RequestInit = {}) =>
          h.request(path, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
      const file = await upload(as(alice), await noisyJpeg(64, 48), 'shared.jpg');
      const post = (token: string) =>
        as(token)(`/process/${file.file_id}?operation=grayscale`, { method: 'POST', headers: { 'idempotency-key': 'same-key' } });
      const first = (await (await post(alice)).json()) as { processing_id: string };
      const again = await post(alice);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(((await again.json()) as { processing_id: string }).processing_id).toBe(first.processing_id);
      const other = await post(bob);
      expect(other.status).toBe(200);
      expect(other.headers.get('idempotent-replayed')).toBeNull();
      expect(((await other.json()) as { processing_id: string }).processing_id).not.toBe(first.processing_id);
      // Another request under the same key by the same caller is still refused.
      await expectProblem(
        await as(alice)(`/process/${file.file_id}?operation=blur`, { method: 'POST', headers: { 'idempotency-key': 'same-key' } }),
        422,
        'idempotency_key_reused',
      );
      expect((await submit(as(bob), file.file_id, 'operation=sepia')).status).toBe('queued');
    } finally {
      await h.close();
    }
  });
});
