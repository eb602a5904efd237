/**
 * @module
 * `GET /docs`: the Scalar API reference, with everything it loads served by this app: its script (vendored
 * at build time, precompressed, under a content-hashed name), the document and a favicon. Nothing on the page
 * reaches a third party: no CDN, no fonts, no telemetry, no developer tools (whose toolbar uploads the
 * document to Scalar's registry to share it), no button handing the document to Scalar's hosted client.
 */
import { Scalar } from '@scalar/hono-api-reference';
import type { Context, Handler } from 'hono';
import type { AppDeps, StaticAsset } from '../src/ports.js';

export const DOCS_PATH = '/docs';
/** The script under a stable name (revalidated on every use), for whoever links it. */
export const DOCS_SCRIPT_PATH = '/docs/scalar.js';
/** The script under its content hash, the name the page uses: cached for a year. */
export const DOCS_HASHED_SCRIPT_ROUTE = '/docs/:file{scalar\\.[0-9a-f]{16}\\.js}';
export const FAVICON_PATH = '/favicon.ico';
/** The OpenAPI security scheme of `API_KEYS` (`Authorization: Bearer <key>`); the page's auth box fills it. */
export const API_KEY_SCHEME = 'apiKey';

export const hashedScriptPath = (sha256: string): string => `/docs/scalar.${sha256.slice(0, 16)}.js`;

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** The page; with `API_KEYS` set, its authentication box is open on the API-key scheme. */
export function docsPageHandler({ docs, settings }: Pick<AppDeps, 'docs' | 'settings'>): Handler {
  const page = Scalar(async () => ({
    url: '/openapi.json',
    cdn: hashedScriptPath((await docs.scalarScript()).sha256),
    pageTitle: 'Image service API',
    favicon: FAVICON_PATH,
    // Inter from fonts.scalar.com otherwise; the system's fonts instead.
    withDefaultFonts: false,
    // Never on localhost either: its toolbar's "Share" uploads the document to registry.scalar.com.
    showDeveloperTools: 'never',
    // The API client would report each request sent to api.scalar.com/analytics.
    telemetry: false,
    // Scalar's "Ask AI" agent (later versions) sends the document to Scalar.
    agent: { disabled: true },
    // "Open API Client" opens client.scalar.com on this document; "Test Request" stays in the page.
    hideClientButton: true,
    // The key typed in stays in the page, not in localStorage.
    persistAuth: false,
    ...(settings.apiKeys.length ? { authentication: { preferredSecurityScheme: API_KEY_SCHEME } } : {}),
  }));
  return async function docsPage(c, next) {
    const response = await page(c, next);
    // Always revalidated: a new build names a new script.
    if (response) response.headers.set('Cache-Control', 'no-cache');
    return response;
  };
}

/** The script, at `DOCS_SCRIPT_PATH` and `DOCS_HASHED_SCRIPT_ROUTE`. */
export function docsScriptHandler({ docs }: Pick<AppDeps, 'docs'>): Handler {
  return async function docsScript(c) {
    const asset = await docs.scalarScript();
    // An old hash (a page from the previous version, in a rolling deploy) gets today's script, not for a year.
    const cacheControl = c.req.path === hashedScriptPath(asset.sha256) ? IMMUTABLE : 'no-cache';
    return serveAsset(c, asset, 'application/javascript; charset=utf-8', cacheControl);
  };
}

/**
 * A 32×32 icon (an image on a blue tile): an ICO holding one PNG, 630 bytes. Browsers ask for
 * `/favicon.ico` on any page of this origin, the JSON document included; the docs page links it too.
 */
const FAVICON_ICO = Uint8Array.from(
  atob(
    'AAABAAEAICAAAAEAIABgAgAAFgAAAIlQTkcNChoKAAAADUlIRFIAAAAgAAAAIAgDAAAARKSKxgAAAOdQTFRFTGlxHk54Hk54Hk55Hk14HEt6KlV/Hk14JEhtH014H055Hk14Hk15Hk15Hk55Hk54H055/////9Fm+MxnPF92PWB3eYNyeIJx7fH0M16Faomm2uLpc4Bx/v7+usjVdH9ycn9yydTeRm2Q0tzkRWyQorXH8PP2O153eJSuOWOJiKG4g521q7zNIU96IE968fT3LlqC+/z8SG+Sl63BI1F7cY+q6O3xKVZ/c5Gr+vv8tMTS9ff5P2iMs8PSJlR99/n6w9Dbd4FyeYJxW32dt8bUNF+GLFiB3+bsVnqap7rK5+zxZ4ekJ1R+Qwe+lwAAABB0Uk5TAMdu0GwbBs8H8/TJbcjG8RGiD4wAAAAJcEhZcwAACxMAAAsTAQCanBgAAAEDSURBVDjLndNnc4JAEAbgVZGiEm8RQUWjaZYUW9T0WNKj///3ZMEauDtnfD8wN+zD7TFzCwB63EwxTlJmRgdKMsGE0ZL0vaROQoc4k0aBtBzEwJADA3hv845jr9c8UM1ZVq4sBnmqk7CFYGYFcYXAWYLp4S1Y2T9kjXPIeWm1sF23wfnNz99CMbrdDvhBPJaB7woilsRg8UV1jDbZgFsMEjS5v4qCfm8J/CbnT5VhGAzOVnVqcuchPryFwCVu8njtPzun/8DzGMMZtXZAe4LReN0taCIvJ69r8FHnAny58QFd2ncU5IKx7P5rn9k3OLomHT2VhleTDy+AqsS442UcKSrAH8x5RlGwU+COAAAAAElFTkSuQmCC',
  ),
  (char) => char.charCodeAt(0),
);
let favicon: Promise<StaticAsset> | undefined;

export const faviconHandler: Handler = async function faviconIco(c) {
  favicon ??= crypto.subtle.digest('SHA-256', FAVICON_ICO).then((digest) => ({
    sha256: [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join(''),
    identity: FAVICON_ICO,
  }));
  return serveAsset(c, await favicon, 'image/x-icon', 'public, max-age=86400');
};

type Coding = 'br' | 'gzip' | 'identity';

/**
 * The coding to send, from `Accept-Encoding` (RFC 9110 §12.5.3): of the copies there are, the one asked for
 * with the highest q, br before gzip at equal q; identity when it is asked for higher, when no coding is
 * (no header included), and when nothing is acceptable (a client refusing even identity gets it, not a 406).
 */
export function chooseCoding(acceptEncoding: string | undefined, available: readonly Coding[]): Coding {
  const weights = new Map<string, number>();
  for (const part of (acceptEncoding ?? '').split(',')) {
    const [token, ...params] = part.trim().toLowerCase().split(';');
    if (!token) continue;
    const q = params.map((param) => param.trim()).find((param) => param.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    weights.set(token === 'x-gzip' ? 'gzip' : token, Number.isFinite(weight) ? weight : 0);
  }
  // Identity unnamed is acceptable, yet preferred to nothing asked for (below q=0.001, the least a q can say).
  const weight = (coding: Coding) => weights.get(coding) ?? (coding === 'identity' ? 0.0005 : (weights.get('*') ?? 0));
  let best: Coding = 'identity';
  let bestWeight = 0;
  for (const coding of (['br', 'gzip', 'identity'] as const).filter((c) => c === 'identity' || available.includes(c))) {
    if (weight(coding) > bestWeight) [best, bestWeight] = [coding, weight(coding)];
  }
  return best;
}

/** `If-None-Match` names `etag` (weak comparison, as RFC 9110 §13.1.2 asks), or is `*`. */
const matches = (ifNoneMatch: string, etag: string) =>
  ifNoneMatch.split(',').some((tag) => tag.trim() === '*' || tag.trim().replace(/^W\//, '') === etag);

/** One stored file: its coding negotiated, a strong ETag per coding, 304 for a copy the client holds. */
function serveAsset(c: Context, asset: StaticAsset, contentType: string, cacheControl: string): Response {
  const available = (['br', 'gzip'] as const).filter((coding) => asset[coding] !== undefined);
  const coding = chooseCoding(c.req.header('accept-encoding'), available);
  const bytes = coding === 'identity' ? asset.identity : asset[coding]!;
  const etag = `"${asset.sha256.slice(0, 32)}${coding === 'identity' ? '' : `-${coding}`}"`;
  const headers: Record<string, string> = { ETag: etag, 'Cache-Control': cacheControl };
  if (available.length) headers.Vary = 'Accept-Encoding';
  const ifNoneMatch = c.req.header('if-none-match');
  if (ifNoneMatch !== undefined && matches(ifNoneMatch, etag)) return c.body(null, 304, headers);
  return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
    ...headers,
    'Content-Type': contentType,
    'Content-Length': String(bytes.byteLength),
    ...(coding === 'identity' ? {} : { 'Content-Encoding': coding }),
  });
}
