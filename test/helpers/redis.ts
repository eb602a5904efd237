/**
 * @module
 * A real Redis for the tests: `REDIS_URL` if set; otherwise a `redis-server` started on a free port when one
 * is on the PATH (append-only, in a temporary folder, so it can be stopped and started again with its data);
 * otherwise none, and the Redis suites say loudly that they skipped. With `REQUIRE_REDIS=1` (CI), no Redis
 * is a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { deleteKeysUnder } from '../../src/adapters/redis-connection.js';
import { freePort } from './server-process.js';
import { hasOpenssl, makeTestCertificates } from './certificates.js';

export interface TestRedis {
  url: string;
  /** True when the tests started this server themselves (so they may stop and start it). */
  owned: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its folder. */
  dispose(): Promise<void>;
}

const hasRedisServer = () => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

async function waitForPing(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch {
      client.disconnect();
      if (Date.now() > deadline) throw new Error(`Redis at ${url} did not answer within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/**
 * Starts `redis-server` with `args` on `port`; resolves once it says it is ready, so a PING answered by
 * another test's server on the same port is never mistaken for it. Resolves `undefined` if it lost the
 * port (another test bound it between `freePort()` and now).
 */
function spawnRedisServer(args: string[], port: number, cwd: string): Promise<ChildProcess | undefined> {
  const child = spawn('redis-server', [...args, '--bind', '127.0.0.1', '--dir', cwd, '--logfile', ''], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', () =>
      /already in use/i.test(output) ? resolve(undefined) : reject(new Error(`redis-server on port ${port} exited: ${output.slice(-500)}`)),
    );
  });
}

/** A redis-server on a free port (trying other ports if one is lost to a parallel test). */
async function spawnOnFreePort(args: (port: number) => string[], cwd: string): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const port = await freePort();
    const child = await spawnRedisServer(args(port), port, cwd);
    if (child) return { child, port };
  }
  throw new Error('could not find a free port for redis-server in 5 tries');
}

async function ownRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'test-redis-'));
  const args = (port: number) => ['--port', String(port), '--save', '', '--appendonly', 'yes', '--maxmemory-policy', 'noeviction'];
  const first = await spawnOnFreePort(args, dir);
  const port = first.port;
  let child = first.child;
  const url = `redis://127.0.0.1:${port}`;
  const start = async () => {
    // A restart keeps the port (and the append-only file) of the first start.
    const restarted = await spawnRedisServer(args(port), port, dir);
    if (!restarted) throw new Error(`port ${port} was taken while this test's redis-server was stopped`);
    child = restarted;
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return {
    url,
    owned: true,
    start,
    stop,
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A Redis for this test file, or `undefined` (after a loud warning) when there is none to be had. */
export async function testRedis(): Promise<TestRedis | undefined> {
  if (process.env.REDIS_URL) {
    await waitForPing(process.env.REDIS_URL);
    const noop = async () => undefined;
    return { url: process.env.REDIS_URL, owned: false, start: noop, stop: noop, dispose: noop };
  }
  if (hasRedisServer()) return ownRedis();
  if (process.env.REQUIRE_REDIS === '1') throw new Error('REQUIRE_REDIS=1 but no Redis: set REDIS_URL or put redis-server on the PATH');
  console.warn('\n*** SKIPPED: the Redis suites need REDIS_URL or redis-server on the PATH; none was found. ***\n');
  return undefined;
}

/** A server the test may stop and start: its own `redis-server`, even when `REDIS_URL` is set. */
export async function ownedTestRedis(): Promise<TestRedis | undefined> {
  if (hasRedisServer()) return ownRedis();
  if (process.env.REQUIRE_REDIS === '1')
    throw new Error('REQUIRE_REDIS=1 but redis-server is not on the PATH (the fault tests need their own server)');
  console.warn('\n*** SKIPPED: the Redis fault tests need redis-server on the PATH; none was found. ***\n');
  return undefined;
}

/** Deletes every key under `prefix:` (tests clean up after themselves). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  try {
    await deleteKeysUnder(client, prefix);
  } finally {
    client.disconnect();
  }
}

export interface TlsTestRedis extends TestRedis {
  /** The CA that signed the server's certificate (for NODE_EXTRA_CA_CERTS). */
  caFile: string;
}

/**
 * A `redis-server` that speaks only TLS, with a certificate for 127.0.0.1 signed by a CA made here with
 * openssl: `rediss://` as ElastiCache in-transit encryption uses it.
 */
export async function tlsTestRedis(): Promise<TlsTestRedis | undefined> {
  if (!hasRedisServer() || !hasOpenssl()) {
    if (process.env.REQUIRE_REDIS === '1')
      throw new Error('REQUIRE_REDIS=1 but redis-server or openssl is missing (the TLS test needs both)');
    console.warn('\n*** SKIPPED: the rediss:// test needs redis-server and openssl on the PATH. ***\n');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'test-redis-tls-'));
  makeTestCertificates(dir, { caName: 'image-service test CA', commonName: '127.0.0.1', altNames: 'IP:127.0.0.1,DNS:localhost' });
  const { child, port } = await spawnOnFreePort(
    (tlsPort) => [
      '--port',
      '0',
      '--tls-port',
      String(tlsPort),
      '--save',
      '',
      '--appendonly',
      'no',
      '--tls-cert-file',
      'server.pem',
      '--tls-key-file',
      'server.key',
      '--tls-ca-cert-file',
      'ca.pem',
      '--tls-auth-clients',
      'no',
    ],
    dir,
  );
  const url = `rediss://127.0.0.1:${port}`;
  const caFile = join(dir, 'ca.pem');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      tls: { ca: readFileSync(caFile) },
    });
    client.on('error', () => undefined);
    const up = await client
      .connect()
      .then(() => client.ping())
      .then(
        () => true,
        () => false,
      );
    client.disconnect();
    if (up) break;
    if (Date.now() > deadline) throw new Error('the TLS redis-server did not answer');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return {
    url,
    owned: true,
    caFile,
    start: async () => undefined,
    stop,
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The end of a test file that used `redis`: closes its clients, deletes the keys under its prefixes, and
 * stops the server if the tests started it (for `afterAll`).
 */
export async function releaseTestRedis(
  redis: TestRedis | undefined,
  { clients = [], prefixes = [] }: { clients?: Redis[]; prefixes?: string[] },
): Promise<void> {
  for (const client of clients) client.disconnect();
  if (!redis) return;
  for (const prefix of prefixes) await deleteKeys(redis.url, prefix);
  await redis.dispose();
}
