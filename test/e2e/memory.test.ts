/**
 * Memory stays flat under hostile and heavy uploads: endless chunked bodies are cut off at MAX_FILE_SIZE,
 * and large uploads stream to disk instead of being buffered. RSS is read from /proc (Linux).
 */
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endlessUpload } from '../helpers/endless-upload.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';

/** The bound this test holds the server to, in MiB: Node + sharp loaded idle is ~100 MiB here. */
const RSS_BOUND_MIB = 250;

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

describe.runIf(existsSync('/proc/self/status'))('memory under upload load', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ WORKER_CONCURRENCY: '1' });
  });
  afterAll(async () => {
    await server.stop('SIGKILL');
    await rm(server.dir, { recursive: true, force: true });
  });

  it(`refuses 8 concurrent endless uploads and 16 concurrent 9 MB uploads with RSS under ${RSS_BOUND_MIB} MiB`, async () => {
    const pid = server.child.pid!;
    let peak = rssMiB(pid);
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 10);
    try {
      const endless = await Promise.all(Array.from({ length: 8 }, () => endlessUpload(server.baseUrl)));
      expect(endless).toEqual(Array(8).fill(413));
      // 9 MB that pass the size limit and stream to disk (then fail the format check: random bytes).
      const big = new Uint8Array(9 * 1024 * 1024).fill(0x33);
      const statuses = await Promise.all(
        Array.from({ length: 16 }, async () => {
          const form = new FormData();
          form.append('file', new Blob([big]), 'big.png');
          return (await fetch(`${server.baseUrl}/upload`, { method: 'POST', body: form })).status;
        }),
      );
      expect(statuses).toEqual(Array(16).fill(415));
    } finally {
      clearInterval(sampler);
    }
    console.log(`memory test: peak RSS ${peak.toFixed(0)} MiB (bound ${RSS_BOUND_MIB} MiB)`);
    expect(peak).toBeLessThan(RSS_BOUND_MIB);
  });
});
