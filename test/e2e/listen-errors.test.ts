/**
 * A port the API cannot listen on: the real server process prints one line that says what to change, and
 * exits 1 (no stack trace).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenFailure } from '../../src/entry.js';

/**
 * Root may listen on any port: a root test run starts the server without that capability (CAP_NET_BIND_SERVICE),
 * through util-linux's setpriv, still as root so that it reads the same files and runs the same node.
 */
const WITHOUT_BIND_CAPABILITY = ['setpriv', '--bounding-set=-net_bind_service', '--inh-caps=-net_bind_service', '--'];

interface Run {
  code: number | null;
  lines: string[];
}

/**
 * Runs `src/server.ts` as a user would (after `prefix`, a command that runs it), in a folder of its own, until
 * it exits (or 20 s pass: then it is killed and the test fails).
 */
async function runServer(env: Record<string, string>, prefix: string[] = []): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'image-service-listen-'));
  const [command, ...args] = [...prefix, process.execPath, '--import', 'tsx', 'src/server.ts'];
  const child = spawn(command!, args, {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      HOST: '127.0.0.1',
      UPLOAD_DIR: join(dir, 'uploads'),
      PROCESSED_DIR: join(dir, 'processed'),
      STATE_DIR: join(dir, 'state'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode));
  }).finally(() => clearTimeout(timer));
  await rm(dir, { recursive: true, force: true });
  return { code, lines: output.split('\n').filter((line) => line.length > 0) };
}

describe('a port the API cannot listen on', () => {
  let holder: Server;
  let busyPort: number;

  beforeAll(async () => {
    holder = createServer();
    busyPort = await new Promise<number>((resolve, reject) => {
      holder.once('error', reject);
      holder.listen(0, '127.0.0.1', () => resolve((holder.address() as { port: number }).port));
    });
  });
  afterAll(async () => {
    await new Promise((resolve) => holder.close(resolve));
  });

  it('in use by another process: one line naming the port and PORT, exit 1', async () => {
    const run = await runServer({ PORT: String(busyPort) });
    expect(run.lines).toEqual([`port ${busyPort} is in use (EADDRINUSE: another process listens there); set PORT to a free one`]);
    expect(run.code).toBe(1);
  });

  it('below the unprivileged range, for a process without the privilege: one line naming the port and PORT, exit 1', async () => {
    // Linux lets anyone listen from ip_unprivileged_port_start up (1024 by default; some container runtimes set 0).
    const start = Number((await readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')).trim());
    expect(start, 'this test needs privileged ports (net.ipv4.ip_unprivileged_port_start > 0)').toBeGreaterThan(0);
    const port = start - 1;
    const run = await runServer({ PORT: String(port) }, process.getuid?.() === 0 ? WITHOUT_BIND_CAPABILITY : []);
    expect(run.lines).toEqual([`port ${port} is privileged (EACCES: this process may not listen on it); set PORT to 1024 or above`]);
    expect(run.code).toBe(1);
  });

  it('explains a HOST that is no address of this machine, and leaves other errors to their stack trace', () => {
    expect(listenFailure(Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL' }), '10.9.9.9', 8000)).toMatch(
      /^HOST 10\.9\.9\.9 is not an address of this machine/,
    );
    expect(listenFailure(Object.assign(new Error('x'), { code: 'EMFILE' }), '0.0.0.0', 8000)).toBeUndefined();
    expect(listenFailure(undefined, '0.0.0.0', 8000)).toBeUndefined();
  });
});
