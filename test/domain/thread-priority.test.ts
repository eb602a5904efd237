/**
 * The event loop keeps its priority while every other thread of the process is niced below it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { deprioritizeHelpers } from '../../src/thread-priority.js';

/** Nice value of each thread of this process, from /proc (field 19 of stat). */
function niceByThread(): Map<number, number> {
  const nice = new Map<number, number>();
  for (const entry of readdirSync('/proc/self/task')) {
    try {
      const fields = readFileSync(`/proc/self/task/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      nice.set(Number(entry), Number(fields[16]));
    } catch {
      // the thread ended while being read
    }
  }
  return nice;
}

describe('thread priority (Linux)', () => {
  it('nices every thread but the main one, and leaves the main one as it was', async () => {
    await readFile(import.meta.filename); // the libuv pool's threads exist
    const mainBefore = niceByThread().get(process.pid);
    deprioritizeHelpers(7);
    const after = niceByThread();
    expect(after.size).toBeGreaterThan(1);
    expect(after.get(process.pid)).toBe(mainBefore);
    for (const [tid, nice] of after) if (tid !== process.pid) expect(nice, `thread ${tid}`).toBeGreaterThanOrEqual(7);
    // A second pass finds nothing left to change.
    expect(deprioritizeHelpers(7)).toBe(0);
  });
});
