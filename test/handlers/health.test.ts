/**
 * `GET /health` over in-memory ports: what it says of the store.
 */
import { describe, expect, it } from 'vitest';
import { memoryApp } from '../helpers/memory-app.js';

const storage = async (response: Response) => (await response.json()) as { status: string; services: { storage: unknown } };

describe('GET /health (memory store)', () => {
  it('reports the free bytes a store can tell', async () => {
    const m = memoryApp({ storeBytes: 5000 });
    const body = await storage(await m.send('/health'));
    expect(body).toMatchObject({ status: 'healthy', services: { storage: { status: 'ok', free_bytes: 5000 } } });
  });

  it('an unknown free-space figure is "ok" without a figure, not a storage error', async () => {
    const m = memoryApp({
      wrapStore: (store) => Object.assign(Object.create(store) as typeof store, { freeBytes: async () => undefined }),
    });
    const body = await storage(await m.send('/health'));
    expect(body.status).toBe('healthy');
    expect(body.services.storage).toEqual({ status: 'ok' });
  });

  it('a store that does not answer is a storage error (degraded)', async () => {
    const m = memoryApp({
      wrapStore: (store) =>
        Object.assign(Object.create(store) as typeof store, {
          freeBytes: async () => {
            throw new Error('unreachable');
          },
        }),
    });
    const body = await storage(await m.send('/health'));
    expect(body).toMatchObject({ status: 'degraded', services: { storage: { status: 'error' } } });
  });
});
