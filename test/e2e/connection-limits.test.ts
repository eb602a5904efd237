/**
 * What the Node server itself bounds, over raw sockets against the real server: headers that never finish
 * get a 408 problem at HEADERS_TIMEOUT_SECONDS, an idle keep-alive connection outlives the ALB's 60 s idle
 * timeout, and past MAX_CONNECTIONS a new connection is closed at once while those open keep working.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noisyJpeg } from '../helpers/images.js';
import { CONTENT_TYPE, formBody } from '../helpers/refusals.js';
import { startServer, stopAll, type ServerProcess } from '../helpers/server-process.js';

const started: ServerProcess[] = [];
let server: ServerProcess;

beforeAll(async () => {
  server = await startServer({ HEADERS_TIMEOUT_SECONDS: '1', MAX_CONNECTIONS: '3' });
  started.push(server);
});
afterAll(() => stopAll(started));

/** A raw connection to the server, collecting what it answers until it closes. */
async function open(target = server): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const { port } = new URL(target.baseUrl);
  const socket = connect(Number(port), '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return { socket, received: () => text, closed };
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not so after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const GET = 'GET / HTTP/1.1\r\nHost: test\r\n\r\n';
const answered = (text: string) => /\r\n\r\n\{.*\}$/s.test(text);

/**
 * A connection that got an answer to GET /. The server counts a connection gone once it has seen the close,
 * a moment after the client (another test's, or one closed just before): until then a new one is turned away,
 * so it is tried again, for a while.
 */
async function served(): Promise<Awaited<ReturnType<typeof open>>> {
  for (const deadline = Date.now() + 5000; ;) {
    const client = await open();
    client.socket.write(GET);
    await Promise.race([client.closed, until(() => answered(client.received()))]);
    if (answered(client.received())) return client;
    if (Date.now() > deadline) throw new Error('no connection was served');
  }
}

describe('the HTTP server itself', () => {
  it('answers headers that never finish with a 408 request_timeout problem naming HEADERS_TIMEOUT_SECONDS, and closes', async () => {
    const slow = await open();
    const startedAt = Date.now();
    slow.socket.write('GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ');
    await slow.closed;
    const [head, body] = slow.received().split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(head).toMatch(/\r\nConnection: close\r\n/i);
    expect(head).toMatch(/\r\nContent-Type: application\/problem\+json\r\n/i);
    const problem = JSON.parse(body!) as Record<string, unknown>;
    expect(problem).toMatchObject({ status: 408, code: 'request_timeout', type: '/problems/request_timeout' });
    expect(problem.detail).toMatch(/within 1 s \(HEADERS_TIMEOUT_SECONDS\)/);
    expect(Date.now() - startedAt).toBeLessThan(4000);
  });

  it('keeps an idle keep-alive connection longer than the ALB idle timeout (Keep-Alive: timeout=65)', async () => {
    const client = await served();
    expect(client.received()).toMatch(/\r\nKeep-Alive: timeout=65\r\n/i);
    client.socket.destroy();
  });

  it('past MAX_CONNECTIONS closes a new connection at once; the open ones still work, and a slot frees on close', async () => {
    const held = [await served(), await served(), await served()];
    const extra = await open();
    extra.socket.write(GET);
    await extra.closed;
    expect(extra.received()).toBe('');
    // The three still work (keep-alive), and once they are closed a new connection is served again.
    const first = held[0]!;
    const before = first.received().length;
    first.socket.write(GET);
    await until(() => first.received().length > before && answered(first.received().slice(before)));
    for (const client of held) client.socket.destroy();
    await Promise.all(held.map((client) => client.closed));
    const later = await served();
    expect(later.received()).toMatch(/^HTTP\/1\.1 200 OK/);
    later.socket.destroy();
  });

  it('a stop is not held for KEEP_ALIVE_TIMEOUT_SECONDS by a keep-alive connection answered during it', async () => {
    const stopping = await startServer({});
    started.push(stopping);
    const client = await open(stopping);
    const body = formBody([{ name: 'file', filename: 'kept.jpg', bytes: await noisyJpeg(64, 48) }]);
    client.socket.write(`POST /upload HTTP/1.1\r\nHost: test\r\nContent-Type: ${CONTENT_TYPE}\r\nContent-Length: ${body.length}\r\n\r\n`);
    client.socket.write(body.subarray(0, 100));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stopAt = Date.now();
    stopping.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    client.socket.write(body.subarray(100));
    await until(() => answered(client.received()));
    expect(client.received()).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(await stopping.exited).toBe(0);
    // The default SHUTDOWN_TIMEOUT_SECONDS is 25: the idle connection closed within a second instead.
    expect(Date.now() - stopAt).toBeLessThan(8000);
  });
});
