/**
 * `npm run openapi -- [path]`: the OpenAPI document the app serves at `GET /openapi.json`, built in-process
 * (the embedded default over a temporary folder: no server, no port) and written to `path`, or printed.
 * `npm run lint:openapi` (`--lint`): writes it to a temporary file and lints it with Redocly and Spectral
 * (redocly.yaml, .spectral.yaml); fails on any error of either.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/app.js';
import { composeService } from '../src/compose.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';

/** The document, as the app serves it. */
async function openapiText(dir: string): Promise<string> {
  const config = loadConfig({
    UPLOAD_DIR: join(dir, 'uploads'),
    PROCESSED_DIR: join(dir, 'processed'),
    STATE_DIR: join(dir, 'state'),
    WORKER_CONCURRENCY: '1',
  });
  const metrics = createMetrics();
  const service = await composeService(config, { logger: silentLogger, metrics });
  try {
    const response = await createApp(service.deps, { logger: silentLogger, metrics }).request('/openapi.json');
    if (response.status !== 200) throw new Error(`GET /openapi.json answered ${response.status}`);
    return `${JSON.stringify(await response.json(), null, 2)}\n`;
  } finally {
    await service.close();
  }
}

/** Runs a linter from node_modules/.bin; true when it found no error. */
function lint(tool: string, args: string[]): boolean {
  console.log(`\n$ ${tool} ${args.join(' ')}`);
  const run = spawnSync(join('node_modules', '.bin', tool), args, { stdio: 'inherit' });
  return run.status === 0;
}

async function main(): Promise<void> {
  const lintIt = process.argv.includes('--lint');
  const out = process.argv.slice(2).find((arg) => !arg.startsWith('--'));
  const dir = await mkdtemp(join(tmpdir(), 'image-service-openapi-'));
  try {
    const text = await openapiText(dir);
    if (!lintIt) {
      if (out) await writeFile(out, text);
      else process.stdout.write(text);
      return;
    }
    const file = out ?? join(dir, 'openapi.json');
    await writeFile(file, text);
    const redocly = lint('redocly', ['lint', '--format=summary', file]);
    const spectral = lint('spectral', ['lint', '--fail-severity=error', file]);
    if (!redocly || !spectral) {
      console.error(`\nlint:openapi: errors from ${[redocly ? '' : 'Redocly', spectral ? '' : 'Spectral'].filter(Boolean).join(' and ')}`);
      process.exitCode = 1;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
