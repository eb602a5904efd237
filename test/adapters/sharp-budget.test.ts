/**
 * The processor under its memory budget: jobs admitted by their estimate, refused when they could never fit,
 * and BMP decoded on a thread of its own within the job's deadline.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ProcessingError } from '../../src/adapters/sharp-processor.js';
import type { Operation } from '../../src/domain/operations.js';
import { look, paletteBmp } from '../helpers/images.js';
import { MIB, processorHarness } from '../helpers/processor.js';

const small = () =>
  sharp({ create: { width: 200, height: 200, channels: 3, background: '#406080' } })
    .png()
    .toBuffer();
const enlarge = (side: number): Operation => ({ operation: 'resize', width: side, height: side, fit: 'fill', without_enlargement: false });

/** The longest the event loop went without a turn while `work` ran. */
async function longestStall<T>(work: () => Promise<T>): Promise<{ result: PromiseSettledResult<T>; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 5);
  const [result] = await Promise.allSettled([work()]);
  clearInterval(ticker);
  return { result, stallMs };
}

describe('SharpProcessor memory budget', () => {
  it('refuses a job whose estimate is over the whole budget, naming the budget', async () => {
    const { run } = processorHarness({ memoryBudgetBytes: 128 * MIB });
    await expect(run(await small(), [enlarge(6000)], 'avif')).rejects.toSatisfy(
      (error: unknown) =>
        error instanceof ProcessingError && error.code === 'out_of_memory_budget' && /MEMORY_BUDGET_MB/.test(error.detail),
    );
  });

  it('runs jobs that together exceed the budget one after another, never over it', async () => {
    const { run, processor } = processorHarness({ memoryBudgetBytes: 300 * MIB });
    const input = await small();
    const job = () => run(input, [enlarge(3000), { operation: 'blur', intensity: 2 }, { operation: 'grayscale' }], 'png');
    const estimate = processor.estimateMemory(
      { format: 'png', width: 200, height: 200, pages: 1, channels: 3, size_bytes: input.length },
      [enlarge(3000), { operation: 'blur', intensity: 2 }, { operation: 'grayscale' }],
      { format: 'png' },
    );
    expect(estimate).toBeGreaterThan(150 * MIB);
    let mostWaiting = 0;
    let mostInUse = 0;
    let done = false;
    const watching = (async () => {
      while (!done) {
        const use = processor.memoryUse();
        mostWaiting = Math.max(mostWaiting, use.waiting);
        mostInUse = Math.max(mostInUse, use.inUseBytes);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const results = await Promise.all([job(), job(), job()]);
    done = true;
    await watching;
    expect(results.map((result) => [result.width, result.height])).toEqual([
      [3000, 3000],
      [3000, 3000],
      [3000, 3000],
    ]);
    expect(mostWaiting).toBeGreaterThanOrEqual(1);
    // At most one of them held the budget at a time (each needs more than half of it).
    expect(mostInUse).toBeLessThan(2 * estimate);
    await expect.poll(() => processor.memoryUse()).toMatchObject({ inUseBytes: 0, waiting: 0 });
  });

  it("holds the job's share while its result is being stored, and gives it back after", async () => {
    const { run, processor } = processorHarness();
    let heldWhileStoring = 0;
    await run(await small(), [{ operation: 'blur', intensity: 1 }], 'png', 'png', 30, async (image) => {
      heldWhileStoring = processor.memoryUse().inUseBytes;
      return image;
    });
    expect(heldWhileStoring).toBeGreaterThan(0);
    await expect.poll(() => processor.memoryUse().inUseBytes).toBe(0);
  });
});

describe('BMP', () => {
  it('is decoded off the event loop: a 5 MB 1-bit BMP does not stall other work', async () => {
    const { run } = processorHarness();
    const { result, stallMs } = await longestStall(() =>
      run(paletteBmp(6000, 6000, 1), [{ operation: 'resize', width: 300, without_enlargement: false }], 'png', 'bmp'),
    );
    expect(result.status).toBe('fulfilled');
    const out = (result as PromiseFulfilledResult<{ data: Uint8Array }>).value;
    expect(await look(out.data)).toMatchObject({ width: 300, height: 300 });
    // Decoded on the event loop this file held it for over a second; on its thread, turns keep coming.
    expect(stallMs).toBeLessThan(300);
  });

  it('stops at the deadline, its thread ended, with the timeout named', async () => {
    const { run } = processorHarness();
    const started = Date.now();
    await expect(
      run(
        paletteBmp(7000, 7000, 1),
        [
          { operation: 'blur', intensity: 30 },
          { operation: 'sharpen', intensity: 5 },
        ],
        'png',
        'bmp',
        1,
      ),
    ).rejects.toSatisfy(
      (error: unknown) => error instanceof ProcessingError && error.code === 'timeout' && /JOB_TIMEOUT_SECONDS/.test(error.detail),
    );
    expect(Date.now() - started).toBeLessThan(2500);
  });
});
