/**
 * @module
 * A real Redis for the tests: `REDIS_URL` if set; otherwise a `redis-server` started on a free port when one
 * is on the PATH (append-only, in a temporary folder, so it can be stopped and started again with its data);
 * otherwise none, and the Redis suites say loudly that they skipped. With `REQUIRE_REDIS=1` (CI), no Redis
 * is a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './server-process.js';

export interface TestRedis {
  url: string;
  /** True when the tests started this server themselves (so they may stop and start it). */
  owned: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its folder. */
  dispose(): Promise<void>;
}

const hasRedisServer = () => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

async function waitForPing(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch {
      client.disconnect();
      if (Date.now() > deadline) throw new Error(`Redis at ${url} did not answer within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function ownRedis(): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'test-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', dir, '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
    await waitForPing(url);
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  await start();
  return { url, owned: true, start, stop, dispose: async () => { await stop(); await rm(dir, { recursive: true, force: true }); } };
}

/** A Redis for this test file, or `undefined` (after a loud warning) when there is none to be had. */
export async function testRedis(): Promise<TestRedis | undefined> {
  if (process.env.REDIS_URL) {
    await waitForPing(process.env.REDIS_URL);
    const noop = async () => undefined;
    return { url: process.env.REDIS_URL, owned: false, start: noop, stop: noop, dispose: noop };
  }
  if (hasRedisServer()) return ownRedis();
  if (process.env.REQUIRE_REDIS === '1') throw new Error('REQUIRE_REDIS=1 but no Redis: set REDIS_URL or put redis-server on the PATH');
  console.warn('\n*** SKIPPED: the Redis suites need REDIS_URL or redis-server on the PATH; none was found. ***\n');
  return undefined;
}

/** A server the test may stop and start: its own `redis-server`, even when `REDIS_URL` is set. */
export async function ownedTestRedis(): Promise<TestRedis | undefined> {
  if (hasRedisServer()) return ownRedis();
  if (process.env.REQUIRE_REDIS === '1') throw new Error('REQUIRE_REDIS=1 but redis-server is not on the PATH (the fault tests need their own server)');
  console.warn('\n*** SKIPPED: the Redis fault tests need redis-server on the PATH; none was found. ***\n');
  return undefined;
}

/** Deletes every key under `prefix:` (tests clean up after themselves). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      if (keys.length) await client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}
