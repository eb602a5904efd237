/**
 * @module
 * `Idempotency-Key` on the work-creating routes: a retry with the same key and the same request gets the
 * first answer again (with `Idempotent-Replayed: true`); the same key with another request is a 422.
 */
import type { Context } from 'hono';
import { AppError, badRequest } from '../src/domain/errors.js';
import type { IdempotencyStore } from '../src/ports.js';

const VALID_KEY = /^[\x21-\x7e]{1,255}$/;

/** A request's `Idempotency-Key` and whose it is: keys are scoped per API key (the IETF draft's advice). */
export interface IdempotencyKey {
  value: string;
  /** The caller's API key hash, or `anyone` when the service has no keys. */
  owner: string;
}

/** The request's key, or `undefined`; a malformed one is a 400. */
export function idempotencyKeyOf(c: Context): IdempotencyKey | undefined {
  const value = c.req.header('idempotency-key');
  if (value === undefined) return undefined;
  if (!VALID_KEY.test(value)) throw badRequest('invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
  return { value, owner: (c.get('caller') as string | undefined) ?? 'anyone' };
}

export interface Idempotent<T> {
  body: T;
  replayed: boolean;
}

/**
 * Runs `produce` once per (scope, key): later calls with the same fingerprint get the recorded body.
 * @example await once(store, 'process', key, fingerprint, () => createJob())
 */
export async function once<T>(
  store: IdempotencyStore,
  scope: string,
  idempotencyKey: IdempotencyKey | undefined,
  fingerprint: string,
  produce: () => Promise<T>,
): Promise<Idempotent<T>> {
  if (idempotencyKey === undefined) return { body: await produce(), replayed: false };
  const { value: key, owner } = idempotencyKey;
  // Without API keys the record's name is as before scoping existed, so a retry during a rolling deploy
  // (old and new tasks side by side) finds the first request's answer.
  const scoped = owner === 'anyone' ? `${scope}:${key}` : `${scope}:${owner}:${key}`;
  const claim = await store.claim(scoped, fingerprint);
  if (claim.state === 'replay') return { body: claim.body as T, replayed: true };
  if (claim.state === 'mismatch') {
    throw new AppError(
      422,
      'idempotency_key_reused',
      `Idempotency-Key ${JSON.stringify(key.slice(0, 60))} was already used with a different request; use a new key for a new request`,
    );
  }
  if (claim.state === 'in_progress') {
    throw new AppError(409, 'idempotency_key_in_progress', 'a request with this Idempotency-Key is still being handled; retry shortly', {
      headers: { 'Retry-After': '1' },
    });
  }
  try {
    const body = await produce();
    await store.complete(scoped, fingerprint, 200, body);
    return { body, replayed: false };
  } catch (error) {
    await store.release(scoped).catch(() => undefined);
    throw error;
  }
}

/** Headers of an answer that may be a replay. */
export const replayHeaders = (replayed: boolean): Record<string, string> => (replayed ? { 'Idempotent-Replayed': 'true' } : {});
