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
    const report: SweepReport = { skipped: false, uploads: 0, results: 0, staged: 0, jobs: 0 };
    // Each phase on its own: one that fails (a Redis blip, an object S3 will not delete) stops no other.
    const errors: unknown[] = [];
    const phase = (run: () => Promise<void>) => run().catch((error: unknown) => void errors.push(error));
    await phase(async () => {
      for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
        const due = await jobs.takeDueUploads(cutoff, SWEEP_BATCH);
        if (due.length === 0) break;
        // The bytes first: what could not be deleted keeps its record, and the next sweep finds it again.
        const gone = await store.deleteUploads(due);
        await jobs.forgetUploads(gone);
        report.uploads += gone.length;
        if (due.length < SWEEP_BATCH || gone.length === 0) break;
      }
    });
    await phase(async () => {
      report.jobs = await jobs.forgetJobsBefore(cutoff);
    });
    await phase(async () => {
      Object.assign(report, await store.sweep(cutoff, stagedCutoff));
    });
    if (errors.length)
      throw errors.length === 1 ? errors[0] : new AggregateError(errors, `${errors.length} phases of the retention sweep failed`);
    return report;
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
