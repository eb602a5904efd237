/**
 * @module
 * Fixed-window rate limiters (requests per minute per subject): in memory for one process, or in Redis so
 * that every API process shares one count. A limiter that cannot reach Redis lets the request through:
 * work-creating routes are refused by the readiness gate anyway, and reads should not fail for it.
 */
import type { Redis } from 'ioredis';
import type { RateLimiter } from '../ports.js';

const WINDOW_SECONDS = 60;

const windowOf = (nowMs: number) => Math.floor(nowMs / 1000 / WINDOW_SECONDS);
const secondsLeft = (nowMs: number) => WINDOW_SECONDS - (Math.floor(nowMs / 1000) % WINDOW_SECONDS);

export class MemoryRateLimiter implements RateLimiter {
  private window = -1;
  private counts = new Map<string, number>();

  constructor(private readonly perMinute: number, private readonly now = () => Date.now()) {}

  async hit(subject: string) {
    const now = this.now();
    if (windowOf(now) !== this.window) {
      this.window = windowOf(now);
      this.counts = new Map();
    }
    const count = (this.counts.get(subject) ?? 0) + 1;
    this.counts.set(subject, count);
    return { allowed: count <= this.perMinute, retryAfterSeconds: secondsLeft(now) };
  }
}

export class RedisRateLimiter implements RateLimiter {
  constructor(private readonly redis: Redis, private readonly prefix: string, private readonly perMinute: number) {}

  async hit(subject: string) {
    const now = Date.now();
    const key = `${this.prefix}:rate:${windowOf(now)}:${subject}`;
    try {
      const [[, count]] = (await this.redis.multi().incr(key).expire(key, WINDOW_SECONDS * 2).exec()) as [[Error | null, number]];
      return { allowed: count <= this.perMinute, retryAfterSeconds: secondsLeft(now) };
    } catch {
      return { allowed: true, retryAfterSeconds: 0 };
    }
  }
}
