/**
 * @module
 * Starts the real server entry point in a child process on a free port, as a user would run it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ServerProcess {
  /** Stops the process (SIGTERM unless told otherwise) and waits for it. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  baseUrl: string;
  child: ChildProcess;
  dir: string;
  output: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Spawns `src/server.ts` (through tsx) with `env`; resolves once it listens, or when it exits early. */
export function startServer(env: Record<string, string> = {}, dir?: string): Promise<ServerProcess> {
  return startEntry('src/server.ts', '"listening"', env, dir);
}

/** Spawns `src/worker.ts` with `env` over the folders of `dir`; resolves once it has started. */
export function startWorker(env: Record<string, string>, dir: string): Promise<ServerProcess> {
  return startEntry('src/worker.ts', '"worker started"', env, dir);
}

/**
 * Spawns `entry` on a free port. Another test may bind the same "free" port between `freePort()` and the
 * child's listen (test files run in parallel); the child then exits with EADDRINUSE, and it is started
 * again on another port.
 */
async function startEntry(entry: string, readyMarker: string, env: Record<string, string>, dir?: string): Promise<ServerProcess> {
  const home = dir ?? (await mkdtemp(join(tmpdir(), 'image-service-e2e-')));
  for (let attempt = 1; ; attempt++) {
    const started = await startOnce(entry, readyMarker, env, home, await freePort());
    const lostThePort = started.child.exitCode !== null && started.output().includes('EADDRINUSE');
    if (!lostThePort || attempt === 5) return started;
  }
}

async function startOnce(
  entry: string,
  readyMarker: string,
  env: Record<string, string>,
  home: string,
  port: number,
): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      HOST: '127.0.0.1',
      UPLOAD_DIR: join(home, 'uploads'),
      PROCESSED_DIR: join(home, 'processed'),
      STATE_DIR: join(home, 'state'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(readyMarker)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => resolve());
  });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return { baseUrl: `http://127.0.0.1:${port}`, child, dir: home, output: () => output, exited, stop };
}

/** Kills every process a test started and removes their folders (for `afterAll`). */
export async function stopAll(started: ServerProcess[]): Promise<void> {
  await Promise.all(started.map((p) => p.stop('SIGKILL')));
  await Promise.all(started.map((p) => rm(p.dir, { recursive: true, force: true })));
}
