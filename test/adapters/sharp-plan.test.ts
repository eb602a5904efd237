/**
 * A job's plan: which of its operations share a sharp pipeline (and that sharing changes no pixel beyond
 * rounding), and the memory bound it is admitted by.
 */
import fc from 'fast-check';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { memoryEstimate, pipelinesOf } from '../../src/adapters/sharp-plan.js';
import type { OutputFormat } from '../../src/domain/formats.js';
import type { Operation } from '../../src/domain/operations.js';
import { processorHarness, type ProcessorHarness } from '../helpers/processor.js';

const names = (groups: Operation[][]) => groups.map((group) => group.map((op) => op.operation).join('+'));
const resize = (width: number, height?: number): Operation => ({
  operation: 'resize',
  width,
  height,
  without_enlargement: false,
  ...(height ? { fit: 'cover' as const } : {}),
});
const blur: Operation = { operation: 'blur', intensity: 1.5 };
const grayscale: Operation = { operation: 'grayscale' };
const sepia: Operation = { operation: 'sepia', intensity: 0.8 };
const contrast: Operation = { operation: 'contrast', intensity: 1.3 };
const sharpen: Operation = { operation: 'sharpen', intensity: 1 };
const brightness: Operation = { operation: 'brightness', intensity: 1.2 };

describe('pipelinesOf', () => {
  it("shares a pipeline between operations asked in sharp's own order", () => {
    expect(names(pipelinesOf([resize(100), blur, sharpen, contrast], 'png', false))).toEqual(['resize+blur+sharpen+contrast']);
    expect(names(pipelinesOf([grayscale, resize(100), blur], 'webp', false))).toEqual(['grayscale+resize+blur']);
  });

  it('starts a new pipeline where the order goes back, or an operation repeats', () => {
    expect(names(pipelinesOf([blur, resize(100)], 'png', false))).toEqual(['blur', 'resize']);
    expect(names(pipelinesOf([blur, blur, blur], 'png', false))).toEqual(['blur', 'blur', 'blur']);
    expect(names(pipelinesOf([contrast, sepia, blur, grayscale], 'png', false))).toEqual(['contrast', 'sepia', 'blur', 'grayscale']);
  });

  it('keeps colour added after grayscale out of its pipeline (sharp would write one band)', () => {
    expect(names(pipelinesOf([grayscale, sepia], 'png', false))).toEqual(['grayscale', 'sepia']);
    expect(names(pipelinesOf([grayscale, brightness], 'png', false))).toEqual(['grayscale', 'brightness']);
    expect(names(pipelinesOf([grayscale, blur, contrast], 'png', false))).toEqual(['grayscale+blur+contrast']);
  });

  it('keeps brightness apart from operations that premultiply alpha, where there may be alpha', () => {
    expect(names(pipelinesOf([resize(100), brightness], 'png', true))).toEqual(['resize', 'brightness']);
    expect(names(pipelinesOf([brightness, sharpen], 'png', true))).toEqual(['brightness', 'sharpen']);
    expect(names(pipelinesOf([sepia, brightness, contrast], 'png', true))).toEqual(['sepia+brightness', 'contrast']);
    expect(names(pipelinesOf([resize(100), brightness, sharpen], 'png', false))).toEqual(['resize+brightness+sharpen']);
  });

  it('keeps contrast out of a pipeline after sepia (unclipped), and out of the first unless the input is 8-bit', () => {
    expect(names(pipelinesOf([resize(100), sepia, contrast], 'png', false))).toEqual(['resize+sepia', 'contrast']);
    expect(names(pipelinesOf([resize(100), contrast], 'png', false, true))).toEqual(['resize', 'contrast']);
    expect(names(pipelinesOf([blur, grayscale, contrast], 'png', false, true))).toEqual(['blur', 'grayscale+contrast']);
  });

  it('runs the last operation alone with a JPEG encoder, which flattens alpha first', () => {
    expect(names(pipelinesOf([resize(100), sharpen], 'jpeg', false))).toEqual(['resize', 'sharpen']);
    expect(names(pipelinesOf([resize(100), blur, sharpen], 'jpeg', false))).toEqual(['resize+blur', 'sharpen']);
  });
});

describe('shared pipelines give the pixels of one pipeline per operation', () => {
  let harness: ProcessorHarness;
  beforeAll(() => {
    harness = processorHarness();
  });

  const run = async (input: Buffer, operations: Operation[], format: OutputFormat) =>
    Buffer.from((await harness.run(input, operations, format)).data);

  /** The reference: each operation a job of its own, passed on as lossless PNG (8 bits, as raw steps were). */
  async function oneByOne(input: Buffer, operations: Operation[]): Promise<Buffer> {
    let bytes = input;
    for (const op of operations) bytes = await run(bytes, [op], 'png');
    return bytes;
  }

  /**
   * The pixels as they look: colour weighted by alpha, and alpha. The colour of a nearly transparent pixel is
   * ill-conditioned (one level of rounding in a premultiplied step moves it by 255/alpha) and invisible.
   */
  async function rgba(bytes: Buffer) {
    const { data, info } = await sharp(bytes).ensureAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c += 1) data[i + c] = Math.round((data[i + c]! * data[i + 3]!) / 255);
    return { data, info };
  }

  const operation = fc.oneof(
    fc.constant(grayscale),
    fc.record({ w: fc.integer({ min: 20, max: 90 }), h: fc.integer({ min: 20, max: 90 }) }).map(({ w, h }) => resize(w, h)),
    fc.double({ min: 0.3, max: 3, noNaN: true }).map((intensity): Operation => ({ operation: 'blur', intensity })),
    fc.double({ min: 0, max: 1, noNaN: true }).map((intensity): Operation => ({ operation: 'sepia', intensity })),
    fc.double({ min: 0.5, max: 1.5, noNaN: true }).map((intensity): Operation => ({ operation: 'brightness', intensity })),
    fc.double({ min: 0.3, max: 2, noNaN: true }).map((intensity): Operation => ({ operation: 'sharpen', intensity })),
    fc.double({ min: 0.5, max: 1.5, noNaN: true }).map((intensity): Operation => ({ operation: 'contrast', intensity })),
  );

  it('for any pipeline that shares, to within rounding: with alpha and without, mid-grey and bright, 8 and 16 bits', async () => {
    const noise = (channels: 3 | 4, mean: number) =>
      sharp({
        create: {
          width: 64,
          height: 48,
          channels,
          background: { r: 90, g: 140, b: 200, alpha: 0.8 },
          noise: { type: 'gaussian', mean, sigma: 30 },
        },
      });
    const inputs = await Promise.all([
      noise(3, 128).png().toBuffer(),
      noise(4, 128).png().toBuffer(),
      noise(3, 210).png().toBuffer(),
      noise(4, 210).png().toBuffer(),
      noise(3, 128).toColourspace('rgb16').png().toBuffer(),
    ]);
    const alphaOf = [false, true, false, true, false];
    await fc.assert(
      fc.asyncProperty(
        fc.array(operation, { minLength: 2, maxLength: 4 }),
        fc.integer({ min: 0, max: inputs.length - 1 }),
        async (operations, which) => {
          fc.pre(pipelinesOf(operations, 'png', alphaOf[which]!).length < operations.length);
          const input = inputs[which]!;
          const shared = await rgba(await run(input, operations, 'png'));
          const apart = await rgba(await oneByOne(input, operations));
          expect([shared.info.width, shared.info.height]).toEqual([apart.info.width, apart.info.height]);
          let total = 0;
          let most = 0;
          for (let i = 0; i < shared.data.length; i += 1) {
            const difference = Math.abs(shared.data[i]! - apart.data[i]!);
            total += difference;
            most = Math.max(most, difference);
          }
          // Shared pipelines keep full precision between operations; one pipeline each rounds to 8 bits and clips
          // (a Lanczos overshoot past 255, say), which a following sharpen amplifies on a few edge pixels.
          // Never a different image: on average under 2 levels of 255, nowhere more than 32.
          expect(total / shared.data.length).toBeLessThan(2);
          expect(most).toBeLessThanOrEqual(32);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('memoryEstimate', () => {
  const photo = { format: 'jpeg' as const, width: 4000, height: 3000, pages: 1, channels: 3, size_bytes: 5_000_000 };

  it('grows with the pixels read and written, and with the encoder', () => {
    const small = memoryEstimate(photo, [resize(800)], { format: 'jpeg' });
    const large = memoryEstimate({ ...photo, width: 8000, height: 6000 }, [resize(800)], { format: 'jpeg' });
    expect(large).toBeGreaterThan(small * 2);
    const webp = memoryEstimate(photo, [blur], { format: 'webp' });
    const avif = memoryEstimate(photo, [blur], { format: 'avif' });
    expect(avif).toBeGreaterThan(webp);
  });

  it('counts a whole raw image between pipelines: nine blurs of 7000×7000 need more than one', () => {
    const tiny = { format: 'png' as const, width: 200, height: 200, pages: 1, channels: 3, size_bytes: 100_000 };
    const raw = 7000 * 7000 * 3;
    const one = memoryEstimate(tiny, [resize(7000, 7000), blur], { format: 'png' });
    const two = memoryEstimate(tiny, [resize(7000, 7000), blur, blur], { format: 'png' });
    const nine = memoryEstimate(tiny, [resize(7000, 7000), ...Array.from({ length: 9 }, () => blur)], { format: 'png' });
    expect(two).toBeGreaterThan(one - raw * 0.5);
    expect(nine).toBeGreaterThan(2 * raw);
    // Bounded by the two raw images either side of a step (plus the encoder), not by the number of steps.
    expect(nine).toBe(two);
  });

  it('counts frames where the output keeps the animation, and alpha where the record does not say', () => {
    const gif = { format: 'gif' as const, width: 500, height: 500, pages: 100, channels: 3, size_bytes: 1_000_000 };
    expect(memoryEstimate(gif, [blur], { format: 'gif' })).toBeGreaterThan(memoryEstimate(gif, [blur], { format: 'png' }) * 5);
    const { channels: _channels, ...unknown } = photo;
    expect(memoryEstimate(unknown, [blur], { format: 'webp' })).toBeGreaterThan(memoryEstimate(photo, [blur], { format: 'webp' }));
  });

  it('reads a BMP whole: the file and its RGBA pixels', () => {
    const bmp = { format: 'bmp' as const, width: 7000, height: 7000, pages: 1, channels: 3, size_bytes: 6_000_000 };
    expect(memoryEstimate(bmp, [grayscale], { format: 'png' })).toBeGreaterThan(7000 * 7000 * 4 + 6_000_000);
  });
});
