/**
 * The operations, one at a time, checked by their pixels (never by exact bytes).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ProcessingError } from '../../src/adapters/sharp-processor.js';
import type { InputFormat, OutputFormat } from '../../src/domain/formats.js';
import type { Operation } from '../../src/domain/operations.js';
import { look, noisyJpeg, pixel, solid } from '../helpers/images.js';
import { processorHarness, type ProcessorHarness } from '../helpers/processor.js';

let harness: ProcessorHarness;

beforeAll(() => {
  harness = processorHarness();
});

async function run(input: Buffer, operations: Operation[], format: OutputFormat = 'png', inputFormat: InputFormat = 'png') {
  const out = await harness.run(input, operations, format, inputFormat);
  return { ...out, look: await look(out.data) };
}

describe('SharpProcessor operations', () => {
  it('resize honours each fit mode', async () => {
    const input = await solid(400, 200, { r: 10, g: 20, b: 30 });
    const size = async (op: Partial<Extract<Operation, { operation: 'resize' }>>) => {
      const out = await run(input, [{ operation: 'resize', without_enlargement: false, ...op }]);
      return [out.width, out.height];
    };
    expect(await size({ width: 100, height: 100, fit: 'cover' })).toEqual([100, 100]);
    expect(await size({ width: 100, height: 100, fit: 'fill' })).toEqual([100, 100]);
    expect(await size({ width: 100, height: 100, fit: 'inside' })).toEqual([100, 50]);
    expect(await size({ width: 100, height: 100, fit: 'outside' })).toEqual([200, 100]);
    expect(await size({ width: 100, height: 100, fit: 'contain' })).toEqual([100, 100]);
    expect(await size({ height: 50 })).toEqual([100, 50]);
    expect(await size({ width: 800, without_enlargement: true })).toEqual([400, 200]);
    expect(await size({ width: 800 })).toEqual([800, 400]);
  });

  it('grayscale leaves luminance only', async () => {
    const out = await run(await solid(8, 8, { r: 200, g: 40, b: 40 }), [{ operation: 'grayscale' }], 'png');
    const [r, g, b] = await pixel(out.data, 4, 4);
    expect(r).toBe(g);
    expect(g).toBe(b);
  });

  it('sepia tones towards brown by its intensity', async () => {
    const input = await solid(8, 8, { r: 100, g: 100, b: 200 });
    const full = await pixel((await run(input, [{ operation: 'sepia', intensity: 1 }])).data, 1, 1);
    expect(full[0]).toBeGreaterThan(full[1]!);
    expect(full[1]).toBeGreaterThan(full[2]!);
    const none = await pixel((await run(input, [{ operation: 'sepia', intensity: 0 }])).data, 1, 1);
    expect(none).toEqual([100, 100, 200]);
  });

  it('blur lowers detail and sharpen raises it', async () => {
    const input = await noisyJpeg(200, 150);
    const base = (await look(input)).stdevs[0]!;
    const blurred = await run(input, [{ operation: 'blur', intensity: 3 }], 'png', 'jpeg');
    expect(blurred.look.stdevs[0]).toBeLessThan(base * 0.5);
    const soft = blurred.data;
    const sharpened = await run(Buffer.from(soft), [{ operation: 'sharpen', intensity: 2 }], 'png');
    expect(sharpened.look.stdevs[0]).toBeGreaterThan(blurred.look.stdevs[0]!);
  });

  it('brightness multiplies lightness; 1 leaves it unchanged', async () => {
    const input = await solid(8, 8, { r: 60, g: 60, b: 60 });
    const brighter = (await run(input, [{ operation: 'brightness', intensity: 2 }])).look.means[0]!;
    const same = (await run(input, [{ operation: 'brightness', intensity: 1 }])).look.means[0]!;
    const darker = (await run(input, [{ operation: 'brightness', intensity: 0.5 }])).look.means[0]!;
    expect(Math.abs(same - 60)).toBeLessThan(2);
    expect(brighter).toBeGreaterThan(100);
    expect(darker).toBeLessThan(40);
  });

  it('contrast scales around mid-grey; 0 gives flat grey', async () => {
    const input = await solid(8, 8, { r: 200, g: 50, b: 128 });
    expect(await pixel((await run(input, [{ operation: 'contrast', intensity: 0 }])).data, 0, 0)).toEqual([128, 128, 128]);
    const [r, g] = await pixel((await run(input, [{ operation: 'contrast', intensity: 1.5 }])).data, 0, 0);
    expect(r).toBe(236);
    expect(g).toBe(11);
  });

  it('keeps alpha through a pipeline into PNG and flattens it onto white for JPEG', async () => {
    const input = await solid(8, 8, { r: 0, g: 0, b: 0, alpha: 0 });
    const png = await run(
      input,
      [
        { operation: 'blur', intensity: 1 },
        { operation: 'contrast', intensity: 1.1 },
      ],
      'png',
    );
    expect(png.look.channels).toBe(4);
    expect(png.look.means[3]).toBe(0);
    const jpeg = await run(input, [{ operation: 'grayscale' }], 'jpeg');
    expect(jpeg.look.means[0]).toBeGreaterThan(250);
  });

  it('passes alpha images between steps as they are: colours not unpremultiplied twice, alpha kept after grayscale', async () => {
    const input = await solid(8, 8, { r: 90, g: 140, b: 200, alpha: 0.5 });
    const toned = await run(input, [
      { operation: 'blur', intensity: 1 },
      { operation: 'sepia', intensity: 0 },
    ]);
    // Within a level of the colour it had (the old double unpremultiply gave about twice as bright).
    [90, 140, 200, 128].forEach((value, band) => expect(Math.abs(toned.look.means[band]! - value)).toBeLessThanOrEqual(1.5));
    const grey = await run(input, [{ operation: 'grayscale' }, { operation: 'blur', intensity: 1 }]);
    expect(Math.round(grey.look.means.at(-1)!)).toBe(128);
  });

  it('a file that is not what it claims fails with decode_failed, not a crash', async () => {
    const bad = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 7)]);
    await expect(run(bad, [{ operation: 'grayscale' }], 'jpeg', 'jpeg')).rejects.toSatisfy(
      (error: unknown) =>
        error instanceof ProcessingError && error.code === 'decode_failed' && !/\/(tmp|work|home|root)\//.test(error.detail),
    );
  });
});
