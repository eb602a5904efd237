/**
 * @module
 * What the Node HTTP server itself bounds, for `src/server.ts`: how long a request's headers may take, how
 * long an idle keep-alive connection stays open, how many connections are open at once, and a backstop for
 * bodies nobody else times (the upload receiver times its own, and answers in words).
 */
import { randomUUID } from 'node:crypto';
import type { Server, ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Config } from './config.js';
import { AppError } from './domain/errors.js';
import { problemBody } from './problem.js';

type Limits = Pick<Config, 'HEADERS_TIMEOUT_SECONDS' | 'UPLOAD_TIMEOUT_SECONDS' | 'KEEP_ALIVE_TIMEOUT_SECONDS' | 'MAX_CONNECTIONS'>;

/** The backstop sits past the receiver's own deadline, so an upload gets the receiver's answer first. */
const BACKSTOP_SLACK_SECONDS = 5;

/**
 * Options for `http.createServer`.
 * @example serve({ fetch, port, serverOptions: httpServerOptions(config) })
 */
export function httpServerOptions(config: Limits): ServerOptions {
  return {
    headersTimeout: config.HEADERS_TIMEOUT_SECONDS * 1000,
    requestTimeout: requestTimeoutSeconds(config) * 1000,
    // Node checks both deadlines this often; its default of 30 s is why a stalled body was held ~330 s.
    connectionsCheckingInterval: 1000,
    // Longer than the ALB's 60 s idle timeout: the ALB, not the service, closes an idle connection, so a
    // request the ALB sends down it never races the service's close (a 502 otherwise). Idle time counts
    // toward neither deadline above (Node starts them at a request's first byte).
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_SECONDS * 1000,
  };
}

/** Caps open connections (past it Node closes a new one at once) and answers a timed-out request in words. */
export function limitConnections(server: Server, config: Limits): void {
  server.maxConnections = config.MAX_CONNECTIONS;
  const detail = `the request's headers did not arrive within ${config.HEADERS_TIMEOUT_SECONDS} s (HEADERS_TIMEOUT_SECONDS), or the whole request within ${requestTimeoutSeconds(config)} s`;
  server.on('clientError', function answerClientError(error: NodeJS.ErrnoException, socket: Duplex) {
    // What Node answers when nobody listens, but for a timeout, which gets a problem document.
    const headerSent = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (socket.writable && !headerSent)
      socket.write(error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? timeoutAnswer(detail) : bareAnswer(error.code));
    socket.destroy(error);
  });
}

const requestTimeoutSeconds = (config: Limits) => config.HEADERS_TIMEOUT_SECONDS + config.UPLOAD_TIMEOUT_SECONDS + BACKSTOP_SLACK_SECONDS;

function timeoutAnswer(detail: string): string {
  const requestId = randomUUID();
  const body = JSON.stringify(problemBody(new AppError(408, 'request_timeout', detail), requestId));
  return `HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\n\r\n${body}`;
}

function bareAnswer(code: string | undefined): string {
  const status =
    code === 'HPE_HEADER_OVERFLOW'
      ? '431 Request Header Fields Too Large'
      : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
        ? '413 Payload Too Large'
        : '400 Bad Request';
  return `HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`;
}
