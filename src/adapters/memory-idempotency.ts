/**
 * @module
 * `Idempotency-Key` records for the embedded default: in this process's memory. A claim is a short lease;
 * an answer is kept for the TTL; at most `maxEntries` are held (the oldest go first), so a flood of keys
 * cannot grow the process. (They do not survive a restart; Redis mode keeps them in Redis.)
 */
import type { IdempotencyClaim, IdempotencyStore } from '../ports.js';

interface Entry {
  fingerprint: string;
  expiresAt: number;
  answer?: { status: number; body: unknown };
}

export interface IdempotencyLifetimes {
  /** How long a claim holds while its request runs; a crash frees the key after this. */
  leaseSeconds: number;
  /** How long an answer is replayed. */
  ttlSeconds: number;
}

export class MemoryIdempotency implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly lifetimes: IdempotencyLifetimes,
    private readonly maxEntries = 100_000,
    private readonly now = () => Date.now(),
  ) {}

  async claim(key: string, fingerprint: string): Promise<IdempotencyClaim> {
    const entry = this.entries.get(key);
    if (!entry || entry.expiresAt <= this.now()) {
      this.put(key, { fingerprint, expiresAt: this.now() + this.lifetimes.leaseSeconds * 1000 });
      return { state: 'claimed' };
    }
    if (entry.fingerprint !== fingerprint) return { state: 'mismatch' };
    return entry.answer ? { state: 'replay', ...entry.answer } : { state: 'in_progress' };
  }

  async complete(key: string, fingerprint: string, status: number, body: unknown): Promise<void> {
    this.put(key, { fingerprint, expiresAt: this.now() + this.lifetimes.ttlSeconds * 1000, answer: { status, body } });
  }

  async release(key: string): Promise<void> {
    this.entries.delete(key);
  }

  /** Sets `key` as the newest entry, then drops expired ones from the oldest end and any past the bound. */
  private put(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    const now = this.now();
    for (const [oldest, { expiresAt }] of this.entries) {
      if (this.entries.size <= this.maxEntries && expiresAt > now) break;
      this.entries.delete(oldest);
    }
  }

  /** How many keys are held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }
}
