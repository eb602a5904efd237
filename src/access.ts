/**
 * @module
 * Optional access control, off by default (the seed's service sits in a private VPC): `API_KEYS` →
 * bearer-token authentication, compared in constant time; `RATE_LIMIT_PER_MINUTE` → 429 with Retry-After.
 *
 * One middleware, in this order: the key is checked, the request counted, and only then a bad key refused.
 * A request is counted against its validated API key, otherwise against its client address (IPv6: its /64;
 * behind proxies, the address `TRUST_PROXY` lets `X-Forwarded-For` name). A token that is not a valid key
 * (any token at all when `API_KEYS` is unset) buys no bucket of its own: its 401s count against the
 * address, so guessing keys is limited too.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { timingSafeEqual } from 'hono/utils/buffer';
import { addressNetwork, clientAddress } from './client-address.js';
import { apiKeyId, sha256Hex } from './domain/digest.js';
import { AppError } from './domain/errors.js';
import type { RateLimiter } from './ports.js';

/**
 * Routes anyone may call, never limited: liveness, health, and the documentation page with its own files
 * (a browser opening `/docs` fetches the script, the document and a favicon at once).
 */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/', '/health', '/docs', '/docs/scalar.js', '/openapi.json', '/favicon.ico']);
/** The docs script under its content-hashed name (handlers/docs.ts `DOCS_HASHED_SCRIPT_ROUTE`), open too. */
const OPEN_PATTERN = /^\/docs\/scalar\.[0-9a-f]{16}\.js$/;

const BEARER = /^Bearer[ \t]+([\x21-\x7e]{1,256})[ \t]*$/i;

/** The bearer token of the request, if it sends a well-formed one. */
const bearerToken = (c: Context): string | undefined => BEARER.exec(c.req.header('authorization') ?? '')?.[1];

/** `key:<hash>` when the request's bearer token is one of `keys` (a hash, never the key itself). */
async function validatedCaller(c: Context, keys: readonly string[]): Promise<string | undefined> {
  const token = bearerToken(c);
  if (token === undefined) return undefined;
  let valid = false;
  // Every key is compared (no early exit), each in constant time.
  for (const key of keys) if (await timingSafeEqual(key, token)) valid = true;
  return valid ? `key:${apiKeyId(await sha256Hex(token))}` : undefined;
}

/** Whose address a request comes from, as limits count it: `ip:<address>` (IPv6: its /64). */
export function addressSubject(c: Context, { trustedHops, peerAddress }: Pick<AccessOptions, 'trustedHops' | 'peerAddress'>): string {
  const address = clientAddress({ forwardedFor: c.req.header('x-forwarded-for'), peer: peerAddress(c), trustedHops });
  return `ip:${address ? addressNetwork(address) : 'unknown'}`;
}

export interface AccessOptions {
  /** `API_KEYS`; empty: no authentication. */
  apiKeys: readonly string[];
  /** Present when `RATE_LIMIT_PER_MINUTE` > 0. */
  limiter?: RateLimiter;
  perMinute: number;
  /** `TRUST_PROXY`: proxies whose `X-Forwarded-For` entries are believed (0: the peer is the client). */
  trustedHops: number;
  /** The connection's peer address (the runtime knows it; a plain Request does not). */
  peerAddress: (c: Context) => string | undefined;
}

/**
 * @example app.use(accessControl({ apiKeys: [], limiter: new MemoryRateLimiter(600), perMinute: 600, trustedHops: 1, peerAddress }))
 */
export function accessControl({ apiKeys, limiter, perMinute, trustedHops, peerAddress }: AccessOptions): MiddlewareHandler {
  return async function access(c, next) {
    if (OPEN_PATHS.has(c.req.path) || OPEN_PATTERN.test(c.req.path)) return next();
    const caller = apiKeys.length ? await validatedCaller(c, apiKeys) : undefined;
    if (limiter) {
      const { allowed, retryAfterSeconds } = await limiter.hit(caller ?? addressSubject(c, { trustedHops, peerAddress }));
      if (!allowed) {
        throw new AppError(
          429,
          'rate_limited',
          `at most ${perMinute} requests a minute (RATE_LIMIT_PER_MINUTE); retry in ${retryAfterSeconds} s`,
          {
            headers: { 'Retry-After': String(retryAfterSeconds) },
          },
        );
      }
    }
    if (apiKeys.length && !caller) {
      throw new AppError(401, 'unauthorized', 'this service needs an API key: send Authorization: Bearer <key>', {
        headers: { 'WWW-Authenticate': 'Bearer realm="image-service"' },
      });
    }
    // Who called, for what is kept per caller (Idempotency-Key records).
    if (caller) c.set('caller', caller);
    await next();
  };
}
