/**
 * @module
 * ioredis connections for the two kinds of client, and the probe `/health` and the readiness gate use.
 * - `api`: fails fast. No offline queue, one retry, short timeouts: a request never hangs on a dead Redis,
 *   it gets a 503 at once.
 * - `worker`: BullMQ's requirement for workers, `maxRetriesPerRequest: null`, so blocking commands wait out
 *   a reconnection instead of throwing.
 * - `events`: a pub/sub subscriber (job-finished notices); like `worker`, it waits out a reconnection and
 *   subscribes again after one.
 * Both reconnect forever with a capped backoff, so the service resumes by itself when Redis is back.
 * `rediss://` URLs get TLS (ElastiCache in-transit encryption).
 */
import { Redis, ReplyError, type RedisOptions } from 'ioredis';
import { AppError, unavailable } from '../domain/errors.js';
import type { RedisProbe } from '../ports.js';

export type ConnectionKind = 'api' | 'worker' | 'events';

const reconnect = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000);

export function connectRedis(url: string, kind: ConnectionKind, onError: (error: Error) => void): Redis {
  const options: RedisOptions =
    kind === 'api'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 2000, retryStrategy: reconnect }
      : { maxRetriesPerRequest: null, connectTimeout: 5000, retryStrategy: reconnect };
  const client = new Redis(url, { ...options, connectionName: `image-service:${kind}` });
  // Without a listener, a connection error would be an unhandled 'error' event and crash the process.
  client.on('error', onError);
  return client;
}

/**
 * Waits until the connection is ready, at most `timeoutMs`. A service still starts when Redis is down (it
 * reports itself unhealthy and resumes when Redis is back), but one whose Redis is up is ready at once.
 */
export function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(false), timeoutMs);
    const onReady = () => finish(true);
    function finish(ready: boolean) {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ready);
    }
    client.on('ready', onReady);
  });
}

/** Deletes every key under `prefix:` (a deployment's, a test's or a benchmark's), a batch at a time. */
export async function deleteKeysUnder(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** Errors of our own code, not of Redis: passed on as they are, so they are logged as what they are. */
const PROGRAM_ERRORS = new Set(['RangeError', 'TypeError', 'SyntaxError', 'ReferenceError']);

/**
 * Runs a Redis call. A failure of the connection becomes a 503 `redis_unavailable` with Retry-After; an
 * error Redis answered with (out of memory, a script error) a 503 `redis_error` that says so; a bug of
 * ours stays itself (it used to be reported as "Redis is unreachable", hiding it).
 */
export async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof AppError || (error instanceof Error && PROGRAM_ERRORS.has(error.name))) throw error;
    if (error instanceof ReplyError) {
      throw unavailable('redis_error', `Redis refused the command (${String((error as Error).message).split(' ')[0]}); retry shortly`, 5);
    }
    throw unavailable('redis_unavailable', 'Redis is unreachable; retry shortly', 2);
  }
}

export function redisProbe(client: Redis): RedisProbe {
  return {
    ready: () => client.status === 'ready',
    async ping() {
      if (client.status !== 'ready') return { status: 'disconnected' };
      const started = performance.now();
      try {
        await client.ping();
        return { status: 'connected', latency_ms: Math.round((performance.now() - started) * 100) / 100 };
      } catch {
        return { status: 'disconnected' };
      }
    },
  };
}
