/**
 * @module
 * The embedded default's webhook outbox: each message and its delivery state in one JSON file under
 * `stateDir/webhooks/` (written atomically, as job records are), attempts run by timers in this process,
 * `concurrency` at a time. A restart loads the files and carries on where the last recorded attempt left
 * off; an attempt cut by the stop is made again, under the same `webhook-id`. Settled records older than
 * `retentionMs` are dropped at start, and while running by a sweep at most once a minute, as a new one comes.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { WebhookOutbox } from '../ports.js';
import {
  attemptDelivery,
  isSettled,
  pendingState,
  type AttemptOutcome,
  type DeliveryDeps,
  type DeliveryState,
  type WebhookMessage,
} from '../webhooks/delivery.js';
import { PARTIAL, writeFileAtomically } from './atomic-file.js';

/** How often an enqueue also forgets settled messages past the retention period (a sweep, not per call). */
const PRUNE_EVERY_MS = 60_000;

const fileName = (record: OutboxRecord) => `${record.message.processingId}.json`;

interface OutboxRecord {
  message: WebhookMessage;
  state: DeliveryState;
}

export interface EmbeddedOutboxOptions {
  /** `undefined`: records are kept in memory only (tests). */
  stateDir: string | undefined;
  delivery: DeliveryDeps;
  concurrency: number;
  retentionMs: number;
  /** Told of every attempt's outcome (metrics). */
  observe?: (outcome: AttemptOutcome) => void;
  onError?: (error: Error) => void;
}

export class EmbeddedWebhookOutbox implements WebhookOutbox {
  private readonly records = new Map<string, OutboxRecord>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly ready: string[] = [];
  private readonly running = new Set<Promise<void>>();
  private closed = false;
  private prunedAt = Date.now();

  private constructor(
    private readonly dir: string | undefined,
    private readonly options: EmbeddedOutboxOptions,
  ) {}

  static async open(options: EmbeddedOutboxOptions): Promise<EmbeddedWebhookOutbox> {
    const dir = options.stateDir === undefined ? undefined : join(resolve(options.stateDir), 'webhooks');
    const outbox = new EmbeddedWebhookOutbox(dir, options);
    if (!dir) return outbox;
    await mkdir(dir, { recursive: true });
    const cutoff = Date.now() - options.retentionMs;
    for (const entry of await readdir(dir)) {
      const path = join(dir, entry);
      if (entry.startsWith(PARTIAL)) {
        await rm(path, { force: true });
        continue;
      }
      const record = JSON.parse(await readFile(path, 'utf8')) as OutboxRecord;
      if (isSettled(record.state) && Date.parse(record.message.createdAt) < cutoff) await rm(path, { force: true });
      else outbox.keep(record);
    }
    return outbox;
  }

  async enqueue(message: WebhookMessage): Promise<void> {
    if (this.records.has(message.processingId)) return;
    const record = { message, state: pendingState(message, new Date()) };
    await this.persist(record);
    this.keep(record);
    if (Date.now() - this.prunedAt >= PRUNE_EVERY_MS) {
      this.prunedAt = Date.now();
      this.prune().catch((error: unknown) => this.options.onError?.(error instanceof Error ? error : new Error(String(error))));
    }
  }

  /** Forgets settled messages older than the retention period, in memory and on disk, as jobs are forgotten. */
  async prune(now = Date.now()): Promise<void> {
    const cutoff = now - this.options.retentionMs;
    for (const [id, record] of this.records) {
      if (!isSettled(record.state) || Date.parse(record.message.createdAt) >= cutoff) continue;
      this.records.delete(id);
      if (this.dir) await rm(join(this.dir, fileName(record)), { force: true });
    }
  }

  async state(processingId: string): Promise<DeliveryState | undefined> {
    return this.records.get(processingId)?.state;
  }

  /** Resolves once no attempt is running or due within `horizonMs` (tests). */
  async settled(horizonMs = 0): Promise<void> {
    for (;;) {
      const dueSoon = [...this.records.values()].some(
        (r) => r.state.status === 'pending' && Date.parse(r.state.next_attempt_at ?? '') <= Date.now() + horizonMs,
      );
      if (!dueSoon && this.running.size === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Stops taking attempts and waits (up to `timeoutMs`) for those running; pending messages stay on disk. */
  async close(timeoutMs = 20_000): Promise<void> {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.race([Promise.allSettled([...this.running]), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }

  private keep(record: OutboxRecord): void {
    this.records.set(record.message.processingId, record);
    if (!isSettled(record.state)) this.schedule(record);
  }

  private schedule(record: OutboxRecord): void {
    if (this.closed) return;
    const id = record.message.processingId;
    const waitMs = Math.max(0, Date.parse(record.state.next_attempt_at ?? '') - Date.now() || 0);
    const timer = setTimeout(() => {
      this.timers.delete(id);
      this.ready.push(id);
      this.pump();
    }, waitMs);
    timer.unref();
    this.timers.set(id, timer);
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.options.concurrency && this.ready.length > 0) {
      const record = this.records.get(this.ready.shift()!);
      if (!record || isSettled(record.state)) continue;
      const run = this.attempt(record)
        .catch((error: unknown) => {
          this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
          // The state could not be recorded (a full disk): try again later rather than lose the message.
          record.state = { ...record.state, next_attempt_at: new Date(Date.now() + 60_000).toISOString() };
          this.schedule(record);
        })
        .finally(() => {
          this.running.delete(run);
          this.pump();
        });
      this.running.add(run);
    }
  }

  private async attempt(record: OutboxRecord): Promise<void> {
    const { outcome, state } = await attemptDelivery(record.message, record.state, this.options.delivery);
    const next = { message: record.message, state };
    await this.persist(next);
    record.state = state;
    this.options.observe?.(outcome);
    if (outcome === 'retrying') this.schedule(record);
  }

  private async persist(record: OutboxRecord): Promise<void> {
    if (this.dir) await writeFileAtomically(this.dir, fileName(record), JSON.stringify(record));
  }
}
