/**
 * @module
 * A real webhook receiver for the tests: an HTTP server on 127.0.0.1 (a port the system picks) that verifies
 * every delivery with the Standard Webhooks reference library (`standardwebhooks`), not with our signing
 * code, and answers as the test's `answer` says (a status, headers, or never).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Delivery {
  id: string;
  timestamp: number;
  headers: Record<string, string>;
  body: string;
  /** What `Webhook.verify` returned (the parsed payload), or the error it threw. */
  verified: { ok: true; payload: unknown } | { ok: false; error: string };
  receivedAt: number;
  path: string;
}

/** What to answer to delivery number `n` (from 1): a status and headers, or `'hang'` (never answer). */
export type Answer = { status: number; headers?: Record<string, string> } | 'hang';

export interface Receiver {
  /** `http://127.0.0.1:<port>` */
  url: string;
  deliveries: Delivery[];
  /** Resolves once `count` deliveries arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<Delivery[]>;
  setAnswer(answer: (n: number, request: IncomingMessage) => Answer): void;
  close(): Promise<void>;
}

export async function startReceiver(
  secret: string,
  answer: (n: number, request: IncomingMessage) => Answer = () => ({ status: 204 }),
): Promise<Receiver> {
  const verifier = new Webhook(secret);
  const deliveries: Delivery[] = [];
  const hanging = new Set<ServerResponse>();
  let answerOf = answer;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]));
      let verified: Delivery['verified'];
      try {
        verified = { ok: true, payload: verifier.verify(body, headers) };
      } catch (error) {
        verified = { ok: false, error: String(error) };
      }
      deliveries.push({
        id: headers['webhook-id'] ?? '',
        timestamp: Number(headers['webhook-timestamp']),
        headers,
        body,
        verified,
        receivedAt: Date.now(),
        path: request.url ?? '',
      });
      const reply = answerOf(deliveries.length, request);
      if (reply === 'hang') {
        hanging.add(response);
        return;
      }
      response.writeHead(reply.status, reply.headers);
      response.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    deliveries,
    setAnswer: (next) => {
      answerOf = next;
    },
    async waitFor(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (deliveries.length < count) {
        if (Date.now() > deadline)
          throw new Error(`the receiver got ${deliveries.length} deliveries, expected ${count}, within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return deliveries.slice(0, count);
    },
    async close() {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
