/**
 * Rate limits over real sockets: the server hands the app the connection's peer address (getConnInfo), and
 * with TRUST_PROXY=1 the entry the proxy appended to X-Forwarded-For, so each client has its own count.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, stopAll, type ServerProcess } from '../helpers/server-process.js';

describe('server process with RATE_LIMIT_PER_MINUTE=2 and TRUST_PROXY=1', () => {
  let server: ServerProcess;
  const statuses = async (count: number, headers: () => Record<string, string>) => {
    const seen: number[] = [];
    for (let i = 0; i < count; i++) seen.push((await fetch(`${server.baseUrl}/list`, { headers: headers() })).status);
    return seen;
  };

  beforeAll(async () => {
    server = await startServer({ RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: '1' });
  });
  afterAll(() => stopAll([server]));

  it('counts per forwarded client, and per socket address when no proxy says who called (tokens change nothing)', async () => {
    expect(await statuses(3, () => ({ 'x-forwarded-for': '203.0.113.1' }))).toEqual([200, 200, 429]);
    expect(await statuses(1, () => ({ 'x-forwarded-for': '203.0.113.2' }))).toEqual([200]);
    expect(await statuses(3, () => ({ authorization: `Bearer ${randomUUID()}` }))).toEqual([200, 200, 429]);
    expect((await fetch(`${server.baseUrl}/health`)).status).toBe(200);
  });
});
