/**
 * `npm run check:container`: performs the Dockerfile's stages on this machine (no Docker engine runs here)
 * and checks the result as ECS would use it.
 *
 * 1. Build stage: copies exactly what its COPY lines name into a clean folder and runs its RUN lines
 *    (npm ci, build, prune to production dependencies).
 * 2. Runtime stage: copies what its `COPY --from=build` lines name, takes its ENV, and starts its own CMD,
 *    read from the Dockerfile.
 * 3. Checks: no dev dependency left (Scalar's bundle package included); /health answers; the HEALTHCHECK
 *    command passes; /docs and its vendored script (brotli, immutable) and favicon answer; a job runs end to
 *    end; SIGTERM with a job in flight exits 0 and the job completes (after a restart if it had to be left).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { freePort } from '../test/helpers/server-process.js';

const repo = resolve(import.meta.dirname, '..');
const dockerfile = readFileSync(join(repo, 'Dockerfile'), 'utf8');
let failures = 0;

function check(name: string, ok: boolean, detail = ''): void {
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `: ${detail}` : ''}`);
  if (!ok) failures += 1;
}

/** Instructions of each stage, continuation lines joined. */
function stages(text: string): Array<{ name: string; lines: string[] }> {
  const joined = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const result: Array<{ name: string; lines: string[] }> = [];
  for (const line of joined) {
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) result.push({ name: from[1] ?? `stage${result.length}`, lines: [] });
    else result.at(-1)?.lines.push(line);
  }
  return result;
}

const jsonArray = (text: string) => JSON.parse(text) as string[];

function envOf(lines: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of lines.filter((l) => /^ENV\s/i.test(l))) {
    for (const match of line.slice(4).matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[match[1]!] = match[2]!.replace(/^"|"$/g, '');
  }
  return env;
}

function run(command: string, cwd: string): void {
  console.log(`  $ ${command}`);
  const result = spawnSync('bash', ['-c', command], {
    cwd,
    stdio: 'inherit',
    env: { ...process.env, NODE_ENV: undefined } as NodeJS.ProcessEnv,
  });
  if (result.status !== 0) throw new Error(`'${command}' exited ${result.status}`);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const [build, runtime] = stages(dockerfile);
  if (!build || !runtime) throw new Error('the Dockerfile needs a build stage and a runtime stage');
  const root = mkdtempSync(join(tmpdir(), 'check-container-'));
  const buildDir = join(root, 'build');
  const appDir = join(root, 'app');
  const dataDir = join(root, 'data');
  mkdirSync(buildDir);
  mkdirSync(appDir);
  try {
    console.log(`build stage in ${buildDir}`);
    for (const line of build.lines) {
      if (/^COPY\s/i.test(line)) {
        const parts = line.split(/\s+/).slice(1);
        const dest = parts.pop()!;
        for (const source of parts)
          cpSync(join(repo, source), dest.endsWith('/') || parts.length > 1 ? join(buildDir, dest, source) : join(buildDir, dest), {
            recursive: true,
          });
      } else if (/^RUN\s/i.test(line)) run(line.slice(4), buildDir);
    }
    console.log(`runtime stage in ${appDir}`);
    for (const line of runtime.lines.filter((l) => /^COPY\s+--from=/i.test(l))) {
      const [, , source, dest] = line.split(/\s+/);
      const target = join(appDir, dest!.replace(/^\.\/?/, ''));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(join(buildDir, source!.replace(/^\/app\/?/, '')), target, { recursive: true });
    }
    const devOnly = [
      'vitest',
      'tsx',
      'eslint',
      'fast-check',
      'typescript',
      'typescript-eslint',
      'pino-pretty',
      '@scalar/api-reference',
      'playwright-core',
    ].filter((name) => existsSync(join(appDir, 'node_modules', name)));
    check('runtime stage has no dev-only dependency', devOnly.length === 0, devOnly.join(', '));
    check(
      'runtime stage has the compiled entry points',
      existsSync(join(appDir, 'dist/src/server.js')) && existsSync(join(appDir, 'dist/src/worker.js')),
    );
    check(
      'runtime stage has the vendored docs script',
      ['scalar.json', 'scalar.js', 'scalar.js.br', 'scalar.js.gz'].every((name) => existsSync(join(appDir, 'dist/vendor', name))),
    );
    console.log(
      `  (runtime node_modules: ${
        spawnSync('du', ['-sm', join(appDir, 'node_modules')])
          .stdout.toString()
          .split('\t')[0]
      } MB)`,
    );

    const env = envOf(runtime.lines);
    // The image's paths, moved into this check's own folder, on a port nobody holds (a fixed one taken by
    // another process would make the checks below pass against it); the preloaded jemalloc, where this machine has it.
    Object.assign(env, {
      UPLOAD_DIR: join(dataDir, 'uploads'),
      PROCESSED_DIR: join(dataDir, 'processed'),
      STATE_DIR: join(dataDir, 'state'),
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
    });
    if (env.LD_PRELOAD && !existsSync(env.LD_PRELOAD)) {
      const found = spawnSync('bash', ['-c', 'find /usr/lib -name libjemalloc.so.2 | head -n 1']).stdout.toString().trim();
      if (found) env.LD_PRELOAD = found;
      else delete env.LD_PRELOAD;
      console.log(`  (LD_PRELOAD here: ${env.LD_PRELOAD ?? 'none; apt-get install libjemalloc2 to check it too'})`);
    }
    const cmd = jsonArray(/^CMD\s+(\[.*\])$/im.exec(runtime.lines.join('\n'))![1]!);
    check('CMD runs node itself, not npm', cmd[0] === 'node', cmd.join(' '));
    const base = `http://127.0.0.1:${env.PORT}`;

    const start = () => {
      const child = spawn(cmd[0]!, cmd.slice(1), {
        cwd: appDir,
        env: { PATH: process.env.PATH, ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      child.stdout!.on('data', () => undefined);
      return child;
    };
    const exited = (child: ChildProcess) =>
      new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));

    let server = start();
    const health = await waitFor(
      '/health',
      async () => {
        const response = await fetch(`${base}/health`);
        return response.status === 200 ? ((await response.json()) as { status: string }) : undefined;
      },
      30_000,
    );
    check('/health answers healthy', health.status === 'healthy');
    const jemalloc = spawnSync('bash', ['-c', `grep -c jemalloc /proc/${server.pid}/maps || true`])
      .stdout.toString()
      .trim();
    if (env.LD_PRELOAD) check('jemalloc is loaded in the server process', Number(jemalloc) > 0);

    const healthcheck = /^HEALTHCHECK\s.*?CMD\s+(\[.*\])$/im.exec(runtime.lines.join('\n'));
    const probe = jsonArray(healthcheck![1]!);
    const probeRun = spawnSync(probe[0]!, probe.slice(1), { env: { PATH: process.env.PATH, PORT: env.PORT } });
    check("the Dockerfile's HEALTHCHECK passes (node -e fetch, no curl)", probeRun.status === 0);

    const docsPage = await fetch(`${base}/docs`);
    const scriptPath = /<script src="(\/docs\/scalar\.[0-9a-f]{16}\.js)"/.exec(await docsPage.text())?.[1];
    check(
      '/docs answers and names its script by hash',
      docsPage.status === 200 && scriptPath !== undefined,
      scriptPath ?? `status ${docsPage.status}`,
    );
    if (scriptPath) {
      const script = await fetch(`${base}${scriptPath}`, { headers: { 'accept-encoding': 'br' } });
      // fetch decodes br itself: the decoded script is the vendored one.
      const decoded = Buffer.from(await script.arrayBuffer());
      const vendored = readFileSync(join(appDir, 'dist/vendor/scalar.js'));
      check(
        'the docs script comes vendored, brotli, immutable',
        script.status === 200 &&
          script.headers.get('content-encoding') === 'br' &&
          /immutable/.test(script.headers.get('cache-control') ?? '') &&
          decoded.equals(vendored),
        `${script.status} ${script.headers.get('content-encoding')} ${script.headers.get('content-length')} bytes`,
      );
    }
    check('/favicon.ico answers', (await fetch(`${base}/favicon.ico`)).status === 200);

    const photo = await sharp({
      create: { width: 1600, height: 1200, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } },
    })
      .jpeg()
      .toBuffer();
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(photo)]), 'check.jpg');
    const uploaded = (await (await fetch(`${base}/upload`, { method: 'POST', body: form })).json()) as { file_id: string };
    const accepted = (await (
      await fetch(`${base}/process/${uploaded.file_id}?operation=resize&width=200&height=150`, { method: 'POST' })
    ).json()) as { processing_id: string };
    await waitFor(
      'the job',
      async () => {
        const job = (await (await fetch(`${base}/status/${accepted.processing_id}`)).json()) as { status: string };
        return job.status === 'completed' ? job : undefined;
      },
      30_000,
    );
    const bytes = Buffer.from(await (await fetch(`${base}/download/${accepted.processing_id}`)).arrayBuffer());
    const meta = await sharp(bytes).metadata();
    check('a job runs end to end', meta.width === 200 && meta.height === 150, `${meta.width}×${meta.height}`);

    const heavy = (await (
      await fetch(`${base}/process/${uploaded.file_id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          operations: [
            { operation: 'blur', intensity: 40 },
            { operation: 'sharpen', intensity: 3 },
          ],
          format: 'png',
        }),
      })
    ).json()) as { processing_id: string };
    await waitFor(
      'the heavy job to start',
      async () => {
        const job = (await (await fetch(`${base}/status/${heavy.processing_id}`)).json()) as { status: string };
        return job.status !== 'queued' ? job : undefined;
      },
      10_000,
    );
    server.kill('SIGTERM');
    const code = await Promise.race([exited(server), new Promise<string>((r) => setTimeout(() => r('timeout'), 40_000))]);
    check('SIGTERM with a job in flight exits 0', code === 0, String(code));

    server = start();
    const finished = await waitFor(
      'the in-flight job after the stop',
      async () => {
        const job = (await (await fetch(`${base}/status/${heavy.processing_id}`)).json()) as { status: string };
        return job.status === 'completed' || job.status === 'failed' ? job : undefined;
      },
      60_000,
    );
    check('the job in flight at SIGTERM completes', finished.status === 'completed', finished.status);
    // Staged files live in each process's `.staging/<instance>/` folder until committed or renamed into place.
    const partials = spawnSync('bash', ['-c', `find ${dataDir} -type f \\( -path '*/.staging/*' -o -name '.partial-*' \\) | wc -l`])
      .stdout.toString()
      .trim();
    check('no partial or staged file is left', partials === '0', `${partials} found`);
    server.kill('SIGTERM');
    check('a second SIGTERM stop exits 0', (await exited(server)) === 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main()
  .catch((error: unknown) => {
    failures += 1;
    console.log(`FAIL  ${error instanceof Error ? error.message : String(error)}`);
  })
  .finally(() => {
    console.log(failures === 0 ? 'container check passed' : `container check: ${failures} check(s) failed`);
    process.exitCode = failures === 0 ? 0 : 1;
  });
