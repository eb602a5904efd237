/**
 * @module
 * A known path asked with a method it does not answer is a 405 with `Allow`, not a 404; `OPTIONS` on a
 * known path is a 204 with `Allow`. The methods come from the app's own routes, matched by Hono's own
 * router, so parameters and wildcards count as the app sees them and a new route needs no table entry.
 * Middleware is registered with `use` (method `ALL`) and never counts as a route.
 */
import type { Context } from 'hono';
import type { RequestIdVariables } from 'hono/request-id';
import { TrieRouter } from 'hono/router/trie-router';
import { AppError, cut } from './domain/errors.js';
import { problem } from './problem.js';

/** The order `Allow` lists methods in. */
const ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

interface RouteEntry {
  method: string;
  path: string;
}

/**
 * Builds, on first use (once every route is registered), a lookup of the methods each path answers.
 * @example
 * const allowedAt = allowedMethods(() => app.routes);
 * allowedAt('/list'); // ['GET', 'HEAD', 'OPTIONS']
 */
export function allowedMethods(routes: () => readonly RouteEntry[]) {
  let router: TrieRouter<string> | undefined;
  let methods: string[] = [];

  return function allowedAt(path: string): string[] {
    if (!router) {
      router = new TrieRouter<string>();
      const endpoints = routes().filter((route) => route.method !== 'ALL');
      for (const { method, path: pattern } of endpoints) router.add(method, pattern, method);
      methods = [...new Set(endpoints.map((route) => route.method))];
    }
    const found = new Set(methods.filter((method) => router!.match(method, path)[0].length > 0));
    if (found.size === 0) return [];
    // Hono answers HEAD wherever GET is answered; OPTIONS is answered here.
    if (found.has('GET')) found.add('HEAD');
    found.add('OPTIONS');
    return [...found].sort((a, b) => rank(a) - rank(b));
  };
}

const rank = (method: string) => (ORDER.includes(method) ? ORDER.indexOf(method) : ORDER.length);

/**
 * The answer for a request no route took, when its path exists with other methods: 204 to `OPTIONS`, a 405
 * `method_not_allowed` otherwise; `undefined` when the path is unknown (a 404) or its method is one the
 * path answers (a route that declined it: also a 404).
 * @example app.notFound((c) => wrongMethod(c) ?? notFoundProblem(c))
 */
export function methodNotAllowed(routes: () => readonly RouteEntry[]) {
  const allowedAt = allowedMethods(routes);
  return function wrongMethod(c: Context<{ Variables: RequestIdVariables }>): Response | undefined {
    const allowed = allowedAt(c.req.path);
    const method = c.req.method.toUpperCase();
    if (allowed.length === 0 || (allowed.includes(method) && method !== 'OPTIONS')) return undefined;
    const allow = allowed.join(', ');
    if (method === 'OPTIONS') return c.body(null, 204, { Allow: allow });
    const detail = `${cut(method)} is not allowed on ${cut(c.req.path, 100)}; it answers ${allow}`;
    return problem(new AppError(405, 'method_not_allowed', detail, { headers: { Allow: allow } }), c.get('requestId'));
  };
}
