/**
 * @module
 * Retention: uploads, results and their records older than `RETENTION_SECONDS` are removed by a periodic
 * sweep, in both modes. In Redis mode one process sweeps at a time (a lock with a TTL).
 */
import type { ImageStore, JobStore } from './ports.js';

export interface SweepReport {
  skipped: boolean;
  uploads: number;
  results: number;
  /** Staged files of uploads and writes that never finished (their process died). */
  staged: number;
  /** Finished jobs forgotten (the embedded default; Redis records expire by themselves). */
  jobs: number;
}

/**
 * Anything staged longer ago than this is a leftover of a process that died mid-upload or mid-write (an
 * upload takes seconds, a result write less), whichever process staged it.
 */
export const STAGED_MAX_AGE_SECONDS = 3 * 3600;

/** Uploads handled per batch, and batches per sweep: any backlog is worked off in bounded steps. */
export const SWEEP_BATCH = 1000;
const SWEEP_MAX_BATCHES = 100;

export interface SweeperDeps {
  jobs: JobStore;
  store: ImageStore;
  retentionSeconds: number;
  /** Resolves true when this process may sweep now (Redis mode: a lock); default always. */
  acquire?: () => Promise<boolean>;
  now?: () => Date;
}

export function createSweeper({ jobs, store, retentionSeconds, acquire = async () => true, now = () => new Date() }: SweeperDeps) {
  return async function sweep(): Promise<SweepReport> {
    if (!(await acquire())) return { skipped: true, uploads: 0, results: 0, staged: 0, jobs: 0 };
    const cutoff = new Date(now().getTime() - retentionSeconds * 1000);
    const stagedCutoff = new Date(now().getTime() - STAGED_MAX_AGE_SECONDS * 1000);
    let uploads = 0;
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      const due = await jobs.dueUploads(cutoff, SWEEP_BATCH);
      if (due.length === 0) break;
      // The bytes first: should this fail, the records stay, and the next sweep finds the uploads again.
      await store.deleteUploads(due);
      await jobs.forgetUploads(due);
      uploads += due.length;
      if (due.length < SWEEP_BATCH) break;
    }
    const forgottenJobs = await jobs.forgetJobsBefore(cutoff);
    return { skipped: false, uploads, jobs: forgottenJobs, ...(await store.sweep(cutoff, stagedCutoff)) };
  };
}

/** How often to sweep: a quarter of the retention period, between 1 s and 1 h. */
export const sweepIntervalSeconds = (retentionSeconds: number) => Math.max(1, Math.min(3600, Math.floor(retentionSeconds / 4)));

/** Runs `sweep` every `intervalSeconds` until the returned function is called. */
export function scheduleSweeps(sweep: () => Promise<unknown>, intervalSeconds: number, onError: (error: unknown) => void): () => void {
  const timer = setInterval(() => void sweep().catch(onError), intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
