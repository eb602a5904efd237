/**
 * `notify_url` over HTTP, against a real server process and a real receiver that verifies every delivery
 * with the standardwebhooks library: both request forms, a cached answer, what GET /status shows of the
 * delivery, and the refusals (no WEBHOOK_SECRETS; loopback, private and metadata addresses in every spelling).
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret, webhookId } from '../../src/webhooks/signing.js';
import { submit, upload, waitForJob } from '../helpers/client.js';
import { solid } from '../helpers/images.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

type Send = (path: string, init?: RequestInit) => Promise<Response>;
const sender =
  (server: ServerProcess): Send =>
  (path, init) =>
    fetch(`${server.baseUrl}${path}`, init);

async function statusOf(send: Send, id: string): Promise<Record<string, unknown>> {
  return (await (await send(`/status/${id}`)).json()) as Record<string, unknown>;
}

/** Polls GET /status until its notification says `delivered` (the delivery is recorded just after it arrives). */
async function deliveredStatus(send: Send, id: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = await statusOf(send, id);
    if ((status.notification as { status?: string } | undefined)?.status === 'delivered' || Date.now() > deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('notify_url on POST /process (embedded default)', () => {
  const secret = generateSecret();
  let server: ServerProcess;
  let receiver: Receiver;
  let send: Send;

  beforeAll(async () => {
    receiver = await startReceiver(secret);
    server = await startServer({
      WEBHOOK_SECRETS: secret,
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      WEBHOOK_RETRY_SCHEDULE: '0.2',
    });
    send = sender(server);
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
    if (server) await rm(server.dir, { recursive: true, force: true });
  });

  it('announces the end of a job asked in either form, signed, and GET /status shows the delivery', { timeout: 60_000 }, async () => {
    const file = await upload(send, await solid(40, 30, { r: 200, g: 40, b: 40 }), 'red.png');
    // The other test's delivery may already be there (tests run in any order).
    const before = receiver.deliveries.length;
    const viaQuery = await submit(
      send,
      file.file_id,
      `operation=blur&intensity=1&notify_url=${encodeURIComponent(`${receiver.url}/query`)}`,
    );
    const viaJson = await submit(send, file.file_id, { operations: [{ operation: 'grayscale' }], notify_url: `${receiver.url}/json` });
    const deliveries = await receiver.waitFor(before + 2, 30_000);

    for (const [job, path] of [
      [viaQuery, '/query'],
      [viaJson, '/json'],
    ] as const) {
      const delivery = deliveries.find((d) => d.path === path)!;
      expect(delivery.verified.ok, JSON.stringify(delivery.verified)).toBe(true);
      expect(delivery.id).toBe(webhookId(job.processing_id, 'job.completed'));
      expect(delivery.verified.ok && delivery.verified.payload).toMatchObject({
        type: 'job.completed',
        data: { processing_id: job.processing_id, status: 'completed', download_url: `/download/${job.processing_id}` },
      });
      const status = await deliveredStatus(send, job.processing_id);
      expect(status.notification).toMatchObject({
        webhook_id: delivery.id,
        event: 'job.completed',
        status: 'delivered',
        attempts: 1,
        last_response: { status: 204 },
      });
      expect(status).not.toHaveProperty('notify_url');
    }
  });

  it('announces a job answered at once from the cache', { timeout: 60_000 }, async () => {
    const file = await upload(send, await solid(24, 24, { r: 10, g: 160, b: 60 }), 'green.png');
    const first = await submit(send, file.file_id, { operations: [{ operation: 'sepia' }] });
    expect((await waitForJob(send, first.processing_id)).status).toBe('completed');
    const before = receiver.deliveries.length;
    const cached = await submit(send, file.file_id, { operations: [{ operation: 'sepia' }], notify_url: `${receiver.url}/cached` });
    expect(cached).toMatchObject({ status: 'completed', cached: true });
    const deliveries = await receiver.waitFor(before + 1, 30_000);
    const delivery = deliveries.find((d) => d.path === '/cached')!;
    expect(delivery.verified.ok).toBe(true);
    expect(delivery.id).toBe(webhookId(cached.processing_id, 'job.completed'));
  });

  it('names notify_url when it is not a string or too long', async () => {
    const file = await upload(send, await solid(8, 8, { r: 1, g: 2, b: 3 }), 'tiny.png');
    for (const notify_url of [42, `https://example.com/${'a'.repeat(2100)}`]) {
      const response = await send(`/process/${file.file_id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ operations: [{ operation: 'grayscale' }], notify_url }),
      });
      const problem = (await response.json()) as { code: string; errors: Array<{ path: string; message: string }> };
      expect(response.status).toBe(400);
      expect(problem.errors[0]).toMatchObject({ path: 'notify_url', message: expect.stringContaining('2048') });
    }
  });
});

describe('notify_url refused by the SSRF guard (WEBHOOK_SECRETS set, no allow list)', () => {
  let server: ServerProcess;
  let send: Send;
  beforeAll(async () => {
    server = await startServer({ WEBHOOK_SECRETS: generateSecret(), WEBHOOK_ALLOW_HTTP: 'true' });
    send = sender(server);
  });
  afterAll(async () => {
    await server?.stop();
    if (server) await rm(server.dir, { recursive: true, force: true });
  });

  it.each([
    ['loopback by name', 'http://localhost/hook', 'refused_address'],
    ['loopback as a decimal number', 'http://2130706433/hook', 'refused_address'],
    ['loopback in hex', 'http://0x7f.1/hook', 'refused_address'],
    ['IPv4-mapped IPv6 loopback', 'http://[::ffff:127.0.0.2]/hook', 'refused_address'],
    ['a private range', 'http://10.1.2.3/hook', 'refused_address'],
    ['the metadata address', 'http://169.254.169.254/latest/meta-data/', 'refused_address'],
    ['credentials in the URL', 'http://user:pass@127.0.0.1/hook', 'credentials'],
    ['another scheme', 'ftp://127.0.0.1/hook', 'scheme'],
  ])('refuses a notify_url with %s: 400 invalid_notify_url naming the reason, and no job', async (_name, url, reason) => {
    const file = await upload(send, await solid(8, 8, { r: 1, g: 2, b: 3 }), 'tiny.png');
    const response = await send(`/process/${file.file_id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ operations: [{ operation: 'grayscale' }], notify_url: url }),
    });
    const problem = (await response.json()) as Record<string, unknown>;
    expect(response.status, JSON.stringify(problem)).toBe(400);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(problem).toMatchObject({ code: 'invalid_notify_url', reason, errors: [{ path: 'notify_url' }] });
  });
});

describe('notify_url without WEBHOOK_SECRETS', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
    if (server) await rm(server.dir, { recursive: true, force: true });
  });

  it('is refused with a 400 that says the deployment has no secret to sign with', async () => {
    const send = sender(server);
    const file = await upload(send, await solid(8, 8, { r: 1, g: 2, b: 3 }), 'tiny.png');
    const response = await send(
      `/process/${file.file_id}?operation=grayscale&notify_url=${encodeURIComponent('https://example.com/hook')}`,
      { method: 'POST' },
    );
    const problem = (await response.json()) as Record<string, unknown>;
    expect(response.status).toBe(400);
    expect(problem).toMatchObject({ code: 'invalid_notify_url', reason: 'webhooks_not_configured' });
    expect(problem.detail).toContain('WEBHOOK_SECRETS');
  });
});
