/**
 * @module
 * The records the service keeps: an uploaded file and a processing job, as the API shows them.
 */
import type { ErrorCode } from './error-codes.js';
import { FILE_EXTENSIONS, type InputFormat, type OutputFormat } from './formats.js';
import type { Operation } from './operations.js';
import type { ImageStore, JobStore } from '../ports.js';

export type JobStatus = 'queued' | 'processing' | 'completed' | 'failed';

export interface FileRecord {
  file_id: string;
  filename: string;
  content_type: string;
  format: InputFormat;
  size_bytes: number;
  width: number;
  height: number;
  /** Frames of an animated GIF or WebP; 1 otherwise. */
  pages: number;
  /** Bands of the decoded image (3, or 4 with alpha), for memory estimates; absent in records kept before it was. */
  channels?: number;
  /** A progressive JPEG or interlaced PNG (its decoder holds the whole image), for memory estimates. */
  progressive?: boolean;
  /** 16 bits a sample, for pipeline planning. */
  deep?: boolean;
  uploaded_at: string;
  sha256: string;
}

export interface JobResult {
  format: OutputFormat;
  width: number;
  height: number;
  size_bytes: number;
  sha256: string;
}

export interface JobRecord {
  processing_id: string;
  file_id: string;
  status: JobStatus;
  cached: boolean;
  operations: Operation[];
  output: { format: OutputFormat; quality: number };
  keep_metadata: boolean;
  /** Same upload content + same normalised request = same key; results are stored under it. */
  cache_key: string;
  created_at: string;
  started_at?: string;
  completed_at?: string;
  duration_ms?: number;
  result?: JobResult;
  error?: { code: ErrorCode; message: string };
  /** Where the job's end is announced (a webhook); vetted when the job was asked for. Not shown on `/status`. */
  notify_url?: string;
}

/** True for the statuses a job ends in: it will not change again. */
export const isFinished = (status: JobStatus | undefined): boolean => status === 'completed' || status === 'failed';

/** How far along each status is: a job only moves forward, queued → processing → completed | failed. */
export const STATUS_RANK: Readonly<Record<JobStatus, number>> = { queued: 0, processing: 1, completed: 2, failed: 2 };

/**
 * Whether a job at `from` may be written as `to` (`undefined`: a patch that keeps the status). A finished job
 * never changes: a duplicate run after a lost lock cannot move a completed job back.
 * @example canMove('processing', 'queued') // false
 */
export function canMove(from: JobStatus, to: JobStatus | undefined): boolean {
  if (isFinished(from)) return false;
  return to === undefined || STATUS_RANK[to] >= STATUS_RANK[from];
}

/**
 * The part of a job a client sees on `/status` (internal keys left out). `task_id` is the same id under the
 * name the original service's clients read (see docs/migration.md).
 */
export function publicJob(job: JobRecord) {
  const { cache_key: _key, keep_metadata: _keep, notify_url: _notify, ...visible } = job;
  return {
    ...visible,
    task_id: job.processing_id,
    ...(job.status === 'completed' ? { download_url: `/download/${job.processing_id}` } : {}),
  };
}

/** The public listing entry of an upload. */
export function publicFile(file: FileRecord) {
  const { file_id, filename, format, size_bytes, width, height, uploaded_at } = file;
  return { file_id, filename, format, size_bytes, width, height, uploaded_at };
}

/** Position in the newest-first listing of uploads. */
export interface ListCursor {
  uploaded_at: string;
  file_id: string;
}

/** True when `a` comes after `b` in the newest-first order. */
export function isOlder(a: ListCursor, b: ListCursor): boolean {
  return a.uploaded_at < b.uploaded_at || (a.uploaded_at === b.uploaded_at && a.file_id < b.file_id);
}

/** Position in the newest-first listing of jobs (`GET /tasks`). */
export interface JobCursor {
  created_at: string;
  processing_id: string;
}

/** True when job `a` comes after `b` in the newest-first order. */
export function isOlderJob(a: JobCursor, b: JobCursor): boolean {
  return a.created_at < b.created_at || (a.created_at === b.created_at && a.processing_id < b.processing_id);
}

/** Where the result of a job is stored: one file per distinct (content, request), shared by cache hits. */
export function resultName(job: Pick<JobRecord, 'cache_key' | 'output'>): string {
  return `${job.cache_key}.${FILE_EXTENSIONS[job.output.format]}`;
}

/**
 * The result of the completed job the cache names for this key, while its bytes are still stored: what a
 * cache hit answers and what a job with the same key takes instead of computing it again.
 */
export async function storedResult(
  jobs: Pick<JobStore, 'findCompleted' | 'getJob'>,
  store: Pick<ImageStore, 'hasResult'>,
  cacheKey: string,
): Promise<{ job: JobRecord; result: JobResult } | undefined> {
  const doneId = await jobs.findCompleted(cacheKey);
  const done = doneId ? await jobs.getJob(doneId) : undefined;
  if (done?.status !== 'completed' || !done.result || !(await store.hasResult(resultName(done)))) return undefined;
  return { job: done, result: done.result };
}
