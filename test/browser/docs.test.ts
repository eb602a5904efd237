/**
 * `/docs` in a real browser: Debian's Chromium, driven by playwright-core, against the real server process.
 * The page renders, no request it makes leaves the service's origin, nothing is logged as an error, the
 * developer tools and the hosted-client button are gone, and a request sent from the page reaches the
 * service; with API_KEYS, the auth box is shown and the key typed into it is sent.
 *
 * Chromium comes from Debian (`apt-get install chromium`; `.ci/run` installs it): see test/helpers/chromium.ts.
 */
import { rm } from 'node:fs/promises';
import type { BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPresent, openBrowser, STEP_MS, type Browser } from '../helpers/chromium.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';

const present = chromiumPresent();
const TEST_MS = 120_000;
const KEY = 'docs-key-'.padEnd(32, 'x');

interface Session {
  server: ServerProcess;
  context: BrowserContext;
  browser: Browser;
}

/** The server (with `env`) and a browser over a fresh profile. */
async function openSession(env: Record<string, string>): Promise<Session> {
  const server = await startServer(env);
  if (server.child.exitCode !== null) throw new Error(`the server did not start:\n${server.output()}`);
  try {
    const browser = await openBrowser('docs');
    return { server, context: browser.context, browser };
  } catch (error) {
    await server.stop('SIGKILL');
    throw error;
  }
}

async function closeSession(session: Session | undefined): Promise<void> {
  if (!session) return;
  await session.browser.close();
  await session.server.stop('SIGKILL');
  await rm(session.server.dir, { recursive: true, force: true });
}

interface Visit {
  page: Page;
  /** Every URL the page (or anything it opened) asked for, and every WebSocket. */
  requested: string[];
  errors: string[];
  /** Resolves once no request has been in flight for `ms` (Playwright's networkidle never comes with Debian's Chromium). */
  quiet(ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** A new page on `/docs`, rendered, its requests and console errors recorded from before the first one. */
async function visitDocs({ context, server }: Session): Promise<Visit> {
  const page = await context.newPage();
  let inFlight = 0;
  let lastActivity = Date.now();
  const onRequest = (request: Request) => {
    visit.requested.push(request.url());
    inFlight += 1;
    lastActivity = Date.now();
  };
  const onDone = () => {
    inFlight -= 1;
    lastActivity = Date.now();
  };
  const visit: Visit = {
    page,
    requested: [],
    errors: [],
    async quiet(ms = 1000) {
      const deadline = Date.now() + STEP_MS;
      while (inFlight > 0 || Date.now() - lastActivity < ms) {
        if (Date.now() > deadline) throw new Error(`the page did not go quiet: ${inFlight} request(s) in flight`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async close() {
      context.off('request', onRequest).off('requestfinished', onDone).off('requestfailed', onDone);
      await page.close();
    },
  };
  context.on('request', onRequest).on('requestfinished', onDone).on('requestfailed', onDone);
  page.on('websocket', (socket) => visit.requested.push(socket.url()));
  page.on('console', (message) => (message.type() === 'error' ? visit.errors.push(message.text()) : undefined));
  page.on('pageerror', (error) => visit.errors.push(error.message));
  const response = await page.goto(`${server.baseUrl}/docs`);
  expect(response?.status()).toBe(200);
  await page.getByRole('heading', { name: 'Image service', level: 1 }).waitFor();
  // The first tag (images) is open; GET /health is under "service", opened here so every test finds it.
  await page.getByRole('button', { name: /Test Request\s*\(get \/list\)/ }).waitFor();
  await page.getByRole('button', { name: /Open Group\s*service/ }).click();
  await page.getByRole('button', { name: /Test Request\s*\(get \/health\)/ }).waitFor();
  await visit.quiet();
  return visit;
}

/** Everything left this page for the service's own origin (data: and blob: URLs never leave the browser). */
function expectOnlyOwnOrigin(visit: Visit, baseUrl: string): void {
  const origin = new URL(baseUrl).origin;
  const elsewhere = visit.requested.filter((url) => !/^(data|blob):/.test(url) && new URL(url).origin !== origin);
  expect(elsewhere).toEqual([]);
}

/** Opens the in-page client on `operation` (e.g. `get /health`) and presses Send; the answer as the page got it. */
async function sendFromPage(page: Page, baseUrl: string, operation: string, path: string) {
  await page.getByRole('button', { name: new RegExp(`Test Request\\s*\\(${operation.replace(/[/{}]/g, '\\$&')}\\)`) }).click();
  const answered = page.waitForResponse((response) => response.url() === `${baseUrl}${path}`);
  await page.getByRole('button', { name: /^Send/ }).first().click();
  const response = await answered;
  await page
    .getByText(/200 OK/)
    .first()
    .waitFor();
  return response;
}

describe.runIf(present)('the docs page in Chromium', () => {
  let session: Session | undefined;
  beforeAll(async () => {
    session = await openSession({});
  }, TEST_MS);
  afterAll(() => closeSession(session), TEST_MS);

  it(
    'renders from this service alone: its hashed, compressed script, the document and nothing else; no console error',
    async () => {
      const { baseUrl } = session!.server;
      const visit = await visitDocs(session!);
      try {
        const { page, requested } = visit;
        expect(requested).toContain(`${baseUrl}/openapi.json`);
        const script = requested.find((url) => /\/docs\/scalar\.[0-9a-f]{16}\.js$/.test(url));
        expect(script).toBeDefined();
        const served = await page.evaluate(async (url) => {
          const entry = performance.getEntriesByName(url)[0] as PerformanceResourceTiming | undefined;
          return entry && { encoded: entry.encodedBodySize, decoded: entry.decodedBodySize };
        }, script!);
        // br from a build's dist/vendor, gzip when run from source without one: either way well under a third.
        expect(served!.encoded).toBeGreaterThan(0);
        expect(served!.encoded).toBeLessThan(served!.decoded / 3);
        // The operations listed, no developer tools bar, no button opening the document in Scalar's hosted client.
        await expect.poll(() => page.getByRole('button', { name: /Liveness/ }).count()).toBeGreaterThan(0);
        for (const text of ['Developer Tools', 'Generate SDKs', 'Open API Client'])
          expect(await page.getByText(text, { exact: true }).count(), text).toBe(0);
        expect(await page.content()).not.toMatch(/client\.scalar\.com|registry\.scalar\.com|fonts\.scalar\.com/);
        // The favicon it links is this service's, and there.
        const icon = await page.locator('link[rel="icon"]').getAttribute('href');
        expect(icon).toBe('/favicon.ico');
        expect(await page.evaluate(async (href) => (await fetch(href)).status, icon!)).toBe(200);
        expectOnlyOwnOrigin(visit, baseUrl);
        expect(visit.errors).toEqual([]);
      } finally {
        await visit.close();
      }
    },
    TEST_MS,
  );

  it(
    "sends GET /health from the page's Test Request to this service, and shows its 200",
    async () => {
      const { baseUrl } = session!.server;
      const visit = await visitDocs(session!);
      try {
        const response = await sendFromPage(visit.page, baseUrl, 'get /health', '/health');
        expect(response.status()).toBe(200);
        expect(((await response.json()) as { status: string }).status).toBe('healthy');
        await visit.quiet();
        expectOnlyOwnOrigin(visit, baseUrl);
        expect(visit.errors).toEqual([]);
      } finally {
        await visit.close();
      }
    },
    TEST_MS,
  );
});

describe.runIf(present)('the docs page in Chromium, with API_KEYS', () => {
  let session: Session | undefined;
  beforeAll(async () => {
    session = await openSession({ API_KEYS: KEY });
  }, TEST_MS);
  afterAll(() => closeSession(session), TEST_MS);

  it(
    'shows the auth box on the API key; the key typed in is sent as a bearer token and GET /list answers 200',
    async () => {
      const { baseUrl } = session!.server;
      const visit = await visitDocs(session!);
      try {
        const { page } = visit;
        await page
          .getByRole('button', { name: /Selected Auth Type:\s*apiKey/ })
          .first()
          .waitFor();
        await page.getByPlaceholder('Token').first().fill(KEY);
        const sent = page.waitForRequest((request) => request.url() === `${baseUrl}/list`);
        const response = await sendFromPage(page, baseUrl, 'get /list', '/list');
        expect((await sent).headers().authorization).toBe(`Bearer ${KEY}`);
        expect(response.status()).toBe(200);
        expect(await response.json()).toMatchObject({ items: [] });
        await visit.quiet();
        expectOnlyOwnOrigin(visit, baseUrl);
        expect(visit.errors).toEqual([]);
      } finally {
        await visit.close();
      }
    },
    TEST_MS,
  );
});
