/**
 * `POST /process` over in-memory ports, with plain `Request`s: a job no worker could admit within the memory
 * budget is refused at once, naming the budget, and nothing is queued for it.
 */
import { describe, expect, it } from 'vitest';
import { expectProblem, upload } from '../helpers/client.js';
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
});
