/**
 * The memory budget: jobs admitted first come, first served, never adding up past the budget.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryBudget } from '../../src/memory-budget.js';

describe('MemoryBudget', () => {
  it('admits in arrival order, and a large job at the head is not overtaken by small ones', async () => {
    const budget = new MemoryBudget(100);
    const order: string[] = [];
    const first = await budget.take(60);
    const large = budget.take(80).then((give) => (order.push('large'), give));
    const small = budget.take(10).then((give) => (order.push('small'), give));
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([]);
    expect(budget.use()).toEqual({ budgetBytes: 100, inUseBytes: 60, waiting: 2 });
    first();
    (await large)();
    (await small)();
    expect(order).toEqual(['large', 'small']);
    expect(budget.use().inUseBytes).toBe(0);
  });

  it('gives back once, however often it is called', async () => {
    const budget = new MemoryBudget(100);
    const give = await budget.take(70);
    give();
    give();
    const again = await budget.take(100);
    expect(budget.use().inUseBytes).toBe(100);
    again();
  });

  it('never holds more than the budget, whatever jobs come and go', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ bytes: fc.integer({ min: 0, max: 120 }), hold: fc.integer({ min: 0, max: 3 }) }), { maxLength: 30 }),
        async (jobs) => {
          const budget = new MemoryBudget(100);
          let peak = 0;
          await Promise.all(
            jobs.map(async ({ bytes, hold }) => {
              const give = await budget.take(bytes);
              peak = Math.max(peak, budget.use().inUseBytes);
              for (let i = 0; i < hold; i += 1) await new Promise((resolve) => setImmediate(resolve));
              give();
            }),
          );
          expect(peak).toBeLessThanOrEqual(100);
          expect(budget.use()).toEqual({ budgetBytes: 100, inUseBytes: 0, waiting: 0 });
        },
      ),
    );
  });
});
