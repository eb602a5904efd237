/**
 * @module
 * `GET /docs`: the Scalar API reference, with its script served by this app instead of a CDN.
 */
import { Scalar } from '@scalar/hono-api-reference';
import type { Handler } from 'hono';
import type { AppDeps } from '../src/ports.js';

export const DOCS_SCRIPT_PATH = '/docs/scalar.js';

export const docsPageHandler: Handler = Scalar({
  url: '/openapi.json',
  cdn: DOCS_SCRIPT_PATH,
  pageTitle: 'Image service API',
  withDefaultFonts: false,
});

export function docsScriptHandler({ docs }: Pick<AppDeps, 'docs'>): Handler {
  let cached: Promise<Uint8Array> | undefined;
  return async function docsScript(c) {
    cached ??= docs.scalarScript();
    const script = await cached;
    return c.body(script as Uint8Array<ArrayBuffer>, 200, {
      'Content-Type': 'application/javascript; charset=utf-8',
      'Cache-Control': 'public, max-age=86400',
    });
  };
}
