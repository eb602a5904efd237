/**
 * @module
 * One delivery attempt and what follows it, the same for both outboxes. A 2xx ends the message
 * `delivered`; 410 Gone ends it `gone` (the receiver asked us to stop); every other answer (3xx included:
 * redirects are not followed), a timeout or a refused or unreachable address is retried on the schedule, as
 * the Standard Webhooks specification asks for any non-2xx, until `maxAttempts` or `maxAgeMs` runs out
 * (`failed`). A 429 or 5xx with `Retry-After` waits at least that long (at most `retryAfterCapMs`).
 * The sending itself is the transport's (`src/adapters/webhook-transport.ts`).
 */
import { signWebhook, type SigningSecret } from './signing.js';

export type WebhookEventType = 'job.completed' | 'job.failed';

/** A message as the outbox keeps it: the body is fixed at enqueue, so every attempt sends the same bytes. */
export interface WebhookMessage {
  /** `webhook-id`: the same on every attempt and every re-enqueue. */
  id: string;
  processingId: string;
  type: WebhookEventType;
  url: string;
  body: string;
  /** When the message was made (ISO 8601); `maxAgeMs` counts from it. */
  createdAt: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'gone' | 'failed';

/** A message's delivery as `GET /status` shows it (`notification`). */
export interface DeliveryState {
  webhook_id: string;
  event: WebhookEventType;
  status: DeliveryStatus;
  attempts: number;
  last_attempt_at?: string;
  /** The receiver's answer to the last attempt (`status`), or why there was none (`error`). */
  last_response?: { status?: number; error?: string };
  /** When the next attempt is due, while `pending`. */
  next_attempt_at?: string;
  delivered_at?: string;
}

export interface DeliveryPolicy {
  maxAttempts: number;
  maxAgeMs: number;
  /** The wait before the 2nd, 3rd, ... attempt (the first is immediate); the last entry repeats. */
  retryDelaysMs: readonly number[];
  timeoutMs: number;
  /** Longest wait a `Retry-After` can ask for. */
  retryAfterCapMs: number;
  /** Each wait is spread by up to ± this fraction, so a receiver that was down is not hit by every retry at once. */
  jitter: number;
}

/** The Standard Webhooks specification's suggested schedule, after the immediate first attempt. */
export const SPEC_RETRY_DELAYS_SECONDS = [5, 300, 1800, 7200, 18_000, 36_000, 36_000] as const;

export type AttemptResult =
  | { kind: 'answered'; status: number; retryAfterMs?: number }
  /** No answer: a timeout, a refused connection, a TLS error, or an address the guard refused. */
  | { kind: 'unreachable'; error: string };

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

/** Sends one POST and says what came back; never throws for a receiver's fault. */
export interface WebhookTransport {
  post(request: WebhookRequest): Promise<AttemptResult>;
}

/** What one attempt did: `retrying` = failed, another attempt is due in `retryInMs`. */
export type AttemptOutcome = 'delivered' | 'retrying' | 'gone' | 'failed';

export interface DeliveryDeps {
  transport: WebhookTransport;
  secrets: readonly SigningSecret[];
  policy: DeliveryPolicy;
  userAgent: string;
  now?: () => Date;
  random?: () => number;
}

/** The state of a message nothing has been tried for yet. */
export function pendingState(message: WebhookMessage, now: Date): DeliveryState {
  return { webhook_id: message.id, event: message.type, status: 'pending', attempts: 0, next_attempt_at: now.toISOString() };
}

export const isSettled = (state: DeliveryState | undefined) => state !== undefined && state.status !== 'pending';

/**
 * The wait before attempt `attemptsMade + 1`, jittered.
 * @example scheduledDelayMs(1, policy) // ~5000 with the specification's schedule
 */
export function scheduledDelayMs(attemptsMade: number, policy: DeliveryPolicy, random = Math.random): number {
  const delays = policy.retryDelaysMs;
  const base = delays[Math.min(attemptsMade, delays.length) - 1] ?? 0;
  return Math.max(0, Math.round(base * (1 + policy.jitter * (2 * random() - 1))));
}

/**
 * Makes attempt number `state.attempts + 1` of `message`: signs it now (the timestamp is the attempt's),
 * posts it, and returns the state to record and, when another attempt is due, the wait before it.
 */
export async function attemptDelivery(
  message: WebhookMessage,
  state: DeliveryState,
  { transport, secrets, policy, userAgent, now = () => new Date(), random = Math.random }: DeliveryDeps,
): Promise<{ outcome: AttemptOutcome; state: DeliveryState; retryInMs?: number }> {
  const started = now();
  const signed = await signWebhook({ id: message.id, timestamp: started, body: message.body, secrets });
  const result = await transport.post({
    url: message.url,
    headers: { ...signed, 'content-type': 'application/json', 'user-agent': userAgent },
    body: message.body,
    timeoutMs: policy.timeoutMs,
  });
  const attempts = state.attempts + 1;
  const base = { webhook_id: message.id, event: message.type, attempts, last_attempt_at: started.toISOString() };
  const lastResponse = result.kind === 'answered' ? { status: result.status } : { error: result.error };
  if (result.kind === 'answered' && result.status >= 200 && result.status < 300) {
    return {
      outcome: 'delivered',
      state: { ...base, status: 'delivered', last_response: lastResponse, delivered_at: now().toISOString() },
    };
  }
  if (result.kind === 'answered' && result.status === 410)
    return { outcome: 'gone', state: { ...base, status: 'gone', last_response: lastResponse } };
  let retryInMs = scheduledDelayMs(attempts, policy, random);
  if (result.kind === 'answered' && result.retryAfterMs !== undefined && (result.status === 429 || result.status >= 500)) {
    retryInMs = Math.max(retryInMs, Math.min(result.retryAfterMs, policy.retryAfterCapMs));
  }
  const nextAt = now().getTime() + retryInMs;
  if (attempts >= policy.maxAttempts || nextAt > Date.parse(message.createdAt) + policy.maxAgeMs) {
    return { outcome: 'failed', state: { ...base, status: 'failed', last_response: lastResponse } };
  }
  return {
    outcome: 'retrying',
    retryInMs,
    state: { ...base, status: 'pending', last_response: lastResponse, next_attempt_at: new Date(nextAt).toISOString() },
  };
}

/**
 * `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date; `undefined` when absent or unreadable.
 * @example parseRetryAfter('120') // 120000
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
