/**
 * The docs page's files without a browser: the script vendored at build time and read back, its coding
 * negotiated from Accept-Encoding, its content-hashed name cached for a year with ETag revalidation, the
 * favicon, and the page's Scalar configuration (no developer tools, telemetry, fonts or CDN; the auth box
 * with API_KEYS).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseCoding, hashedScriptPath } from '../../handlers/docs.js';
import { loadScalarScript, SCALAR_BUNDLE, scalarAssetsFrom, vendorScalarScript } from '../../src/adapters/scalar-assets.js';
import { createApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { embeddedHarness } from '../helpers/harness.js';
import { look } from '../helpers/images.js';
import { memoryApp } from '../helpers/memory-app.js';

const installed = new Uint8Array(await readFile(new URL(import.meta.resolve(SCALAR_BUNDLE))));

describe('the vendored script', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vendor-docs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is copied with its .br and .gz, each decoding to the installed bundle, and not redone when current', async () => {
    // A folder of its own: the other tests vendor into `dir` too, in any order.
    const fresh = await mkdtemp(join(dir, 'fresh-'));
    // A low brotli quality keeps the test short; the build uses 11.
    const first = await vendorScalarScript(fresh, { brotliQuality: 4 });
    expect(first.upToDate).toBe(false);
    const [identity, br, gz] = await Promise.all(['scalar.js', 'scalar.js.br', 'scalar.js.gz'].map((name) => readFile(join(fresh, name))));
    expect(identity!.equals(installed)).toBe(true);
    expect(brotliDecompressSync(br!).equals(installed)).toBe(true);
    expect(gunzipSync(gz!).equals(installed)).toBe(true);
    expect(br!.byteLength).toBeLessThan(installed.byteLength / 3);
    expect((await vendorScalarScript(fresh, { brotliQuality: 4 })).upToDate).toBe(true);
  });

  it('is what the adapter reads (br and gzip from the build), when it matches the installed bundle', async () => {
    await vendorScalarScript(dir, { brotliQuality: 4 });
    const asset = await loadScalarScript([pathToFileURL(`${dir}/`)]);
    expect(Buffer.from(asset.identity).equals(installed)).toBe(true);
    expect(Buffer.from(asset.br!).equals(await readFile(join(dir, 'scalar.js.br')))).toBe(true);
    expect(asset.sha256).toMatch(/^[0-9a-f]{64}$/);
    // Without the package (the production image), the vendored copy alone.
    const alone = await loadScalarScript([pathToFileURL(`${dir}/`)], null);
    expect(alone.sha256).toBe(asset.sha256);
  });

  it('gives way to the installed bundle when the build is older (a Scalar upgrade run from source)', async () => {
    const other = await mkdtemp(join(tmpdir(), 'vendor-docs-stale-'));
    try {
      await writeFile(join(other, 'scalar.js'), 'old');
      await writeFile(
        join(other, 'scalar.json'),
        JSON.stringify({ sha256: 'f'.repeat(64), identity: 'scalar.js', br: 'scalar.js.br', gzip: 'scalar.js.gz' }),
      );
      const asset = await loadScalarScript([pathToFileURL(`${other}/`)]);
      expect(Buffer.from(asset.identity).equals(installed)).toBe(true);
      expect(asset.br).toBeUndefined();
      expect(gunzipSync(asset.gzip!).equals(installed)).toBe(true);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('neither vendored nor installed: one clear error naming the build step', async () => {
    await expect(loadScalarScript([pathToFileURL(`${dir}/missing/`)], null)).rejects.toThrow(/npm run build writes dist\/vendor/);
  });
});

describe('Accept-Encoding negotiation', () => {
  const both = ['br', 'gzip'] as const;
  it.each([
    [undefined, 'identity'],
    ['', 'identity'],
    ['gzip, deflate, br, zstd', 'br'],
    ['gzip', 'gzip'],
    ['GZIP;q=0.5, br;q=0.4', 'gzip'],
    ['br;q=0, gzip', 'gzip'],
    ['br;q=0, gzip;q=0', 'identity'],
    ['*', 'br'],
    ['*;q=0, identity', 'identity'],
    ['deflate', 'identity'],
    ['x-gzip', 'gzip'],
    ['br;q=nonsense, gzip;q=0.1', 'gzip'],
    ['identity, gzip;q=0.5', 'identity'],
    ['br, identity', 'br'],
  ] as const)('%j → %s', (header, coding) => {
    expect(chooseCoding(header, both)).toBe(coding);
  });
  it('only offers copies there are', () => {
    expect(chooseCoding('br, gzip', ['gzip'])).toBe('gzip');
    expect(chooseCoding('br', [])).toBe('identity');
  });
});

describe('the docs routes', () => {
  let dir: string;
  let send: (path: string, init?: RequestInit) => Promise<Response>;
  let sha256: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vendor-docs-app-'));
    await vendorScalarScript(dir, { brotliQuality: 4 });
    const docs = scalarAssetsFrom(() => loadScalarScript([pathToFileURL(`${dir}/`)]));
    sha256 = (await docs.scalarScript()).sha256;
    const app = createApp({ ...memoryApp().deps, docs }, { logger: silentLogger, metrics: createMetrics() });
    send = async (path, init) => app.fetch(new Request(new URL(path, 'http://docs.test'), init));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the page names the script by its hash and turns off what reaches a third party', async () => {
    const response = await send('/docs');
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-cache');
    const page = await response.text();
    expect(page).toContain(`src="${hashedScriptPath(sha256)}"`);
    expect(page).toMatch(/"showDeveloperTools": "never"/);
    expect(page).toMatch(/"telemetry": false/);
    expect(page).toMatch(/"hideClientButton": true/);
    expect(page).toMatch(/"withDefaultFonts": false/);
    expect(page).toMatch(/"favicon": "\/favicon.ico"/);
    expect(page).not.toMatch(/https?:\/\//);
    // No keys configured: no scheme preselected.
    expect(page).not.toContain('preferredSecurityScheme');
  });

  it('the hashed script: br, gzip or identity as asked, Vary, a year immutable, 304 on its ETag', async () => {
    const path = hashedScriptPath(sha256);
    const br = await send(path, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(br.status).toBe(200);
    expect(br.headers.get('content-encoding')).toBe('br');
    expect(br.headers.get('vary')).toBe('Accept-Encoding');
    expect(br.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(br.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    const brBytes = Buffer.from(await br.arrayBuffer());
    expect(Number(br.headers.get('content-length'))).toBe(brBytes.byteLength);
    expect(brotliDecompressSync(brBytes).equals(installed)).toBe(true);

    const gz = await send(path, { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(gunzipSync(Buffer.from(await gz.arrayBuffer())).equals(installed)).toBe(true);

    const plain = await send(path);
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(Buffer.from(await plain.arrayBuffer()).equals(installed)).toBe(true);

    // Each coding has its own strong ETag; the one held is answered 304, another coding's is not.
    const etags = [br, gz, plain].map((r) => r.headers.get('etag')!);
    expect(new Set(etags).size).toBe(3);
    for (const etag of etags) expect(etag).toMatch(/^"[0-9a-f]{32}(-br|-gzip)?"$/);
    const again = await send(path, { headers: { 'accept-encoding': 'br', 'if-none-match': etags[0]! } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etags[0]);
    expect(again.headers.get('cache-control')).toMatch(/immutable/);
    expect(again.headers.get('vary')).toBe('Accept-Encoding');
    expect((await again.arrayBuffer()).byteLength).toBe(0);
    expect((await send(path, { headers: { 'accept-encoding': 'br', 'if-none-match': `"x", W/${etags[0]}` } })).status).toBe(304);
    expect((await send(path, { headers: { 'accept-encoding': 'gzip', 'if-none-match': etags[0]! } })).status).toBe(200);

    const head = await send(path, { method: 'HEAD', headers: { 'accept-encoding': 'br' } });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(brBytes.byteLength));
  });

  it('another hash (a page from the previous version) and the stable name get the script, revalidated each time', async () => {
    for (const path of [hashedScriptPath('0'.repeat(64)), '/docs/scalar.js']) {
      const response = await send(path, { headers: { 'accept-encoding': 'br' } });
      expect(response.status, path).toBe(200);
      expect(response.headers.get('cache-control'), path).toBe('no-cache');
      expect(brotliDecompressSync(Buffer.from(await response.arrayBuffer())).equals(installed), path).toBe(true);
    }
    expect((await send('/docs/scalar.abc.js')).status).toBe(404);
  });

  it('/favicon.ico: a small cacheable icon holding a 32×32 PNG', async () => {
    const response = await send('/favicon.ico');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/x-icon');
    expect(response.headers.get('cache-control')).toBe('public, max-age=86400');
    const ico = Buffer.from(await response.arrayBuffer());
    expect(ico.byteLength).toBeLessThan(1024);
    // ICONDIR: reserved 0, type 1 (icon), one image; its entry points at a PNG.
    expect([ico.readUInt16LE(0), ico.readUInt16LE(2), ico.readUInt16LE(4)]).toEqual([0, 1, 1]);
    const [size, offset] = [ico.readUInt32LE(14), ico.readUInt32LE(18)];
    expect(offset + size).toBe(ico.byteLength);
    const png = await look(ico.subarray(offset));
    expect([png.format, png.width, png.height]).toEqual(['png', 32, 32]);
    const etag = response.headers.get('etag')!;
    expect((await send('/favicon.ico', { headers: { 'if-none-match': etag } })).status).toBe(304);
  });
});

describe('the docs routes with API_KEYS', () => {
  it('preselect the API-key scheme the document declares, and stay open (page, hashed script, favicon)', async () => {
    const locked = await embeddedHarness({ API_KEYS: 'k'.repeat(24) });
    try {
      const page = await (await locked.request('/docs')).text();
      expect(page).toMatch(/"preferredSecurityScheme": "apiKey"/);
      const doc = (await (await locked.request('/openapi.json')).json()) as { components: { securitySchemes: Record<string, unknown> } };
      expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
      const script = /src="([^"]+)"/.exec(page)![1]!;
      expect(script).toMatch(/^\/docs\/scalar\.[0-9a-f]{16}\.js$/);
      for (const path of ['/docs', script, '/docs/scalar.js', '/favicon.ico', '/openapi.json'])
        expect((await locked.request(path)).status, path).toBe(200);
      expect((await locked.request('/list')).status).toBe(401);
    } finally {
      await locked.close();
    }
  });
});
