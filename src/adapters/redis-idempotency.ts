/**
 * @module
 * `Idempotency-Key` records in Redis (the seed's "session storage": temporary data with an expiry).
 * A claim is a `SET NX` of the fingerprint with a short lease (a process that dies mid-request frees the
 * key when the lease ends); the answer replaces it, kept for the TTL, when the request succeeds.
 */
import type { Redis } from 'ioredis';
import type { IdempotencyClaim, IdempotencyStore } from '../ports.js';
import type { IdempotencyLifetimes } from './memory-idempotency.js';
import { guarded } from './redis-connection.js';

interface Stored {
  fingerprint: string;
  answer?: { status: number; body: unknown };
}

export class RedisIdempotency implements IdempotencyStore {
  constructor(private readonly redis: Redis, private readonly prefix: string, private readonly lifetimes: IdempotencyLifetimes) {}

  private key(key: string): string {
    return `${this.prefix}:idem:${key}`;
  }

  claim(key: string, fingerprint: string): Promise<IdempotencyClaim> {
    return guarded(async () => {
      const claimed = await this.redis.set(this.key(key), JSON.stringify({ fingerprint } satisfies Stored), 'EX', this.lifetimes.leaseSeconds, 'NX');
      if (claimed === 'OK') return { state: 'claimed' };
      const text = await this.redis.get(this.key(key));
      if (!text) return this.claim(key, fingerprint);
      const stored = JSON.parse(text) as Stored;
      if (stored.fingerprint !== fingerprint) return { state: 'mismatch' };
      return stored.answer ? { state: 'replay', ...stored.answer } : { state: 'in_progress' };
    });
  }

  complete(key: string, fingerprint: string, status: number, body: unknown): Promise<void> {
    return guarded(async () => {
      await this.redis.set(this.key(key), JSON.stringify({ fingerprint, answer: { status, body } } satisfies Stored), 'EX', this.lifetimes.ttlSeconds);
    });
  }

  release(key: string): Promise<void> {
    return guarded(async () => {
      await this.redis.del(this.key(key));
    });
  }
}
