/**
 * @module
 * `Idempotency-Key` records in Redis (the seed's "session storage": temporary data with an expiry).
 * A claim is a `SET NX` of the fingerprint with a short lease (a process that dies mid-request frees the
 * key when the lease ends); the answer replaces it, kept for the TTL, when the request succeeds.
 *
 * A request that fails because Redis went away cannot release its claim then: the retry its client is told
 * to make would meet `in_progress` for the rest of the lease. So a release that fails is tried again in the
 * background until it lands, but only while this claim's lease still runs (after it, the key may be
 * someone else's claim, which a late release must not drop).
 */
import type { Redis } from 'ioredis';
import type { IdempotencyClaim, IdempotencyStore } from '../ports.js';
import type { IdempotencyLifetimes } from './memory-idempotency.js';
import { guarded } from './redis-connection.js';

interface Stored {
  fingerprint: string;
  answer?: { status: number; body: unknown };
}

/** How often a release that could not reach Redis is tried again. */
const RELEASE_RETRY_MS = 500;
/** A late release stops this long before the lease it would end runs out (clocks and round trips). */
const LEASE_MARGIN_MS = 5000;

export class RedisIdempotency implements IdempotencyStore {
  /** This process's claims still under way: when each one's lease ends. */
  private readonly leaseEnds = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly lifetimes: IdempotencyLifetimes,
  ) {}

  private key(key: string): string {
    return `${this.prefix}:idem:${key}`;
  }

  claim(key: string, fingerprint: string): Promise<IdempotencyClaim> {
    return guarded(async () => {
      const claimed = await this.redis.set(
        this.key(key),
        JSON.stringify({ fingerprint } satisfies Stored),
        'EX',
        this.lifetimes.leaseSeconds,
        'NX',
      );
      if (claimed === 'OK') {
        this.leaseEnds.set(key, Date.now() + this.lifetimes.leaseSeconds * 1000);
        return { state: 'claimed' };
      }
      const text = await this.redis.get(this.key(key));
      if (!text) return this.claim(key, fingerprint);
      const stored = JSON.parse(text) as Stored;
      if (stored.fingerprint !== fingerprint) return { state: 'mismatch' };
      return stored.answer ? { state: 'replay', ...stored.answer } : { state: 'in_progress' };
    });
  }

  complete(key: string, fingerprint: string, status: number, body: unknown): Promise<void> {
    this.leaseEnds.delete(key);
    return guarded(async () => {
      await this.redis.set(
        this.key(key),
        JSON.stringify({ fingerprint, answer: { status, body } } satisfies Stored),
        'EX',
        this.lifetimes.ttlSeconds,
      );
    });
  }

  async release(key: string): Promise<void> {
    const leaseEnd = this.leaseEnds.get(key) ?? 0;
    this.leaseEnds.delete(key);
    const drop = () =>
      guarded(async () => {
        await this.redis.del(this.key(key));
      });
    try {
      await drop();
    } catch (error) {
      this.releaseLater(drop, leaseEnd);
      throw error;
    }
  }

  /** Tries `drop` again until it lands or the claim's lease is nearly over. */
  private releaseLater(drop: () => Promise<void>, leaseEnd: number): void {
    const timer = setTimeout(() => {
      if (Date.now() > leaseEnd - LEASE_MARGIN_MS - RELEASE_RETRY_MS) return;
      drop().catch(() => this.releaseLater(drop, leaseEnd));
    }, RELEASE_RETRY_MS);
    timer.unref();
  }
}
