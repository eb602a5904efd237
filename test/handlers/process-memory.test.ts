/**
 * `POST /process` over in-memory ports, with plain `Request`s: a job no worker could admit within the memory
 * budget is refused at once, naming the budget, and nothing is queued for it.
 */
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { expectProblem, multipart, upload } from '../helpers/client.js';
import { noisyJpeg } from '../helpers/images.js';
import { memoryApp } from '../helpers/memory-app.js';

const pipeline = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('POST /process memory budget', () => {
  it('refuses with 400 out_of_memory_budget a job over the budget, and accepts the same size in a lighter format', async () => {
    const m = memoryApp();
    const file = await upload(m.send, await noisyJpeg(300, 200), 'photo.jpg');
    const resize = { operation: 'resize', width: 8000, height: 6000, fit: 'fill' };
    const refused = await m.send(`/process/${file.file_id}`, pipeline({ operations: [resize], format: 'avif' }));
    const problem = await expectProblem(refused, 400, 'out_of_memory_budget');
    expect(problem.detail).toMatch(/MEMORY_BUDGET_MB/);
    expect(problem.detail).toMatch(/\d+ MiB/);
    expect(problem.errors).toEqual([expect.objectContaining({ path: 'format' })]);
    expect(await m.queue.counts()).toMatchObject({ waiting: 0, active: 0 });

    const accepted = await m.send(`/process/${file.file_id}`, pipeline({ operations: [resize], format: 'png' }));
    expect(accepted.status).toBe(200);
    await m.queue.idle();
  });

  it('refuses at upload, 413 out_of_memory_budget, an image no job could be admitted for', async () => {
    const m = memoryApp({ memoryBudgetBytes: 128 * 2 ** 20 });
    const large = await sharp({ create: { width: 2000, height: 2000, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 0.5 } } })
      .png()
      .toBuffer();
    const refused = await m.send('/upload', { method: 'POST', body: multipart(large, 'large.png') });
    const problem = await expectProblem(refused, 413, 'out_of_memory_budget');
    expect(problem.detail).toMatch(/MEMORY_BUDGET_MB/);
    expect(await m.jobs.listFiles(10)).toMatchObject({ total: 0 });
    // A smaller one is taken, and a job on it that would be over the budget is refused without blaming PNG.
    const file = await upload(m.send, await sharp(large).resize(600).png().toBuffer(), 'small.png');
    const over = await m.send(
      `/process/${file.file_id}`,
      pipeline({ operations: [{ operation: 'resize', width: 4000, height: 4000, fit: 'fill' }], format: 'png' }),
    );
    const body = await expectProblem(over, 400, 'out_of_memory_budget');
    expect(body.errors).toEqual([
      expect.objectContaining({ path: 'operations', message: expect.not.stringMatching(/lighter output format/) }),
    ]);
  });
});
