/**
 * `npm run build` (after tsc): vendors the docs page's script into `dist/vendor/` with its `.br` and `.gz`,
 * so the production image serves it without `@scalar/api-reference` (a dev dependency) and compresses nothing
 * per request. Does nothing when `dist/vendor/` already holds the installed bundle.
 *
 * Usage: tsx scripts/vendor-docs.ts [out-dir]   (default dist/vendor)
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { vendorScalarScript } from '../src/adapters/scalar-assets.js';

const outDir = resolve(process.argv[2] ?? join(import.meta.dirname, '..', 'dist', 'vendor'));
const started = performance.now();
const { manifest, upToDate } = await vendorScalarScript(outDir);
if (!upToDate) {
  const sizes = await Promise.all(
    [manifest.identity, manifest.br, manifest.gzip].map(
      async (name) => `${name} ${((await stat(join(outDir, name))).size / 1e6).toFixed(2)} MB`,
    ),
  );
  console.log(`vendor-docs: ${sizes.join(', ')} in ${outDir} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
