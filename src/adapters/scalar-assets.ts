/**
 * @module
 * The Scalar API reference bundle, read from the installed `@scalar/api-reference` package.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { DocsAssets } from '../ports.js';

export const scalarAssets: DocsAssets = {
  async scalarScript() {
    // The package exports the bundle itself (not its package.json), so resolve the bundle directly.
    const path = fileURLToPath(import.meta.resolve('@scalar/api-reference/browser/standalone.js'));
    return new Uint8Array(await readFile(path));
  },
};
