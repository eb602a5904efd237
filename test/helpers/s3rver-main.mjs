// A real S3-protocol server for the tests, in its own process: s3rver on 127.0.0.1, port 0 (the kernel picks
// a free one, so no port is ever fixed or raced for), one bucket. Prints `{"port":N}` once it listens.
// Run with --openssl-legacy-provider: s3rver encrypts listing continuation tokens with DES.
import { createRequire } from 'node:module';
import process from 'node:process';
import S3rver from 's3rver';

// s3rver removes a folder that a DELETE left empty, racing a concurrent PUT into the same folder (the PUT's
// file then cannot be created and the server crashes). Real S3 has no folders: the empty ones stay here.
const FilesystemStore = createRequire(import.meta.url)('s3rver/lib/stores/filesystem.js');
FilesystemStore.prototype.deleteObject = async function deleteObjectKeepingFolders(bucket, key) {
  const { unlink } = await import('node:fs/promises');
  await Promise.all(
    ['object', 'object.md5', 'metadata.json'].map((kind) =>
      unlink(this.getResourcePath(bucket, key, kind)).catch((error) => {
        if (error.code !== 'ENOENT') throw error;
      }),
    ),
  );
};

// An address other than loopback is for the fleet test, whose S3 host is a network namespace of its own.
const [directory, bucket, address = '127.0.0.1'] = process.argv.slice(2);
const server = new S3rver({ address, port: 0, directory, silent: true, configureBuckets: [{ name: bucket }] });
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
