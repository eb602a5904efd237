/**
 * @module
 * Sends one webhook POST with Node's HTTP client, to the address the guard vetted for this attempt: the
 * connection's `lookup` answers that address only, while `Host` and TLS SNI keep the URL's name (so the
 * certificate is checked against it). No connection pooling (each attempt is vetted and connected anew),
 * no redirects followed, the answer's body read to at most `MAX_ANSWER_BYTES` and dropped, and one deadline
 * for the whole attempt.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { parseRetryAfter, type AttemptResult, type WebhookRequest, type WebhookTransport } from '../webhooks/delivery.js';
import type { NotifyUrlGuard } from './notify-url-guard.js';

export const MAX_ANSWER_BYTES = 4096;

export function createWebhookTransport(guard: Pick<NotifyUrlGuard, 'vet'>): WebhookTransport {
  return {
    async post({ url, headers, body, timeoutMs }: WebhookRequest): Promise<AttemptResult> {
      const deadline = Date.now() + timeoutMs;
      const target = await guard.vet(url);
      if (!target.ok) return { kind: 'unreachable', error: `${target.reason}: ${target.detail}` };
      const pinned: LookupFunction = (_host, options, callback) => {
        if (options.all) callback(null, [{ address: target.address, family: target.family }]);
        else callback(null, target.address, target.family);
      };
      const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
      const payload = Buffer.from(body);
      return new Promise<AttemptResult>((resolve) => {
        let settled = false;
        // Once the status line is in, it is the answer: a body that never ends does not undo it.
        let answer: AttemptResult | undefined;
        const finish = (result: AttemptResult) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          request.destroy();
          resolve(result);
        };
        const request = send(target.url, {
          method: 'POST',
          agent: false,
          lookup: pinned,
          headers: { ...headers, 'content-length': String(payload.length) },
        });
        const timer = setTimeout(
          () => finish(answer ?? { kind: 'unreachable', error: `timeout: no answer within ${timeoutMs} ms` }),
          Math.max(1, deadline - Date.now()),
        );
        request.on('error', (error: NodeJS.ErrnoException) =>
          finish({ kind: 'unreachable', error: error.code ?? error.message.slice(0, 200) }),
        );
        request.on('response', (response: IncomingMessage) => {
          const answered: AttemptResult = (answer = {
            kind: 'answered',
            status: response.statusCode ?? 0,
            retryAfterMs: parseRetryAfter(response.headers['retry-after']),
          });
          let read = 0;
          response.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read >= MAX_ANSWER_BYTES) finish(answered);
          });
          response.on('end', () => finish(answered));
          response.on('error', () => finish(answered));
        });
        request.end(payload);
      });
    },
  };
}
