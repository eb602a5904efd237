/**
 * The limit for `npm run bench`: sharp alone doing the service's operation (resize to fit 800×800, JPEG
 * quality 85) on the same bytes, `concurrency` at a time, in one process. Reads a JSON job description on
 * argv and prints one JSON result line.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';

interface Input {
  files: string[];
  jobs: number;
  concurrency: number;
}

const input = JSON.parse(process.argv[2]!) as Input;
const images = input.files.map((file) => readFileSync(file));

async function one(bytes: Buffer): Promise<number> {
  const out = await sharp(bytes, { autoOrient: true, sequentialRead: true, failOn: 'error' })
    .resize({ width: 800, height: 800, fit: 'inside', kernel: 'lanczos3' })
    .jpeg({ quality: 85 })
    .toBuffer();
  return out.length;
}

await one(images[0]!); // warm-up, as the service has loaded libvips before the run too
let next = 0;
const cpu = process.cpuUsage();
const started = performance.now();
await Promise.all(
  Array.from({ length: input.concurrency }, async () => {
    while (next < input.jobs) {
      const index = next++;
      await one(images[index % images.length]!);
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
console.log(JSON.stringify({ jobs: input.jobs, seconds, jobsPerSecond: input.jobs / seconds, sharpConcurrency: sharp.concurrency(), cpuMsPerJob: (used.user + used.system) / 1000 / input.jobs }));
