/**
 * `npm run openapi [-- path]`: the OpenAPI document the app serves at `GET /openapi.json`, built in-process
 * (the embedded default over a temporary folder, no server, no port) and written to `path`, or printed.
 * `npm run lint:openapi` writes it this way and lints it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/app.js';
import { composeService } from '../src/compose.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';

async function main(): Promise<void> {
  const out = process.argv[2];
  const dir = await mkdtemp(join(tmpdir(), 'image-service-openapi-'));
  try {
    const config = loadConfig({ UPLOAD_DIR: join(dir, 'uploads'), PROCESSED_DIR: join(dir, 'processed'), STATE_DIR: join(dir, 'state'), WORKER_CONCURRENCY: '1' });
    const metrics = createMetrics();
    const service = await composeService(config, { logger: silentLogger, metrics });
    try {
      const response = await createApp(service.deps, { logger: silentLogger, metrics }).request('/openapi.json');
      if (response.status !== 200) throw new Error(`GET /openapi.json answered ${response.status}`);
      const text = `${JSON.stringify(await response.json(), null, 2)}\n`;
      if (out) await writeFile(out, text);
      else process.stdout.write(text);
    } finally {
      await service.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
