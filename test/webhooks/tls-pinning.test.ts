/**
 * HTTPS deliveries go to the vetted address while TLS is still checked against the URL's name: the
 * receiver sees SNI `receiver.test` (a name no DNS knows, pinned to 127.0.0.1), and the same receiver
 * reached by its bare address fails the certificate check instead of being trusted.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { hasOpenssl, makeTestCertificates } from '../helpers/certificates.js';

const dir = mkdtempSync(join(tmpdir(), 'webhook-tls-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const makeCertificates = () =>
  makeTestCertificates(dir, { caName: 'webhook test CA', commonName: 'receiver.test', altNames: 'DNS:receiver.test' });

describe.runIf(hasOpenssl())('TLS to a pinned address', () => {
  it('sends SNI and Host as the URL’s name, and checks the certificate against it', { timeout: 30_000 }, async () => {
    makeCertificates();
    const seen: Array<{ servername: string | false | null; host?: string }> = [];
    const server = createServer(
      { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) },
      (request, response) => {
        seen.push({ servername: (request.socket as TLSSocket).servername, host: request.headers.host });
        request.resume();
        request.on('end', () => response.writeHead(204).end());
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const post = async (url: string) => {
        const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'test/helpers/webhook-post.ts', url], {
          env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') },
        });
        return JSON.parse(stdout.trim().split('\n').at(-1)!) as { kind: string; status?: number; error?: string };
      };
      expect(await post(`https://receiver.test:${port}/hook`)).toEqual({ kind: 'answered', status: 204 });
      expect(seen).toEqual([{ servername: 'receiver.test', host: `receiver.test:${port}` }]);
      expect(await post(`https://127.0.0.1:${port}/hook`)).toEqual({ kind: 'unreachable', error: 'ERR_TLS_CERT_ALTNAME_INVALID' });
      expect(seen).toHaveLength(1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
