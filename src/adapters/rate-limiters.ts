/**
 * @module
 * Rate limiters (requests per minute per subject) by the generic cell rate algorithm, a refilling bucket:
 * a subject may send `perMinute` requests at once, then one every 60/`perMinute` seconds. Unlike a fixed
 * window, there is no minute boundary at which a full allowance is spent and at once granted again (2×
 * the limit within a second); each subject keeps one number, the time its allowance is whole again.
 *
 * In memory for one process, bounded in subjects (the least recently seen forgotten first), or in Redis so
 * that every API process shares one count: one Lua script, atomic, on Redis's clock (API hosts' clocks may
 * differ). When Redis cannot be reached, each process limits by its own count in memory until it is back.
 */
import type { Redis } from 'ioredis';
import type { RateLimiter } from '../ports.js';

const MINUTE_MICROS = 60_000_000;

/**
 * Whole microseconds per request, and the burst as that many of them (so a burst is exactly `perMinute`
 * requests, whatever the rounding); integers, so sums of them are exact.
 */
function pace(perMinute: number): { intervalMicros: number; burstMicros: number } {
  const intervalMicros = Math.max(1, Math.round(MINUTE_MICROS / perMinute));
  return { intervalMicros, burstMicros: intervalMicros * perMinute };
}

/** About 100 bytes each: a flood of distinct addresses costs at most ~10 MB before the oldest are forgotten. */
export const MAX_SUBJECTS = 100_000;

const allowed = { allowed: true, retryAfterSeconds: 0 } as const;
const refused = (waitMicros: number) => ({ allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMicros / 1_000_000)) });

export interface MemoryRateLimiterOptions {
  /** How many subjects are remembered at most; beyond it, the least recently seen is forgotten. */
  maxSubjects?: number;
  now?: () => number;
}

export class MemoryRateLimiter implements RateLimiter {
  /** Subject → when its allowance is whole again (µs), in the order they were last seen. */
  private readonly wholeAt = new Map<string, number>();
  private readonly intervalMicros: number;
  private readonly burstMicros: number;
  private readonly maxSubjects: number;
  private readonly now: () => number;

  constructor(perMinute: number, { maxSubjects = MAX_SUBJECTS, now = () => Date.now() }: MemoryRateLimiterOptions = {}) {
    ({ intervalMicros: this.intervalMicros, burstMicros: this.burstMicros } = pace(perMinute));
    this.maxSubjects = maxSubjects;
    this.now = now;
  }

  /** How many subjects are remembered now. */
  get size(): number {
    return this.wholeAt.size;
  }

  async hit(subject: string) {
    const now = Math.round(this.now() * 1000);
    this.forgetWhole(now);
    const wholeAt = Math.max(this.wholeAt.get(subject) ?? now, now);
    const next = wholeAt + this.intervalMicros;
    const isAllowed = next - now <= this.burstMicros;
    // Moved to the end even when refused: a subject still knocking is the last one to forget.
    this.wholeAt.delete(subject);
    this.wholeAt.set(subject, isAllowed ? next : wholeAt);
    if (this.wholeAt.size > this.maxSubjects) this.wholeAt.delete(this.wholeAt.keys().next().value!);
    return isAllowed ? allowed : refused(next - this.burstMicros - now);
  }

  /**
   * A subject whose allowance is whole is the same as one never seen. The least recently seen are first;
   * once the first is not whole, it and every later one were seen within the last minute.
   */
  private forgetWhole(now: number): void {
    for (const [subject, wholeAt] of this.wholeAt) {
      if (wholeAt > now) return;
      this.wholeAt.delete(subject);
    }
  }
}

/**
 * KEYS[1] the subject's key; ARGV[1] µs per request, ARGV[2] the burst in µs (`pace()`). Returns 0 when allowed,
 * otherwise the µs to wait. The time is kept as an integer string (Lua would write a float as 1.7e+15).
 */
const HIT = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local whole_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if whole_at < now then whole_at = now end
local later = whole_at + interval
if later - now > burst then return later - burst - now end
redis.call('SET', KEYS[1], string.format('%.0f', later), 'PX', math.ceil((later - now) / 1000))
return 0
`;

type ScriptedRedis = Redis & { rateLimitHit(key: string, intervalMicros: string, periodMicros: string): Promise<number> };

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: ScriptedRedis;
  private readonly pace: [intervalMicros: string, burstMicros: string];
  /** Used while Redis is unreachable: each process then limits on its own. */
  private readonly fallback: MemoryRateLimiter;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    perMinute: number,
  ) {
    redis.defineCommand('rateLimitHit', { numberOfKeys: 1, lua: HIT });
    this.redis = redis as ScriptedRedis;
    const { intervalMicros, burstMicros } = pace(perMinute);
    this.pace = [String(intervalMicros), String(burstMicros)];
    this.fallback = new MemoryRateLimiter(perMinute);
  }

  async hit(subject: string) {
    // The API connection has no offline queue: while it is down a command fails at once rather than waits.
    if (this.redis.status !== 'ready') return this.fallback.hit(subject);
    try {
      const waitMicros = Number(await this.redis.rateLimitHit(`${this.prefix}:rate:${subject}`, ...this.pace));
      return waitMicros > 0 ? refused(waitMicros) : allowed;
    } catch {
      return this.fallback.hit(subject);
    }
  }
}
