/**
 * @module
 * Keeps the event loop first in line for a CPU. libvips' worker threads (and libuv's, which start them) keep
 * every core busy while jobs run; at equal priority the event-loop thread then waits its turn behind them, and
 * `/status`, uploads and health checks answer late. On Linux a thread's nice value is its own: this raises
 * (lowers the priority of) every thread of the process but the main one. Threads started later inherit the
 * value of the thread that starts them, and a periodic pass catches any other. Raising a nice value needs no
 * privilege; elsewhere than Linux this does nothing.
 */
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Nice value of the helper threads: below the event loop (0), still above idle work. */
export const HELPER_NICE = 5;
const RECHECK_MS = 10_000;

/** Renices every thread but the main one to `nice` (if lower); returns how many it changed. */
export function deprioritizeHelpers(nice = HELPER_NICE): number {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  let changed = 0;
  for (const entry of tids) {
    const tid = Number(entry);
    if (tid === process.pid) continue;
    try {
      if (getPriority(tid) < nice) {
        setPriority(tid, nice);
        changed += 1;
      }
    } catch {
      // The thread has ended meanwhile, or this system does not allow it: nothing to do.
    }
  }
  return changed;
}

/** Deprioritizes the helper threads now and every 10 s; returns the stop. */
export function keepEventLoopFirst(nice = HELPER_NICE): () => void {
  if (process.platform !== 'linux') return () => {};
  deprioritizeHelpers(nice);
  const timer = setInterval(() => deprioritizeHelpers(nice), RECHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
