/**
 * @module
 * A real S3-protocol server (s3rver, from npm) that the tests start themselves, in a child process on a free
 * port, with one bucket. There is no fallback and no skip: if it cannot start, the suites that need it fail.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** The environment a service needs to use this server, under a key prefix of its own. */
  env(prefix?: string): Record<string, string>;
  stop(): Promise<void>;
}

/** The credentials s3rver accepts; the service reads them through the standard AWS chain (the environment). */
export const S3_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

export async function startS3(): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 'test-s3-'));
  const bucket = 'image-service-test';
  const child = spawn(process.execPath, ['--openssl-legacy-provider', join(import.meta.dirname, 's3rver-main.mjs'), directory, bucket], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`the S3 test server did not start within 15 s: ${output.slice(-500)}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /\{"port":(\d+)\}/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the S3 test server exited (${code}) before listening: ${output.slice(-500)}`));
    });
  });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let stopping = false;
  // A server that dies under the tests is a failure to see, not a mystery of refused connections.
  child.once('exit', (code, signal) => {
    if (!stopping) console.error(`the S3 test server exited (${code ?? signal}) during the tests:\n${log}`);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    env: (prefix = `test-${randomUUID().slice(0, 8)}`) => ({
      STORAGE_URL: `s3://${bucket}/${prefix}`,
      S3_ENDPOINT: endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      AWS_REGION: 'us-east-1',
      ...S3_CREDENTIALS,
    }),
    stop: async () => {
      stopping = true;
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
