/**
 * @module
 * `Idempotency-Key` records for the embedded default: in this process's memory, expiring after the TTL.
 * (They do not survive a restart; Redis mode keeps them in Redis.)
 */
import type { IdempotencyClaim, IdempotencyStore } from '../ports.js';

interface Entry {
  fingerprint: string;
  expiresAt: number;
  answer?: { status: number; body: unknown };
}

export class MemoryIdempotency implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly ttlSeconds: number, private readonly now = () => Date.now()) {}

  async claim(key: string, fingerprint: string): Promise<IdempotencyClaim> {
    this.evictExpired();
    const entry = this.entries.get(key);
    if (!entry) {
      this.entries.set(key, { fingerprint, expiresAt: this.now() + this.ttlSeconds * 1000 });
      return { state: 'claimed' };
    }
    if (entry.fingerprint !== fingerprint) return { state: 'mismatch' };
    return entry.answer ? { state: 'replay', ...entry.answer } : { state: 'in_progress' };
  }

  async complete(key: string, fingerprint: string, status: number, body: unknown): Promise<void> {
    this.entries.set(key, { fingerprint, expiresAt: this.now() + this.ttlSeconds * 1000, answer: { status, body } });
  }

  async release(key: string): Promise<void> {
    this.entries.delete(key);
  }

  private evictExpired(): void {
    const now = this.now();
    // Insertion order is (nearly) expiry order: stop at the first live entry.
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now) break;
      this.entries.delete(key);
    }
  }
}
