/**
 * The deployment's default notify_url: `WEBHOOK_DEFAULT_URL` for every job that names none, `WEBHOOK_KEY_URLS`
 * per API key (by key-id, the key's SHA-256 cut to 32 hex digits), the request's own URL above both, and an
 * empty one (`notify_url=` / `null` / `""`) for no webhook. Deliveries reach a real receiver that verifies them
 * with the standardwebhooks library; the app runs over real adapters (embedded, and Redis mode when there is
 * one), asked with plain Requests. The configuration's refusals are loadConfig's.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { sha256Hex } from '../../src/domain/digest.js';
import { generateSecret, webhookId } from '../../src/webhooks/signing.js';
import { multipart, upload, waitForJob } from '../helpers/client.js';
import { embeddedHarness, redisHarness, type Harness, type HarnessFactory } from '../helpers/harness.js';
import { solid } from '../helpers/images.js';
import { testRedis } from '../helpers/redis.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

const redis = await testRedis();
afterAll(async () => redis?.dispose());

type Send = (path: string, init?: RequestInit) => Promise<Response>;

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-0123456789abcdef';
/** The key-id as docs/configuration.md says to compute it. */
const keyIdOf = (key: string) =>
  execFileSync('sh', ['-c', 'printf %s "$KEY" | sha256sum | cut -c1-32'], { env: { KEY: key } })
    .toString()
    .trim();

/** `send` as the holder of `key`. */
const as =
  (harness: Harness, key: string): Send =>
  (path, init = {}) =>
    harness.request(path, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${key}` } });

async function ask(send: Send, fileId: string, request: string | object, headers: Record<string, string> = {}) {
  const response =
    typeof request === 'string'
      ? await send(`/process/${fileId}?${request}`, { method: 'POST', headers })
      : await send(`/process/${fileId}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(request),
        });
  return { response, body: (await response.json()) as Record<string, unknown> };
}

async function accepted(send: Send, fileId: string, request: string | object, headers?: Record<string, string>) {
  const { response, body } = await ask(send, fileId, request, headers);
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body as { processing_id: string; status: string };
}

/** The delivery announcing `processingId`'s completion, once it arrived. */
async function deliveryOf(receiver: Receiver, processingId: string, timeoutMs = 20_000) {
  const id = webhookId(processingId, 'job.completed');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const delivery = receiver.deliveries.find((d) => d.id === id);
    if (delivery) return delivery;
    if (Date.now() > deadline) throw new Error(`no delivery for ${processingId} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function suite(name: string, factory: () => HarnessFactory) {
  describe(name, () => {
    const secret = generateSecret();
    let receiver: Receiver;
    let harness: Harness;
    beforeAll(async () => {
      receiver = await startReceiver(secret);
      harness = await factory()({
        API_KEYS: `${KEY_A},${KEY_B}`,
        WEBHOOK_SECRETS: secret,
        WEBHOOK_ALLOW_HTTP: 'true',
        WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
        WEBHOOK_RETRY_SCHEDULE: '0.1',
        WEBHOOK_DEFAULT_URL: `${receiver.url}/global`,
        // Upper case on purpose: a key-id is compared as the hex number it is.
        WEBHOOK_KEY_URLS: `${keyIdOf(KEY_A).toUpperCase()}=${receiver.url}/key-a`,
      });
    });
    afterAll(async () => {
      await harness?.close();
      await receiver?.close();
    });

    it('sends the key default, else the global one, and the request own URL above both, in either form', { timeout: 60_000 }, async () => {
      const [a, b] = [as(harness, KEY_A), as(harness, KEY_B)];
      const file = await upload(a, await solid(30, 20, { r: 200, g: 30, b: 30 }), 'red.png');
      const jobs = {
        '/key-a': [
          await accepted(a, file.file_id, 'operation=blur&intensity=1'),
          await accepted(a, file.file_id, { operations: [{ operation: 'grayscale' }] }),
        ],
        '/global': [
          await accepted(b, file.file_id, 'operation=sepia'),
          await accepted(b, file.file_id, { operations: [{ operation: 'sharpen' }] }),
        ],
        '/own': [
          await accepted(a, file.file_id, `operation=brightness&notify_url=${encodeURIComponent(`${receiver.url}/own`)}`),
          await accepted(b, file.file_id, { operations: [{ operation: 'contrast' }], notify_url: `${receiver.url}/own` }),
        ],
      };
      for (const [path, asked] of Object.entries(jobs)) {
        for (const job of asked) {
          const delivery = await deliveryOf(receiver, job.processing_id);
          expect(delivery.path, job.processing_id).toBe(path);
          expect(delivery.verified.ok, JSON.stringify(delivery.verified)).toBe(true);
          expect(delivery.verified.ok && delivery.verified.payload).toMatchObject({
            type: 'job.completed',
            data: { processing_id: job.processing_id, status: 'completed' },
          });
        }
      }
      // GET /status shows the default's delivery as it shows a request's own (and never the URL).
      const status = (await waitForJob(a, jobs['/key-a'][0]!.processing_id)) as Record<string, unknown>;
      expect(status.notification).toMatchObject({ event: 'job.completed' });
      expect(JSON.stringify(status)).not.toContain('/key-a');
    });

    it('sends the default for a job answered from the cache, and for the original POST /upload-image/', { timeout: 60_000 }, async () => {
      const b = as(harness, KEY_B);
      const file = await upload(b, await solid(16, 16, { r: 20, g: 90, b: 200 }), 'blue.png');
      const first = await accepted(b, file.file_id, { operations: [{ operation: 'grayscale' }], notify_url: null });
      await waitForJob(b, first.processing_id);
      const cached = await accepted(b, file.file_id, { operations: [{ operation: 'grayscale' }] });
      expect(cached).toMatchObject({ status: 'completed', cached: true });
      expect((await deliveryOf(receiver, cached.processing_id)).path).toBe('/global');

      const response = await b('/upload-image/', {
        method: 'POST',
        body: multipart(await solid(12, 12, { r: 9, g: 9, b: 9 }), 'grey.png'),
      });
      const legacy = (await response.json()) as { processing_id: string };
      expect(response.status, JSON.stringify(legacy)).toBe(200);
      const delivery = await deliveryOf(receiver, legacy.processing_id);
      expect(delivery).toMatchObject({ path: '/global', verified: { ok: true } });
    });

    it(
      'sends nothing for a job that opts out (notify_url= in the query, null or "" in JSON), and /status shows no notification',
      { timeout: 60_000 },
      async () => {
        const a = as(harness, KEY_A);
        const file = await upload(a, await solid(20, 20, { r: 90, g: 200, b: 30 }), 'green.png');
        const quiet = [
          await accepted(a, file.file_id, 'operation=blur&intensity=3&notify_url='),
          await accepted(a, file.file_id, { operations: [{ operation: 'blur', intensity: 4 }], notify_url: null }),
          await accepted(a, file.file_id, { operations: [{ operation: 'blur', intensity: 5 }], notify_url: '' }),
        ];
        // A job with a webhook asked after them: once its delivery is in, theirs would have been too.
        const witness = await accepted(a, file.file_id, { operations: [{ operation: 'blur', intensity: 6 }] });
        for (const job of quiet) expect((await waitForJob(a, job.processing_id)).status).toBe('completed');
        await deliveryOf(receiver, witness.processing_id);
        await new Promise((resolve) => setTimeout(resolve, 300));
        for (const job of quiet) {
          expect(receiver.deliveries.filter((d) => d.body.includes(job.processing_id))).toEqual([]);
          expect(await waitForJob(a, job.processing_id)).not.toHaveProperty('notification');
        }
      },
    );

    it('replays an Idempotency-Key whatever the default: null and "" are one request, absent is another', async () => {
      const a = as(harness, KEY_A);
      const file = await upload(a, await solid(10, 10, { r: 1, g: 2, b: 3 }), 'tiny.png');
      const key = { 'idempotency-key': `defaults-${crypto.randomUUID()}` };
      const first = await accepted(a, file.file_id, { operations: [{ operation: 'sepia' }], notify_url: null }, key);
      const again = await ask(a, file.file_id, { operations: [{ operation: 'sepia' }], notify_url: '' }, key);
      expect(again.response.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body.processing_id).toBe(first.processing_id);
      const other = await ask(a, file.file_id, { operations: [{ operation: 'sepia' }] }, key);
      expect(other.response.status).toBe(422);
      expect(other.body).toMatchObject({ code: 'idempotency_key_reused' });
    });
  });
}

suite('default notify_url, embedded', () => embeddedHarness);
describe.runIf(redis !== undefined)('redis', () => suite('default notify_url, Redis mode', () => redisHarness(redis!.url)));

describe('a default notify_url that fails the SSRF guard', () => {
  let harness: Harness;
  beforeAll(async () => {
    // localhost passes the configuration's syntax check; its address (loopback) is refused per request.
    harness = await embeddedHarness({
      WEBHOOK_SECRETS: generateSecret(),
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_DEFAULT_URL: 'http://localhost:9/operator-only?token=t0ps3cret',
    });
  });
  afterAll(async () => harness?.close());

  it('is a 503 default_notify_url_refused with Retry-After, naming the variable but not the URL; an opt-out still works', async () => {
    const send = harness.request;
    const file = await upload(send, await solid(8, 8, { r: 5, g: 5, b: 5 }), 'tiny.png');
    for (const request of ['operation=grayscale', { operations: [{ operation: 'grayscale' }] }]) {
      const { response, body } = await ask(send, file.file_id, request);
      expect(response.status, JSON.stringify(body)).toBe(503);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(body).toMatchObject({ code: 'default_notify_url_refused', reason: 'refused_address' });
      expect(body.detail).toContain('WEBHOOK_DEFAULT_URL');
      expect(JSON.stringify(body)).not.toMatch(/localhost|127\.0\.0\.1|t0ps3cret|operator-only/);
    }
    const quiet = await accepted(send, file.file_id, 'operation=grayscale&notify_url=');
    expect((await waitForJob(send, quiet.processing_id)).status).toBe('completed');
    // The request's own URL is judged as ever: a 400 for the client's own mistake.
    const own = await ask(send, file.file_id, { operations: [{ operation: 'grayscale' }], notify_url: 'http://10.0.0.1/hook' });
    expect(own.response.status).toBe(400);
    expect(own.body).toMatchObject({ code: 'invalid_notify_url', reason: 'refused_address' });
  });
});

describe('the default notify_url configuration', () => {
  const secrets = generateSecret();
  const refused = (env: Record<string, string>, message: RegExp) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  };

  it('takes a global default and per-key defaults by key-id, the id being the hash access control keeps', async () => {
    const config = loadConfig({
      WEBHOOK_SECRETS: secrets,
      API_KEYS: `${KEY_A}, ${KEY_B}`,
      WEBHOOK_DEFAULT_URL: ' https://hooks.example.com/all ',
      WEBHOOK_KEY_URLS: ` ${keyIdOf(KEY_A)} = https://a.example.com/h?x=1 ,${keyIdOf(KEY_B).toUpperCase()}=https://b.example.com/h,`,
    });
    expect(config.WEBHOOK_DEFAULT_URL).toBe('https://hooks.example.com/all');
    expect([...config.WEBHOOK_KEY_URLS]).toEqual([
      [keyIdOf(KEY_A), 'https://a.example.com/h?x=1'],
      [keyIdOf(KEY_B), 'https://b.example.com/h'],
    ]);
    // src/access.ts sets `caller` to key:<the first 32 hex digits of SHA-256 of the key>.
    expect(keyIdOf(KEY_A)).toBe((await sha256Hex(KEY_A)).slice(0, 32));
    const unset = loadConfig({});
    expect(unset.WEBHOOK_DEFAULT_URL).toBeUndefined();
    expect(unset.WEBHOOK_KEY_URLS.size).toBe(0);
  });

  it('refuses a default URL the notify_url rules refuse, in one line naming the variable and never quoting the URL', () => {
    refused({ WEBHOOK_SECRETS: secrets, WEBHOOK_DEFAULT_URL: 'hooks.example.com/x' }, /WEBHOOK_DEFAULT_URL must be an absolute URL/);
    refused(
      { WEBHOOK_SECRETS: secrets, WEBHOOK_DEFAULT_URL: 'http://hooks.example.com/x' },
      /WEBHOOK_DEFAULT_URL must use https \(http is refused unless WEBHOOK_ALLOW_HTTP=true\)/,
    );
    refused(
      { WEBHOOK_SECRETS: secrets, WEBHOOK_DEFAULT_URL: 'https://user:s3cret@hooks.example.com/x' },
      /WEBHOOK_DEFAULT_URL must not carry a user name or password/,
    );
    refused({ WEBHOOK_SECRETS: secrets, WEBHOOK_DEFAULT_URL: 'https://10.1.2.3/x' }, /WEBHOOK_DEFAULT_URL must reach a public address/);
    refused(
      { WEBHOOK_SECRETS: secrets, API_KEYS: KEY_A, WEBHOOK_KEY_URLS: `${keyIdOf(KEY_A)}=ftp://a.example.com/x` },
      new RegExp(`WEBHOOK_KEY_URLS's URL for ${keyIdOf(KEY_A)} must use https`),
    );
    try {
      loadConfig({ WEBHOOK_SECRETS: secrets, WEBHOOK_DEFAULT_URL: 'https://user:s3cret@hooks.example.com/x' });
    } catch (error) {
      expect(String(error)).not.toContain('s3cret');
      expect(String(error).split('\n')).toHaveLength(1);
    }
    // What WEBHOOK_ALLOW_HTTP and WEBHOOK_ALLOWED_HOSTS allow, a default may use.
    expect(
      loadConfig({
        WEBHOOK_SECRETS: secrets,
        WEBHOOK_ALLOW_HTTP: 'true',
        WEBHOOK_ALLOWED_HOSTS: '10.0.0.0/8',
        WEBHOOK_DEFAULT_URL: 'http://10.1.2.3/x',
      }).WEBHOOK_DEFAULT_URL,
    ).toBe('http://10.1.2.3/x');
  });

  it('refuses a default without WEBHOOK_SECRETS, key URLs without API_KEYS, and a key-id of no key', () => {
    refused({ WEBHOOK_DEFAULT_URL: 'https://hooks.example.com/x' }, /WEBHOOK_DEFAULT_URL needs WEBHOOK_SECRETS/);
    refused({ API_KEYS: KEY_A, WEBHOOK_KEY_URLS: `${keyIdOf(KEY_A)}=https://a.example.com/x` }, /WEBHOOK_KEY_URLS needs WEBHOOK_SECRETS/);
    refused({ WEBHOOK_SECRETS: secrets, WEBHOOK_KEY_URLS: `${keyIdOf(KEY_A)}=https://a.example.com/x` }, /WEBHOOK_KEY_URLS needs API_KEYS/);
    const typo =
      `${keyIdOf(KEY_A).slice(0, 31)}0` === keyIdOf(KEY_A) ? `${keyIdOf(KEY_A).slice(0, 31)}1` : `${keyIdOf(KEY_A).slice(0, 31)}0`;
    refused(
      { WEBHOOK_SECRETS: secrets, API_KEYS: KEY_A, WEBHOOK_KEY_URLS: `${typo}=https://a.example.com/x` },
      new RegExp(`WEBHOOK_KEY_URLS names key-id ${typo}, which is no key of API_KEYS`),
    );
    refused(
      { WEBHOOK_SECRETS: secrets, API_KEYS: KEY_A, WEBHOOK_KEY_URLS: `${KEY_A}=https://a.example.com/x` },
      /WEBHOOK_KEY_URLS must be a comma-separated list of <key-id>=<url>/,
    );
    refused(
      {
        WEBHOOK_SECRETS: secrets,
        API_KEYS: KEY_A,
        WEBHOOK_KEY_URLS: `${keyIdOf(KEY_A)}=https://a.example.com/x,${keyIdOf(KEY_A)}=https://b.example.com/x`,
      },
      /WEBHOOK_KEY_URLS names key-id [0-9a-f]{32} twice/,
    );
    // The malformed entry is not echoed: it may be a key pasted where its id belongs.
    try {
      loadConfig({ WEBHOOK_SECRETS: secrets, API_KEYS: KEY_A, WEBHOOK_KEY_URLS: `${KEY_A}=https://a.example.com/x` });
    } catch (error) {
      expect(String(error)).not.toContain(KEY_A.slice(0, 12));
    }
  });
});
