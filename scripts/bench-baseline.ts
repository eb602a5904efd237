/**
 * The limit for `npm run bench`: sharp alone doing the service's operation (resize to fit 800×800, JPEG
 * quality 85) on the same bytes, `concurrency` at a time, in one process. Reads a JSON job description on
 * argv and prints one JSON result line.
 *
 * With `store: true` it also does what any service that keeps uploads must do, and nothing else: each job
 * first writes the input to a new file (synced) while hashing it with SHA-256, has sharp read that file, and
 * writes the result to a new file (synced), with the service's own atomic write (partial name, fsync, rename). No HTTP, no multipart, no queue, no records: the floor for a
 * service that stores what it receives.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeFileAtomically } from '../src/adapters/atomic-file.js';

interface Input {
  files: string[];
  jobs: number;
  concurrency: number;
  store?: boolean;
}

const input = JSON.parse(process.argv[2]!) as Input;
const images = input.files.map((file) => readFileSync(file));
const dir = mkdtempSync(join(tmpdir(), 'bench-store-'));

const operation = (source: Buffer | string) =>
  sharp(source, { autoOrient: true, sequentialRead: true, failOn: 'error' })
    .resize({ width: 800, height: 800, fit: 'inside', kernel: 'lanczos3' })
    .jpeg({ quality: 85 })
    .toBuffer();

async function one(bytes: Buffer, n: number): Promise<number> {
  if (!input.store) return (await operation(bytes)).length;
  createHash('sha256').update(bytes).digest('hex');
  await writeFileAtomically(dir, `in-${n}`, bytes);
  const out = await operation(join(dir, `in-${n}`));
  await writeFileAtomically(dir, `out-${n}`, out);
  return out.length;
}

await one(images[0]!, -1); // warm-up, as the service has loaded libvips before the run too
let next = 0;
const cpu = process.cpuUsage();
const started = performance.now();
await Promise.all(
  Array.from({ length: input.concurrency }, async () => {
    while (next < input.jobs) {
      const index = next++;
      await one(images[index % images.length]!, index);
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
rmSync(dir, { recursive: true, force: true });
console.log(
  JSON.stringify({
    jobs: input.jobs,
    seconds,
    jobsPerSecond: input.jobs / seconds,
    sharpConcurrency: sharp.concurrency(),
    cpuMsPerJob: (used.user + used.system) / 1000 / input.jobs,
  }),
);
