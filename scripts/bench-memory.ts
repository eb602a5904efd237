/**
 * `npm run bench:memory [-- --quick]`: the memory one job really takes at its peak, against the estimate the
 * service admits it by, for the worst cases each format allows under the default limits (MAX_INPUT_PIXELS
 * 50 MP, MAX_FILE_SIZE 10 MB, MEMORY_BUDGET_MB 1024): noise, which no codec compresses, at ~49 MP where the
 * budget admits it. Each case runs in a process of its own (its peak resident memory, VmHWM, over its
 * resident memory before the job), through the service's own SharpProcessor over a disk store, with the
 * allocator the container preloads. Then 16 worst-case jobs at once in one process, to show the budget
 * holding them to it. Exits non-zero if a peak is over its estimate, or the 16 over the budget.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { DiskStore } from '../src/adapters/disk-store.js';
import { SharpProcessor } from '../src/adapters/sharp-processor.js';
import type { InputFormat, OutputFormat } from '../src/domain/formats.js';
import type { Operation } from '../src/domain/operations.js';
import { paletteBmp, rle8Bmp } from '../test/helpers/images.js';

const MIB = 2 ** 20;
const BUDGET_BYTES = 1024 * MIB;
const quick = process.argv.includes('--quick');
const side = quick ? 3000 : 7000;

interface Case {
  name: string;
  make: () => Promise<Buffer>;
  format: InputFormat;
  operations: Operation[];
  output: OutputFormat;
}

const noise = (width: number, height: number, channels: 3 | 4 = 3) =>
  sharp({ create: { width, height, channels, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } });
const blur = (intensity: number): Operation => ({ operation: 'blur', intensity });

const s = side;
const cases: Case[] = [
  {
    name: `JPEG ${s}×${s} → blur → JPEG`,
    make: () => noise(s, s).jpeg({ quality: 90 }).toBuffer(),
    format: 'jpeg',
    operations: [blur(5)],
    output: 'jpeg',
  },
  {
    name: `progressive JPEG ${s}×${s} → sharpen, grayscale → JPEG`,
    make: () => noise(s, s).jpeg({ quality: 90, progressive: true }).toBuffer(),
    format: 'jpeg',
    operations: [{ operation: 'sharpen', intensity: 2 }, { operation: 'grayscale' }],
    output: 'jpeg',
  },
  {
    name: `interlaced PNG ${s}×${s} (RGBA) → blur → PNG`,
    make: () => noise(s, s, 4).png({ progressive: true, compressionLevel: 1 }).toBuffer(),
    format: 'png',
    operations: [blur(3)],
    output: 'png',
  },
  {
    name: `PNG 200×200 → resize ${s}×${s} → 9 blurs → JPEG`,
    make: () => noise(200, 200).png().toBuffer(),
    format: 'png',
    operations: [
      { operation: 'resize', width: s, height: s, fit: 'fill', without_enlargement: false },
      ...Array.from({ length: 9 }, () => blur(10)),
    ],
    output: 'jpeg',
  },
  {
    name: `JPEG ${s}×${s} → 4 steps out of sharp's order → PNG`,
    make: () => noise(s, s).jpeg({ quality: 90 }).toBuffer(),
    format: 'jpeg',
    operations: [{ operation: 'contrast', intensity: 1.5 }, { operation: 'sepia', intensity: 1 }, blur(2), { operation: 'grayscale' }],
    output: 'png',
  },
  {
    name: `TIFF ${s}×${s} → grayscale → TIFF`,
    make: () => noise(s, s).tiff({ compression: 'lzw' }).toBuffer(),
    format: 'tiff',
    operations: [{ operation: 'grayscale' }],
    output: 'tiff',
  },
  {
    name: `1-bit BMP ${s}×${s} → grayscale → PNG`,
    make: async () => paletteBmp(s, s, 1),
    format: 'bmp',
    operations: [{ operation: 'grayscale' }],
    output: 'png',
  },
  {
    name: `RLE8 BMP of 1 KB, ${s}×${s} → blur → PNG`,
    make: async () => rle8Bmp(s, s),
    format: 'bmp',
    operations: [blur(2)],
    output: 'png',
  },
  {
    name: `WebP 4000×4000 → blur → WebP`,
    make: () => noise(4000, 4000).webp({ effort: 0 }).toBuffer(),
    format: 'webp',
    operations: [blur(2)],
    output: 'webp',
  },
  {
    name: 'GIF 1500×1500 → blur → GIF',
    make: () => noise(1500, 1500).gif().toBuffer(),
    format: 'gif',
    operations: [blur(2)],
    output: 'gif',
  },
  {
    name: 'AVIF 1200×1200 → sharpen → AVIF',
    make: () => noise(1200, 1200).avif({ effort: 0 }).toBuffer(),
    format: 'avif',
    operations: [{ operation: 'sharpen', intensity: 1 }],
    output: 'avif',
  },
];
/** The case the 16 at once are made of: the pipeline, a whole raw image at every step. */
const CONCURRENT_CASE = 3;
const CONCURRENT_JOBS = 16;

const status = () => readFileSync('/proc/self/status', 'utf8');
const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status())![1]) * 1024;

/** Runs `count` jobs of case `index` in this process; prints one JSON line. */
async function child(index: number, count: number, inputPath: string, budgetBytes: number): Promise<void> {
  const spec = cases[index]!;
  const bytes = readFileSync(inputPath);
  const dir = mkdtempSync(join(tmpdir(), 'bench-memory-'));
  try {
    const store = await DiskStore.open({ uploadDir: join(dir, 'uploads'), processedDir: join(dir, 'processed'), instanceId: 'bench' });
    const processor = new SharpProcessor(store, { maxInputPixels: 50_000_000, memoryBudgetBytes: budgetBytes });
    const staged = await store.stage(Readable.from([bytes]), { maxBytes: bytes.length, headBytes: 4096 });
    const facts = { format: spec.format, ...(await processor.probe(staged, spec.format)), size_bytes: bytes.length };
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const again = i === 0 ? staged : await store.stage(Readable.from([bytes]), { maxBytes: bytes.length, headBytes: 4096 });
      const id = `file-${i}`;
      await store.commitUpload(again.stagingKey, id);
      ids.push(id);
    }
    const estimate = processor.estimateMemory(facts, spec.operations, { format: spec.output });
    // The peak is measured from here: the resident memory of a process that has read its input's name only.
    writeFileSync('/proc/self/clear_refs', '5');
    const before = kib('VmRSS');
    const started = performance.now();
    const outcomes = await Promise.allSettled(
      ids.map((fileId) =>
        processor.process(
          {
            fileId,
            input: facts,
            operations: spec.operations,
            output: { format: spec.output, quality: 80 },
            keepMetadata: false,
            timeoutSeconds: 600,
          },
          async (image) => image.width,
        ),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const failed = outcomes
      .filter((outcome) => outcome.status === 'rejected')
      .map((outcome) => String((outcome as PromiseRejectedResult).reason).slice(0, 120));
    console.log(JSON.stringify({ estimate, peak: kib('VmHWM') - before, seconds, failed }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const [, , mode, indexText, countText, inputPath, budgetText] = process.argv;
  if (mode === '--child') return child(Number(indexText), Number(countText), inputPath!, Number(budgetText));
  const jemalloc = spawnSync('bash', ['-c', 'find /usr/lib /usr/local/lib -name libjemalloc.so.2 2>/dev/null | head -n 1'])
    .stdout.toString()
    .trim();
  const inputs = join(tmpdir(), `bench-memory-inputs-${side}`);
  mkdirSync(inputs, { recursive: true });
  const run = (index: number, count: number, budgetBytes = BUDGET_BYTES) => {
    const path = join(inputs, `${index}`);
    const result = spawnSync(
      process.execPath,
      [
        ...process.execArgv,
        import.meta.filename,
        '--child',
        String(index),
        String(count),
        path,
        String(budgetBytes),
        ...(quick ? ['--quick'] : []),
      ],
      {
        env: { ...process.env, ...(jemalloc ? { LD_PRELOAD: jemalloc } : {}) },
        encoding: 'utf8',
        maxBuffer: 1024 * 1024,
      },
    );
    const line = result.stdout.trim().split('\n').at(-1) ?? '';
    if (result.status !== 0 || !line.startsWith('{')) throw new Error(`case ${cases[index]!.name} failed: ${result.stderr.slice(-2000)}`);
    return JSON.parse(line) as { estimate: number; peak: number; seconds: number; failed: string[] };
  };
  console.log(
    `bench:memory: ${quick ? 'quick' : 'full'} run, jemalloc ${jemalloc ? 'preloaded' : 'not found'}, sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}, budget ${BUDGET_BYTES / MIB} MiB`,
  );
  console.log('| job | estimate (MiB) | measured peak (MiB) | peak / estimate | time (s) |');
  console.log('|---|---|---|---|---|');
  let over = 0;
  for (const [index, spec] of cases.entries()) {
    const path = join(inputs, `${index}`);
    if (!existsSync(path)) writeFileSync(path, await spec.make());
    const { estimate, peak, seconds, failed } = run(index, 1);
    if (failed.length) throw new Error(`${spec.name}: ${failed.join('; ')}`);
    if (peak > estimate) over += 1;
    console.log(
      `| ${spec.name} | ${Math.round(estimate / MIB)} | ${Math.round(peak / MIB)} | ${(peak / estimate).toFixed(2)}${peak > estimate ? ' **over**' : ''} | ${seconds.toFixed(1)} |`,
    );
  }
  const many = run(CONCURRENT_CASE, CONCURRENT_JOBS);
  const fitsBudget = many.peak <= BUDGET_BYTES + 64 * MIB;
  console.log(
    `\n${CONCURRENT_JOBS} × "${cases[CONCURRENT_CASE]!.name}" at once (estimate ${Math.round(many.estimate / MIB)} MiB each, ${Math.round((CONCURRENT_JOBS * many.estimate) / MIB)} MiB together): ` +
      `peak ${Math.round(many.peak / MIB)} MiB over the process's own, budget ${BUDGET_BYTES / MIB} MiB${fitsBudget ? '' : ' **over**'}, ${many.seconds.toFixed(1)} s, ${many.failed.length} failed`,
  );
  // The same jobs with no budget to hold them (what a process did before it had one): for comparison only.
  const unbounded = run(CONCURRENT_CASE, CONCURRENT_JOBS, 2 ** 50);
  console.log(
    `the same ${CONCURRENT_JOBS} with no budget (all at once): peak ${Math.round(unbounded.peak / MIB)} MiB, ${unbounded.seconds.toFixed(1)} s, ${unbounded.failed.length} failed`,
  );
  if (over || !fitsBudget || many.failed.length) process.exitCode = 1;
}

await main();
