/**
 * @module
 * The embedded default's job store: records held in memory and persisted one JSON file per record under
 * `stateDir/files/`, `stateDir/jobs/` and `stateDir/links/` (task links of `POST /upload-image/`; written to a partial name, synced, renamed), so a restart loses
 * nothing and a crash never leaves a torn record. `inMemory()` keeps them in memory only (handler tests).
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  canMove,
  isFinished,
  isOlder,
  isOlderJob,
  type FileRecord,
  type JobCursor,
  type JobRecord,
  type ListCursor,
} from '../domain/jobs.js';
import { notFound } from '../domain/errors.js';
import { ChangeListeners, type ChangeListener } from '../domain/change-listeners.js';
import type { FilePage, JobPage, JobStore } from '../ports.js';
import { PARTIAL, writeFileAtomically } from './atomic-file.js';
import { asStorageError } from './fs-faults.js';

type RecordKind = 'files' | 'jobs' | 'links';

/** What `stateDir/links/<file_id>.json` holds. */
interface TaskLink {
  file_id: string;
  processing_id: string;
}

export class EmbeddedJobStore implements JobStore {
  private readonly files = new Map<string, FileRecord>();
  /** Uploads oldest first: appends are the common case, so the listing stays sorted cheaply. */
  private readonly fileOrder: FileRecord[] = [];
  private readonly jobs = new Map<string, JobRecord>();
  /** Jobs oldest first, for `/tasks` (as `fileOrder`). */
  private readonly jobOrder: JobCursor[] = [];
  /** file_id → processing_id of the job `POST /upload-image/` started for it. */
  private readonly links = new Map<string, string>();
  private readonly completedByKey = new Map<string, string>();
  /** Writes of one record are serialised, so an older state never overwrites a newer one. */
  private readonly writes = new Map<string, Promise<void>>();
  private readonly listeners = new ChangeListeners();
  /** Results being computed, by cache key (claims end with their job, or expire). */
  private readonly computing = new Map<string, { holder: string; expiresAt: number }>();

  /** `undefined`: records are not persisted. */
  private constructor(private readonly dir: string | undefined) {}

  /** A store that keeps records in this process only: nothing touches a file system. */
  static inMemory(): EmbeddedJobStore {
    return new EmbeddedJobStore(undefined);
  }

  /** Opens (and creates) the state folder and loads every record in it. */
  static async open(stateDir: string): Promise<EmbeddedJobStore> {
    stateDir = resolve(stateDir);
    const store = new EmbeddedJobStore(stateDir);
    for (const kind of ['files', 'jobs', 'links'] as const) {
      const dir = join(stateDir, kind);
      await mkdir(dir, { recursive: true });
      for (const entry of await readdir(dir)) {
        if (entry.startsWith(PARTIAL)) {
          await rm(join(dir, entry), { force: true });
          continue;
        }
        const record: unknown = JSON.parse(await readFile(join(dir, entry), 'utf8'));
        if (kind === 'files') store.indexFile(record as FileRecord);
        else if (kind === 'jobs') store.indexJob(record as JobRecord);
        else store.links.set((record as TaskLink).file_id, (record as TaskLink).processing_id);
      }
    }
    store.fileOrder.sort((a, b) => (isOlder(a, b) ? -1 : 1));
    store.jobOrder.sort((a, b) => (isOlderJob(a, b) ? -1 : 1));
    return store;
  }

  async putFile(file: FileRecord): Promise<void> {
    await this.persist('files', file.file_id, file);
    this.indexFile(file);
    settleLast(this.fileOrder, isOlder);
  }

  async getFile(fileId: string): Promise<FileRecord | undefined> {
    return this.files.get(fileId);
  }

  async listFiles(limit: number, after?: ListCursor): Promise<FilePage> {
    let end = this.fileOrder.length;
    if (after) {
      // Binary search for the first record older than the cursor, from the newest end.
      let low = 0;
      let high = this.fileOrder.length;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (isOlder(this.fileOrder[mid]!, after)) low = mid + 1;
        else high = mid;
      }
      end = low;
    }
    const items = this.fileOrder.slice(Math.max(0, end - limit), end).reverse();
    return { items, total: this.fileOrder.length, hasMore: end - limit > 0 };
  }

  async putJob(job: JobRecord): Promise<void> {
    if (!isFinished(job.status) && !this.files.has(job.file_id)) {
      throw notFound('file_not_found', `no upload has file_id ${job.file_id} (it has just been removed by retention)`);
    }
    await this.persist('jobs', job.processing_id, job);
    this.indexJob(job);
    settleLast(this.jobOrder, isOlderJob);
  }

  async listJobs(limit: number, after?: JobCursor): Promise<JobPage> {
    let end = this.jobOrder.length;
    if (after) {
      let low = 0;
      let high = this.jobOrder.length;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (isOlderJob(this.jobOrder[mid]!, after)) low = mid + 1;
        else high = mid;
      }
      end = low;
    }
    const ids = this.jobOrder.slice(Math.max(0, end - limit), end).reverse();
    return { items: ids.map((entry) => this.jobs.get(entry.processing_id)!), total: this.jobOrder.length, hasMore: end - limit > 0 };
  }

  async linkTask(fileId: string, processingId: string): Promise<void> {
    await this.persist('links', fileId, { file_id: fileId, processing_id: processingId } satisfies TaskLink);
    this.links.set(fileId, processingId);
  }

  async taskOf(fileId: string): Promise<string | undefined> {
    return this.links.get(fileId);
  }

  async getJob(processingId: string): Promise<JobRecord | undefined> {
    return this.jobs.get(processingId);
  }

  async updateJob(processingId: string, patch: Partial<JobRecord>): Promise<JobRecord | undefined> {
    const current = this.jobs.get(processingId);
    if (!current) return undefined;
    if (!canMove(current.status, patch.status)) return current;
    const next = { ...current, ...patch };
    this.indexJob(next);
    // Readers see the new state in memory at once; listeners are told before the disk write completes.
    if (patch.status) this.listeners.notify(processingId, next);
    // "processing" is not written: after a restart a job found queued or processing is run again alike, so
    // the write (~0.45 ms of CPU with its fsync, measured) would buy nothing.
    if (!(patch.status === 'processing' && current.status === 'queued')) await this.persist('jobs', processingId, next);
    return next;
  }

  onChange(processingId: string, listener: ChangeListener): () => void {
    return this.listeners.add(processingId, listener);
  }

  async findCompleted(cacheKey: string): Promise<string | undefined> {
    return this.completedByKey.get(cacheKey);
  }

  async markCompleted(cacheKey: string, processingId: string): Promise<void> {
    this.completedByKey.set(cacheKey, processingId);
  }

  async claimCompute(cacheKey: string, processingId: string, ttlSeconds: number): Promise<string> {
    const claim = this.computing.get(cacheKey);
    if (claim && claim.expiresAt > Date.now()) return claim.holder;
    this.computing.set(cacheKey, { holder: processingId, expiresAt: Date.now() + ttlSeconds * 1000 });
    return processingId;
  }

  async releaseCompute(cacheKey: string, processingId: string): Promise<void> {
    if (this.computing.get(cacheKey)?.holder === processingId) this.computing.delete(cacheKey);
  }

  /** Synchronous up to its answer, so no job can be recorded for an upload between the check and the take. */
  async takeDueUploads(cutoff: Date, limit: number): Promise<string[]> {
    const limitText = cutoff.toISOString();
    const needed = new Set([...this.jobs.values()].filter((job) => !isFinished(job.status)).map((job) => job.file_id));
    const due: string[] = [];
    for (const file of this.fileOrder) {
      if (file.uploaded_at >= limitText || due.length >= limit) break;
      if (!needed.has(file.file_id)) due.push(file.file_id);
    }
    this.unindex(due);
    return due;
  }

  async forgetUploads(fileIds: string[]): Promise<void> {
    this.unindex(fileIds);
    for (const fileId of fileIds) {
      await this.forget('files', fileId);
      if (this.links.delete(fileId)) await this.forget('links', fileId);
    }
  }

  /**
   * Drops uploads from memory at once (no await in between, so /list never shows an id that is gone),
   * rebuilding the order in place: spreading every upload kept as arguments fails past ~150 000 of them.
   */
  private unindex(fileIds: string[]): void {
    if (fileIds.length === 0) return;
    const gone = new Set(fileIds);
    for (const fileId of fileIds) this.files.delete(fileId);
    let kept = 0;
    for (const file of this.fileOrder) if (!gone.has(file.file_id)) this.fileOrder[kept++] = file;
    this.fileOrder.length = kept;
  }

  /** Finished jobs only: a queued or running job is never forgotten, whatever its age. */
  async forgetJobsBefore(cutoff: Date): Promise<number> {
    const limit = cutoff.toISOString();
    const old = [...this.jobs.values()].filter((job) => isFinished(job.status) && job.created_at < limit);
    if (old.length) {
      const gone = new Set(old.map((job) => job.processing_id));
      let kept = 0;
      for (const entry of this.jobOrder) if (!gone.has(entry.processing_id)) this.jobOrder[kept++] = entry;
      this.jobOrder.length = kept;
    }
    for (const job of old) {
      this.jobs.delete(job.processing_id);
      if (this.completedByKey.get(job.cache_key) === job.processing_id) this.completedByKey.delete(job.cache_key);
      await this.forget('jobs', job.processing_id);
    }
    return old.length;
  }

  /** Jobs left `queued` or `processing` when the process stopped, oldest first, to run again. */
  async unfinishedJobs(): Promise<string[]> {
    return [...this.jobs.values()]
      .filter((job) => job.status === 'queued' || job.status === 'processing')
      .sort((a, b) => a.created_at.localeCompare(b.created_at))
      .map((job) => job.processing_id);
  }

  /** Ended jobs with a `notify_url` that ended after `since`: their webhooks are enqueued again at start (a no-op for those kept). */
  endedJobsToNotify(since: Date): string[] {
    const limit = since.toISOString();
    return [...this.jobs.values()]
      .filter((job) => job.notify_url && isFinished(job.status) && (job.completed_at ?? job.created_at) >= limit)
      .map((job) => job.processing_id);
  }

  private indexFile(file: FileRecord): void {
    if (!this.files.has(file.file_id)) this.fileOrder.push(file);
    this.files.set(file.file_id, file);
  }

  private indexJob(job: JobRecord): void {
    if (!this.jobs.has(job.processing_id)) this.jobOrder.push({ created_at: job.created_at, processing_id: job.processing_id });
    this.jobs.set(job.processing_id, job);
    if (job.status === 'completed' && !this.completedByKey.has(job.cache_key)) this.completedByKey.set(job.cache_key, job.processing_id);
  }

  private async forget(kind: RecordKind, id: string): Promise<void> {
    if (this.dir) await rm(join(this.dir, kind, `${id}.json`), { force: true });
  }

  private persist(kind: RecordKind, id: string, record: object): Promise<void> {
    const dir = this.dir;
    if (!dir) return Promise.resolve();
    const key = `${kind}/${id}`;
    const previous = this.writes.get(key) ?? Promise.resolve();
    // A full or read-only STATE_DIR is a 507 or 503 the client can retry, not a 500.
    const write = previous
      .catch(() => undefined)
      .then(() => writeFileAtomically(join(dir, kind), `${id}.json`, JSON.stringify(record)))
      .catch((error: unknown) => {
        throw asStorageError(error);
      });
    this.writes.set(key, write);
    void write
      .finally(() => {
        if (this.writes.get(key) === write) this.writes.delete(key);
      })
      .catch(() => undefined);
    return write;
  }
}

/**
 * Moves the last entry of `order` (oldest first, but for that entry) to its place by binary search: records
 * written at once may be persisted out of `created_at` order, and sorting the whole index for each would
 * block the event loop on a large one.
 */
function settleLast<T>(order: T[], isOlderThan: (a: T, b: T) => boolean): void {
  const entry = order.at(-1);
  if (entry === undefined || order.length < 2 || !isOlderThan(entry, order.at(-2)!)) return;
  order.pop();
  let low = 0;
  let high = order.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (isOlderThan(order[mid]!, entry)) low = mid + 1;
    else high = mid;
  }
  order.splice(low, 0, entry);
}
