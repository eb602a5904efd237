/**
 * @module
 * The Scalar API reference bundle (3.4 MB of script). `npm run build` vendors it into `dist/vendor/` with
 * copies compressed at maximum quality (`vendorScalarScript`), so the image needs no `@scalar/api-reference`
 * (a dev dependency: ~190 MB installed) and no request compresses anything.
 *
 * `loadScalarScript` reads the vendored copy, unless the installed package holds another bundle (running from
 * source after an upgrade, without a build); with no vendored copy (tsx, tests) it reads the installed bundle
 * and gzips it once in memory.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import type { DocsAssets, StaticAsset } from '../ports.js';

/** The bundle, as the package exports it (the package exports the bundle itself, not its package.json). */
export const SCALAR_BUNDLE = '@scalar/api-reference/browser/standalone.js';

/** What `vendorScalarScript` writes, named in `scalar.json` (written last: its presence means the rest is whole). */
export interface VendorManifest {
  /** Hex SHA-256 of the uncompressed bundle. */
  sha256: string;
  identity: string;
  br: string;
  gzip: string;
}
const MANIFEST = 'scalar.json';
const FILES = { identity: 'scalar.js', br: 'scalar.js.br', gzip: 'scalar.js.gz' } as const;

/**
 * Where a build puts the vendored files, seen from this module: compiled, `dist/src/adapters/` → `dist/vendor/`;
 * run from source, `src/adapters/` → `dist/vendor/` of the last build.
 */
const VENDOR_DIRS = [new URL('../../vendor/', import.meta.url), new URL('../../dist/vendor/', import.meta.url)];

const brotli = promisify(brotliCompress);
const gzipped = promisify(gzip);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The installed bundle's path, or `null` where the package is not installed (the production image). */
function installedBundle(): string | null {
  try {
    return fileURLToPath(import.meta.resolve(SCALAR_BUNDLE));
  } catch {
    return null;
  }
}

async function readManifest(dir: URL): Promise<VendorManifest | undefined> {
  try {
    return JSON.parse(await readFile(new URL(MANIFEST, dir), 'utf8')) as VendorManifest;
  } catch {
    return undefined;
  }
}

/** Reads the script: the first vendored copy that is whole and current, else the installed bundle (`bundle`). */
export async function loadScalarScript(
  vendorDirs: readonly URL[] = VENDOR_DIRS,
  bundle: string | null = installedBundle(),
): Promise<StaticAsset> {
  const installed = bundle === null ? undefined : new Uint8Array(await readFile(bundle));
  const installedSha = installed && sha256(installed);
  for (const dir of vendorDirs) {
    const manifest = await readManifest(dir);
    if (!manifest || (installedSha !== undefined && manifest.sha256 !== installedSha)) continue;
    const [identity, br, gzip] = await Promise.all(
      [manifest.identity, manifest.br, manifest.gzip].map(async (name) => new Uint8Array(await readFile(new URL(name, dir)))),
    );
    if (sha256(identity!) !== manifest.sha256)
      throw new Error(`${fileURLToPath(new URL(manifest.identity, dir))} does not match its manifest: run npm run build again`);
    return { sha256: manifest.sha256, identity: identity!, br: br!, gzip: gzip! };
  }
  if (!installed || !installedSha) {
    throw new Error(`the docs script is neither vendored (npm run build writes dist/vendor/${MANIFEST}) nor installed (${SCALAR_BUNDLE})`);
  }
  return { sha256: installedSha, identity: installed, gzip: new Uint8Array(await gzipped(installed, { level: 9 })) };
}

/** The port, reading once: every call answers the same asset (a failed read is tried again on the next call). */
export function scalarAssetsFrom(load: () => Promise<StaticAsset>): DocsAssets {
  let loading: Promise<StaticAsset> | undefined;
  return {
    scalarScript() {
      loading ??= load().catch((error: unknown) => {
        loading = undefined;
        throw error;
      });
      return loading;
    },
  };
}

export const scalarAssets: DocsAssets = scalarAssetsFrom(() => loadScalarScript());

export interface VendorResult {
  manifest: VendorManifest;
  /** True when `outDir` already held this bundle and nothing was written. */
  upToDate: boolean;
}

/**
 * Copies the installed bundle into `outDir` with its `.br` (quality 11 by default: ~26 s on one core, once per
 * Scalar version) and `.gz` (level 9), then the manifest. Skips the work when `outDir` already holds this bundle.
 */
export async function vendorScalarScript(
  outDir: string,
  { brotliQuality = constants.BROTLI_MAX_QUALITY, bundle = installedBundle() } = {},
): Promise<VendorResult> {
  if (!bundle) throw new Error(`${SCALAR_BUNDLE} is not installed (it is a dev dependency: vendor it before npm prune --omit=dev)`);
  const identity = new Uint8Array(await readFile(bundle));
  const manifest: VendorManifest = { sha256: sha256(identity), ...FILES };
  const dir = pathToFileURL(outDir.endsWith('/') ? outDir : `${outDir}/`);
  const existing = await readManifest(dir);
  if (existing?.sha256 === manifest.sha256 && existing.br === manifest.br && existing.gzip === manifest.gzip) {
    const current = await readFile(new URL(existing.identity, dir)).then(
      (bytes) => sha256(bytes) === manifest.sha256,
      () => false,
    );
    if (current) return { manifest, upToDate: true };
  }
  await mkdir(outDir, { recursive: true });
  const [br, gz] = await Promise.all([
    brotli(identity, {
      params: {
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_QUALITY]: brotliQuality,
        [constants.BROTLI_PARAM_LGWIN]: constants.BROTLI_MAX_WINDOW_BITS,
        [constants.BROTLI_PARAM_SIZE_HINT]: identity.byteLength,
      },
    }),
    gzipped(identity, { level: constants.Z_BEST_COMPRESSION }),
  ]);
  await Promise.all([
    writeFile(new URL(FILES.identity, dir), identity),
    writeFile(new URL(FILES.br, dir), br),
    writeFile(new URL(FILES.gzip, dir), gz),
  ]);
  const temporary = new URL(`${MANIFEST}.tmp`, dir);
  await writeFile(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(temporary, new URL(MANIFEST, dir));
  return { manifest, upToDate: false };
}
