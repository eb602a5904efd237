/**
 * @module
 * A test CA and a server certificate it signed, made with openssl in `dir`: `ca.pem`, `server.key` and
 * `server.pem` (for a TLS redis-server, or an HTTPS receiver).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const hasOpenssl = () => spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

/** `commonName` is the server's CN; `altNames` its subjectAltName (e.g. `IP:127.0.0.1,DNS:localhost`). */
export function makeTestCertificates(
  dir: string,
  { caName, commonName, altNames }: { caName: string; commonName: string; altNames: string },
): void {
  const run = (...args: string[]) => {
    const result = spawnSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    if (result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr.toString()}`);
  };
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${caName}`);
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${commonName}`);
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=${altNames}\n`);
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  );
}
