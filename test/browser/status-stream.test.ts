/**
 * `GET /status/{id}` as Server-Sent Events, followed by a real `EventSource` in Debian's Chromium (driven by
 * playwright-core) against the real server process: a page on the service's origin opens the stream and
 * records what the browser makes of it; the server's request log and the browser's own network events
 * count the connections.
 *
 * - Embedded mode: the events' ids rise and their data is the job's status JSON, the last one completed; the
 *   browser then reconnects once with `Last-Event-ID: 3`, is answered 204, and stops for good (CLOSED, no
 *   third request).
 * - Redis mode, the resume: the API (WORKER_CONCURRENCY=0, SSE_MAX_SECONDS=1) closes every stream after a
 *   second, so the browser reconnects by itself with `Last-Event-ID: 1` while the job waits, and then with
 *   `2`; a separate worker runs the job, held at `processing` (SIGSTOP) until the page has event 2, so every
 *   state is certain to be seen. The page sees 1, 2, 3 exactly once each.
 *
 * A page cannot give a fresh EventSource a `Last-Event-ID` (only the browser sends it, on reconnecting): one
 * Node-side request with the header stands for a client that resumes elsewhere. The plain-HTTP stream
 * itself is tested in test/handlers/status-stream.test.ts and test/e2e.
 *
 * Chromium comes from Debian (`apt-get install chromium`; `.ci/run` installs it): see test/helpers/chromium.ts.
 */
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import type { BrowserContext, Page } from 'playwright-core';
import { RETRY_MS } from '../../handlers/status-stream.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPresent, openBrowser, STEP_MS, type Browser } from '../helpers/chromium.js';
import { submit, upload } from '../helpers/client.js';
import { look, noisyJpeg } from '../helpers/images.js';
import { deleteKeys, testRedis, type TestRedis } from '../helpers/redis.js';
import { startServer, startWorker, type ServerProcess } from '../helpers/server-process.js';
import { collectSse, eventsOf } from '../helpers/sse.js';

const present = chromiumPresent();

// Only when the browser is there: a Redis started for a test that then skips would be wasted. Stopped at
// the file's end, whichever tests ran.
const redis: TestRedis | undefined = present ? await testRedis() : undefined;
afterAll(() => redis?.dispose());

const TEST_MS = 120_000;
/** How long after the EventSource closed the test watches for a reconnect that must not come. */
/** (RETRY_MS is the stream's `retry:` hint: a browser waits that long before reconnecting.) */
const QUIET_MS = RETRY_MS + 1500;

/** What the page's EventSource did, in order; kept on `window.followed`. */
interface Followed {
  events: Array<{ id: string; data: string }>;
  /** `readyState` at each `error` event: 0 (CONNECTING) when it will reconnect, 2 (CLOSED) when it gave up. */
  errors: number[];
  opens: number;
}

declare global {
  interface Window {
    followed: Followed;
  }
}

/** One EventSource request as the browser sent it (Playwright's view of the page's network). */
interface Sent {
  lastEventId: string | undefined;
}

interface Session {
  server: ServerProcess;
  context: BrowserContext;
  browser: Browser;
}

async function launch(server: ServerProcess): Promise<Session> {
  if (server.child.exitCode !== null) throw new Error(`the server did not start:\n${server.output()}`);
  const browser = await openBrowser('sse');
  return { server, context: browser.context, browser };
}

async function closeBrowser(session: Session | undefined): Promise<void> {
  await session?.browser.close();
}

/**
 * A page on the service's origin (its `/health`), so the EventSource is same-origin, following `path`.
 * Every request the browser makes for `path` is recorded with its `Last-Event-ID`; page errors too.
 */
async function follow(context: BrowserContext, baseUrl: string, path: string) {
  const page = await context.newPage();
  const requests: Array<Promise<Sent>> = [];
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('request', (request) => {
    // The headers as sent on the wire (`headers()` has only those the page set: not Last-Event-ID).
    if (request.url() === `${baseUrl}${path}`)
      requests.push(request.allHeaders().then((headers) => ({ lastEventId: headers['last-event-id'] })));
  });
  const health = await page.goto(`${baseUrl}/health`);
  expect(health?.status()).toBe(200);
  await page.evaluate((url) => {
    const followed: Followed = { events: [], errors: [], opens: 0 };
    window.followed = followed;
    const source = new EventSource(url);
    source.addEventListener('open', () => (followed.opens += 1));
    source.addEventListener('message', (event) => followed.events.push({ id: event.lastEventId, data: event.data as string }));
    source.addEventListener('error', () => followed.errors.push(source.readyState));
  }, path);
  return { page, sent: () => Promise.all(requests), pageErrors, followed: () => page.evaluate(() => window.followed) };
}

/** Waits (at most `timeoutMs`) until `test` holds of what the page has recorded. */
async function until(page: Page, test: string, timeoutMs = STEP_MS): Promise<void> {
  try {
    await page.waitForFunction(test, undefined, { timeout: timeoutMs, polling: 50 });
  } catch (error) {
    const followed = await page
      .evaluate(() => ({
        ids: window.followed.events.map((event) => event.id),
        errors: window.followed.errors,
        opens: window.followed.opens,
      }))
      .catch(() => 'unreadable');
    throw new Error(`${test} did not come within ${timeoutMs} ms; the page had ${JSON.stringify(followed)}`, { cause: error });
  }
}

/** The HTTP statuses the server's request log gives for `path`, in order. */
function loggedStatuses(server: ServerProcess, path: string): number[] {
  const statuses: number[] = [];
  for (const line of server.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; path?: string; status?: number };
    if (entry.msg === 'request' && entry.path === path) statuses.push(entry.status!);
  }
  return statuses;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Each event's data as JSON: the job's status as the browser received it. */
const statusesOf = (followed: Followed) =>
  followed.events.map((event) => JSON.parse(event.data) as { processing_id: string; status: string; download_url?: string });

describe.runIf(present)('the status stream followed by EventSource in Chromium, embedded mode', () => {
  let session: Session | undefined;
  let server: ServerProcess | undefined;
  beforeAll(async () => {
    server = await startServer({});
    session = await launch(server);
  }, TEST_MS);
  afterAll(async () => {
    await closeBrowser(session);
    await server?.stop('SIGKILL');
    if (server) await rm(server.dir, { recursive: true, force: true });
  }, TEST_MS);

  it(
    "gets rising ids whose data is the job's status, the last completed; reconnects once with Last-Event-ID 3, is answered 204 and stops",
    async () => {
      const { baseUrl } = server!;
      const send = (path: string, init?: RequestInit) => fetch(`${baseUrl}${path}`, init);
      const file = await upload(send, new Uint8Array(await readFile('docs/example.jpg')), 'example.jpg');
      const { processing_id: id } = await submit(send, file.file_id, 'operation=resize&width=120&format=png');
      const path = `/status/${id}`;
      const { page, sent, pageErrors, followed } = await follow(session!.context, baseUrl, path);
      try {
        // The stream's end makes the browser reconnect (error, CONNECTING); the 204 makes it give up (error, CLOSED).
        await until(page, 'window.followed.errors.includes(EventSource.CLOSED)');
        const closedAt = Date.now();
        const seen = await followed();
        // However fast the job ran, ids rise, each state once, and the last is the final one.
        const ids = seen.events.map((event) => Number(event.id));
        expect(ids.length).toBeGreaterThan(0);
        expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
        expect(ids.every((n) => n >= 1 && n <= 3)).toBe(true);
        expect(ids.at(-1)).toBe(3);
        const statuses = statusesOf(seen);
        expect(statuses.every((status) => status.processing_id === id)).toBe(true);
        expect(statuses.map((status) => status.status)).toEqual(ids.map((n) => ['queued', 'processing', 'completed'][n - 1]));
        expect(statuses.at(-1)).toMatchObject({ status: 'completed', download_url: `/download/${id}` });
        expect(seen.errors).toEqual([0, 2]);
        expect(seen.opens).toBe(1);

        // Closed for good: nothing more, well past the retry delay, in the browser or at the server.
        await sleep(Math.max(0, QUIET_MS - (Date.now() - closedAt)));
        expect(await followed()).toEqual(seen);
        expect(await sent()).toEqual([{ lastEventId: undefined }, { lastEventId: '3' }]);
        expect(loggedStatuses(server!, path)).toEqual([200, 204]);
        expect(pageErrors).toEqual([]);
        // The final event is exactly what GET /status answers now.
        expect(statuses.at(-1)).toEqual(await (await send(path)).json());

        // The download_url the browser was given works from the page, and its image is the one asked for.
        const downloaded = await page.evaluate(async (url) => {
          const response = await fetch(url);
          return { status: response.status, bytes: Array.from(new Uint8Array(await response.arrayBuffer())) };
        }, statuses.at(-1)!.download_url!);
        expect(downloaded.status).toBe(200);
        const image = await look(new Uint8Array(downloaded.bytes));
        expect([image.format, image.width]).toEqual(['png', 120]);
      } finally {
        await page.close();
      }

      // The README's EventSource example, as written, on the same job: it logs the final state and closes.
      const readme = await readFile('README.md', 'utf8');
      const example = /## Following a job live[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
      expect(example, 'README has a js block under "Following a job live"').toBeDefined();
      const readmePage = await session!.context.newPage();
      try {
        const logged: string[] = [];
        readmePage.on('console', (message) => logged.push(message.text()));
        await readmePage.goto(`${baseUrl}/health`);
        await readmePage.evaluate(`const processingId = ${JSON.stringify(id)};\n${example}`);
        for (const deadline = Date.now() + STEP_MS; !logged.length && Date.now() < deadline;) await sleep(50);
        expect(logged).toEqual([`3 completed /download/${id}`]);
      } finally {
        await readmePage.close();
      }

      // A client resuming on its own (a page cannot set Last-Event-ID on a new EventSource): after 1, only 3.
      const resumed = await send(path, { headers: { Accept: 'text/event-stream', 'Last-Event-ID': '1' } });
      expect(resumed.status).toBe(200);
      expect(eventsOf(await collectSse(resumed.body!)).map((event) => event.id)).toEqual(['3']);
    },
    TEST_MS,
  );
});

describe.runIf(present && redis !== undefined)('the status stream followed by EventSource in Chromium, Redis mode', () => {
  const prefix = `sse-browser-${randomUUID().slice(0, 8)}`;
  const started: ServerProcess[] = [];
  let session: Session | undefined;
  let api: ServerProcess | undefined;
  let env: Record<string, string>;
  beforeAll(async () => {
    // Every stream is closed after a second (SSE_MAX_SECONDS): the browser has to resume, again and again.
    env = { REDIS_URL: redis!.url, REDIS_KEY_PREFIX: prefix, SSE_MAX_SECONDS: '1', SSE_HEARTBEAT_SECONDS: '1' };
    api = await startServer({ ...env, WORKER_CONCURRENCY: '0' });
    started.push(api);
    session = await launch(api);
  }, TEST_MS);
  afterAll(async () => {
    await closeBrowser(session);
    // SIGKILL ends a stopped (SIGSTOP) worker too.
    await Promise.all(started.map((p) => p.stop('SIGKILL')));
    await deleteKeys(redis!.url, prefix).catch(() => undefined);
    await Promise.all([...new Set(started.map((p) => p.dir))].map((dir) => rm(dir, { recursive: true, force: true })));
  }, TEST_MS);

  it(
    'a stream cut while the job waits: the browser resumes with Last-Event-ID by itself and sees 1, 2, 3 once each',
    async () => {
      const { baseUrl } = api!;
      const send = (path: string, init?: RequestInit) => fetch(`${baseUrl}${path}`, init);
      const file = await upload(send, await noisyJpeg(2400, 1800), 'resume.jpg');
      // Long enough (about a second) to be seen at `processing` by polling, as in test/e2e/redis-mode.test.ts.
      const { processing_id: id } = await submit(send, file.file_id, {
        operations: [
          { operation: 'blur', intensity: 60 },
          { operation: 'blur', intensity: 60 },
          { operation: 'resize', width: 200 },
        ],
        format: 'png',
      });
      const path = `/status/${id}`;
      // The test's own polls of the JSON status, told apart from the browser's requests in the server's log.
      let polls = 0;
      const poll = async () => ((polls += 1), (await (await send(path)).json()) as { status: string });
      const { page, sent, pageErrors, followed } = await follow(session!.context, baseUrl, path);
      try {
        // No worker: the job stays queued while the server cuts the stream and the browser comes back, twice.
        await until(page, 'window.followed.opens >= 3');
        expect((await sent()).slice(0, 3)).toEqual([{ lastEventId: undefined }, { lastEventId: '1' }, { lastEventId: '1' }]);
        expect((await followed()).events.map((event) => event.id)).toEqual(['1']);

        // A worker takes the job; held at `processing` until the page has that state, so it cannot be missed.
        const worker = await startWorker({ ...env, WORKER_CONCURRENCY: '1' }, api!.dir);
        started.push(worker);
        let status = 'queued';
        for (const deadline = Date.now() + STEP_MS; status !== 'processing' && Date.now() < deadline;) {
          status = (await poll()).status;
          if (status !== 'processing') await sleep(5);
        }
        expect(status).toBe('processing');
        worker.child.kill('SIGSTOP');
        try {
          await until(page, 'window.followed.events.length >= 2');
        } finally {
          worker.child.kill('SIGCONT');
        }
        await until(page, 'window.followed.errors.includes(EventSource.CLOSED)');
        const closedAt = Date.now();
        const seen = await followed();
        expect(seen.events.map((event) => event.id)).toEqual(['1', '2', '3']);
        const statuses = statusesOf(seen);
        expect(statuses.map((s) => [s.processing_id, s.status])).toEqual([
          [id, 'queued'],
          [id, 'processing'],
          [id, 'completed'],
        ]);
        expect(statuses[2]).toEqual(await poll());
        expect(statuses[2]!.download_url).toBe(`/download/${id}`);
        expect(seen.errors.at(-1)).toBe(2);
        expect(seen.errors.slice(0, -1).every((state) => state === 0)).toBe(true);

        // The browser sent back the last id it had each time: none, then 1s, then 2s, then 3 (answered 204).
        await sleep(Math.max(0, QUIET_MS - (Date.now() - closedAt)));
        expect(await followed()).toEqual(seen);
        const resumedFrom = (await sent()).map((request) => request.lastEventId ?? '');
        expect(resumedFrom.at(-1)).toBe('3');
        expect(resumedFrom.join(',')).toMatch(/^,(1,)+(2,)*3$/);
        // The server saw the same requests: a stream for each but the last, which was a 204 (and the polls, 200s).
        const logged = loggedStatuses(api!, path);
        expect(logged.filter((code) => code !== 200)).toEqual([204]);
        expect(logged.length).toBe(resumedFrom.length + polls);
        expect(pageErrors).toEqual([]);
      } finally {
        await page.close();
      }
    },
    TEST_MS,
  );
});
