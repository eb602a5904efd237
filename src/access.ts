/**
 * @module
 * Optional access control, off by default (the seed's service sits in a private VPC):
 * `API_KEYS` → bearer-token authentication, compared in constant time; `RATE_LIMIT_PER_MINUTE` → 429 with
 * Retry-After per API key (or per client address when there are no keys).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { timingSafeEqual } from 'hono/utils/buffer';
import { sha256Hex } from './domain/digest.js';
import { AppError } from './domain/errors.js';
import type { RateLimiter } from './ports.js';

/** Routes anyone may call: liveness, health, and the API's own documentation. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/', '/health', '/docs', '/docs/scalar.js', '/openapi.json']);

const BEARER = /^Bearer[ \t]+([\x21-\x7e]{1,256})[ \t]*$/i;

/** The bearer token of the request, if it sends a well-formed one. */
const bearerToken = (c: Context): string | undefined => BEARER.exec(c.req.header('authorization') ?? '')?.[1];

/** Who is calling: a hash of the API key (never the key itself), or the client's address. */
async function subjectOf(c: Context, clientAddress: (c: Context) => string | undefined): Promise<string> {
  const token = bearerToken(c);
  return token ? `key:${(await sha256Hex(token)).slice(0, 32)}` : `ip:${clientAddress(c) ?? 'unknown'}`;
}

export function requireApiKey(keys: readonly string[]): MiddlewareHandler {
  return async function apiKeyAuth(c, next) {
    if (OPEN_PATHS.has(c.req.path)) return next();
    const token = bearerToken(c);
    let valid = false;
    // Every key is compared (no early exit), each in constant time.
    for (const key of keys) if (token !== undefined && (await timingSafeEqual(key, token))) valid = true;
    if (!valid) {
      throw new AppError(401, 'unauthorized', 'this service needs an API key: send Authorization: Bearer <key>', {
        headers: { 'WWW-Authenticate': 'Bearer realm="image-service"' },
      });
    }
    // Who called, for what is kept per caller (Idempotency-Key records): a hash, never the key itself.
    c.set('caller', `key:${(await sha256Hex(token!)).slice(0, 32)}`);
    await next();
  };
}

export function rateLimit(limiter: RateLimiter, perMinute: number, clientAddress: (c: Context) => string | undefined): MiddlewareHandler {
  return async function rateLimited(c, next) {
    if (c.req.path === '/' || c.req.path === '/health') return next();
    const { allowed, retryAfterSeconds } = await limiter.hit(await subjectOf(c, clientAddress));
    if (!allowed) {
      throw new AppError(429, 'rate_limited', `at most ${perMinute} requests a minute (RATE_LIMIT_PER_MINUTE); retry in ${retryAfterSeconds} s`, {
        headers: { 'Retry-After': String(retryAfterSeconds) },
      });
    }
    await next();
  };
}
