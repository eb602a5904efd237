/**
 * `npm run smoke`: the seed's "test the API" step. Runs upload → process → status → download against a
 * running server (BASE_URL, default http://localhost:8000) and says what passed and what did not.
 */
import sharp from 'sharp';

const baseUrl = (process.env.BASE_URL ?? 'http://localhost:8000').replace(/\/$/, '');
let failures = 0;

async function step<T>(name: string, run: () => Promise<T>): Promise<T | undefined> {
  try {
    const value = await run();
    console.log(`PASS  ${name}`);
    return value;
  } catch (error) {
    failures += 1;
    console.log(`FAIL  ${name}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

async function json(response: Response, status = 200): Promise<Record<string, unknown>> {
  const body = (await response.json()) as Record<string, unknown>;
  if (response.status !== status) throw new Error(`HTTP ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

async function main(): Promise<void> {
  console.log(`smoke test against ${baseUrl}`);
  await step('GET / answers ok', async () => json(await fetch(`${baseUrl}/`)));
  await step('GET /health is healthy', async () => {
    const body = await json(await fetch(`${baseUrl}/health`));
    if (body.status !== 'healthy') throw new Error(`status is ${String(body.status)}`);
  });
  const image = await sharp({
    create: { width: 640, height: 480, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 30 } },
  })
    .jpeg()
    .toBuffer();
  const upload = await step('POST /upload stores a JPEG', async () => {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(image)]), 'smoke.jpg');
    return json(await fetch(`${baseUrl}/upload`, { method: 'POST', body: form }));
  });
  if (!upload) return;
  const accepted = await step('POST /process resizes to 200×150', async () =>
    json(await fetch(`${baseUrl}/process/${String(upload.file_id)}?operation=resize&width=200&height=150`, { method: 'POST' })),
  );
  if (!accepted) return;
  const done = await step('GET /status reaches completed', async () => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const job = await json(await fetch(`${baseUrl}/status/${String(accepted.processing_id)}`));
      if (job.status === 'completed') return job;
      if (job.status === 'failed') throw new Error(`job failed: ${JSON.stringify(job.error)}`);
      if (Date.now() > deadline) throw new Error(`still ${String(job.status)} after 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
  if (!done) return;
  await step('GET /download gives a 200×150 image', async () => {
    const response = await fetch(`${baseUrl}/download/${String(accepted.processing_id)}`);
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
    if (meta.width !== 200 || meta.height !== 150) throw new Error(`got ${meta.width}×${meta.height}`);
  });
  await step('GET /list shows the upload', async () => {
    const body = await json(await fetch(`${baseUrl}/list?limit=100`));
    if (!(body.items as Array<{ file_id: string }>).some((item) => item.file_id === upload.file_id)) throw new Error('upload not listed');
  });
}

main()
  .catch((error: unknown) => {
    failures += 1;
    console.log(`FAIL  could not run: ${error instanceof Error ? error.message : String(error)}`);
  })
  .finally(() => {
    console.log(failures === 0 ? 'smoke test passed' : `smoke test: ${failures} step(s) failed`);
    process.exitCode = failures === 0 ? 0 : 1;
  });
