/**
 * @module
 * The ports: what the handlers and the job runner need from the outside world, in domain words.
 * Records, queue and idempotency have embedded and Redis adapters; files have disk, memory and S3 stores.
 * Handlers never know which.
 */
import type { InputFormat, OutputFormat } from './domain/formats.js';
import type { FileRecord, JobCursor, JobRecord, JobStatus, ListCursor } from './domain/jobs.js';
import type { ChangeListener } from './domain/change-listeners.js';
import type { Operation } from './domain/operations.js';
import type { DeliveryState, WebhookMessage } from './webhooks/delivery.js';
import type { NotifyUrlRefusal } from './webhooks/notify-url.js';

/** Bytes arriving in pieces: a Node stream, a Web `ReadableStream`, or any (async) iterable of chunks. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** An upload written to the store's staging area, not yet visible anywhere. */
export interface StagedBytes {
  stagingKey: string;
  sizeBytes: number;
  sha256: string;
  /** The first bytes (up to `headBytes`), to tell the format and read most headers without opening the file. */
  head: Uint8Array;
  /** As `StoredFile.localFile`: where a decoder may read the staged bytes in place. */
  localFile?: string;
}

/** A staged upload with the file name the client gave it. */
export interface StagedUpload extends StagedBytes {
  /** As the client sent it (sanitise before storing). */
  filename: string;
}

export interface StageOptions {
  /** More than this many bytes rejects with a 413 `file_too_large`; nothing is left behind. */
  maxBytes: number;
  /** How many leading bytes to keep in `head`. */
  headBytes: number;
}

export interface UploadRules {
  /** The multipart part that holds the file. */
  fieldName: string;
  maxBytes: number;
  /** Called with the part's file name before its bytes are read; throws to refuse the upload early. */
  checkFilename(filename: string): void;
}

/**
 * Reads a multipart upload and hands the file's bytes to the store, enforcing the size limit while they arrive.
 * A refusal that leaves the body unread (too large, too slow, too many uploads at once) carries `Connection: close`.
 */
export interface UploadReceiver {
  receive(request: Request, rules: UploadRules): Promise<StagedUpload>;
  /** Resolves once no upload is arriving and the staged bytes of every refused one are removed (a stop waits for it). */
  idle(): Promise<void>;
}

/** Stored bytes opened for reading: as a stream, or (inputs, bounded by MAX_FILE_SIZE) whole. */
export interface StoredFile {
  sizeBytes: number;
  /** Read it to the end or cancel it: either releases what the store holds open. Use it, or `bytes()`, once. */
  body: ReadableStream<Uint8Array>;
  /** All the bytes in one buffer, read the store's cheapest way (a disk: one read into one allocation). */
  bytes(): Promise<Uint8Array>;
  /**
   * Where a store that keeps files on a file system (the disk store) lets a decoder read them in place,
   * instead of a copy in memory: libvips reading the file itself costs 3–8 ms less CPU per 20 MP job,
   * measured. The store names it; a reader only hands it to the decoder and never builds one.
   */
  localFile?: string;
}

/**
 * Where every byte of an upload or a result lives: the only code that knows paths, keys or buckets.
 * Staging belongs to one process (its own namespace); every other write is atomic: a reader sees all of an
 * upload or a result, or nothing. Faults of the store itself reject with a 503 or 507 `AppError`.
 */
export interface ImageStore {
  /**
   * True when the store keeps files where a decoder can read them in place (`localFile` is set on what it
   * stages and opens: the disk store). An upload then keeps only the few leading bytes that tell its format,
   * since copying 256 KiB of head into fresh memory costs ~0.6 ms per upload on these VMs, measured.
   */
  readonly localFiles: boolean;
  /** Streams `source` into this process's staging area, hashing and counting on the way. */
  stage(source: ByteSource, options: StageOptions): Promise<StagedBytes>;
  /** Makes a staged upload the upload `fileId`. */
  commitUpload(stagingKey: string, fileId: string): Promise<void>;
  discardStaged(stagingKey: string): Promise<void>;
  openStaged(stagingKey: string): Promise<StoredFile | undefined>;
  openUpload(fileId: string): Promise<StoredFile | undefined>;
  /** Deletes these uploads (a batch: the sweep passes up to a thousand at a time); returns those now gone. */
  deleteUploads(fileIds: string[]): Promise<string[]>;
  hasResult(name: string): Promise<boolean>;
  writeResult(name: string, bytes: Uint8Array): Promise<{ sizeBytes: number; sha256: string }>;
  openResult(name: string): Promise<StoredFile | undefined>;
  /** Keeps a result alive for another retention period (a cache hit uses it again). */
  touchResult(name: string): Promise<void>;
  /**
   * Deletes every result last written or touched before `cutoff`, and whatever any process staged before
   * `stagedCutoff` (an upload or a write that never finished: its process died).
   */
  sweep(cutoff: Date, stagedCutoff: Date): Promise<SweptFiles>;
  /** Free space where the store can tell; `undefined` where it cannot (an object store). Rejects when the store is unreachable. */
  freeBytes(): Promise<number | undefined>;
  /** Finishes background work (S3: pending touches) and releases connections. */
  close(): Promise<void>;
}

export interface SweptFiles {
  results: number;
  staged: number;
}

export interface ImageInfo {
  width: number;
  height: number;
  pages: number;
  /** Bands of the decoded image: 1 to 4 (3 colour, 4 with alpha). */
  channels: number;
  /** A progressive JPEG (or interlaced PNG): its decoder holds the whole image. */
  progressive: boolean;
  /** 16 bits a sample (some PNG and TIFF). */
  deep: boolean;
}

/**
 * What a job's plan and memory estimate need to know of its upload: the facts its header gave, as the
 * upload's record keeps them (a record is one). Unknown `channels` count as 4, unknown `progressive` as
 * progressive, unknown `deep` as possibly 16-bit (PNG, TIFF).
 */
export type InputFacts = Pick<FileRecord, 'format' | 'width' | 'height' | 'pages' | 'channels' | 'progressive' | 'deep' | 'size_bytes'>;

export interface ProcessTask {
  fileId: string;
  input: InputFacts;
  operations: Operation[];
  output: { format: OutputFormat; quality: number };
  keepMetadata: boolean;
  timeoutSeconds: number;
}

export interface ProcessedImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** The image work itself; runs off the event loop. */
export interface ImageProcessor {
  /** Dimensions as displayed (after EXIF orientation) and frame count, from the header alone. */
  probe(staged: StagedBytes, format: InputFormat): Promise<ImageInfo>;
  /** An upper bound of the job's peak memory, in bytes, known before it runs (POST /process refuses what no worker could admit). */
  estimateMemory(facts: InputFacts, operations: readonly Operation[], output: { format: OutputFormat }): number;
  /** What any job on this upload needs at least: reading it (an upload over the budget is refused). */
  readingMemory(facts: InputFacts): number;
  /**
   * Runs the job once its estimated memory fits in the process's budget (it waits its turn until then), and
   * hands the result to `use` (to store it) while the job still holds its share of the budget.
   */
  process<T>(task: ProcessTask, use: (image: ProcessedImage) => Promise<T>): Promise<T>;
}

export interface FilePage {
  items: FileRecord[];
  total: number;
  hasMore: boolean;
}

export interface JobPage {
  items: JobRecord[];
  total: number;
  hasMore: boolean;
}

/** Records of uploads and jobs, the `/list` and `/tasks` indexes and the result cache. */
export interface JobStore {
  putFile(file: FileRecord): Promise<void>;
  getFile(fileId: string): Promise<FileRecord | undefined>;
  listFiles(limit: number, after?: ListCursor): Promise<FilePage>;
  /** Records a job; one not yet finished rejects with a 404 `file_not_found` if its upload is gone (swept). */
  putJob(job: JobRecord): Promise<void>;
  getJob(processingId: string): Promise<JobRecord | undefined>;
  /**
   * Jobs newest first (by `created_at`, ties by id), strictly after the cursor: the `/tasks` index, written
   * with the record and cleaned up with it (retention), so it holds what `getJob` can still find.
   */
  listJobs(limit: number, after?: JobCursor): Promise<JobPage>;
  /**
   * Remembers that `POST /upload-image/` started this job for this upload, so `GET /download/{file_id}` (the
   * original service's call) finds its result; the link lives as long as the upload's record.
   */
  linkTask(fileId: string, processingId: string): Promise<void>;
  /** The processing id `linkTask` recorded for this upload, if any. */
  taskOf(fileId: string): Promise<string | undefined>;
  /**
   * Applies `patch` if the job may move to its status (forward only, never from completed or failed:
   * `canMove`), atomically, and returns the record as it now is: unchanged when the move was refused, so
   * the caller compares. `undefined` when the job is unknown.
   */
  updateJob(processingId: string, patch: Partial<JobRecord>): Promise<JobRecord | undefined>;
  /** The processing id of a completed job whose result has this cache key. */
  findCompleted(cacheKey: string): Promise<string | undefined>;
  /** Points the result cache at this (completed) job; refreshes the cache entry's lifetime. */
  markCompleted(cacheKey: string, processingId: string): Promise<void>;
  /**
   * Claims, for `ttlSeconds`, the computing of the result with this cache key, so identical jobs running at
   * once compute it once; returns the processing id holding the claim (this job's when it got it).
   */
  claimCompute(cacheKey: string, processingId: string, ttlSeconds: number): Promise<string>;
  /** Gives the claim up, if this job still holds it. */
  releaseCompute(cacheKey: string, processingId: string): Promise<void>;
  /**
   * Takes, atomically, up to `limit` uploads made before `cutoff` that no unfinished job needs (oldest first,
   * and any an interrupted sweep had taken): from then on they are gone for clients, and a job can no longer
   * be recorded for them. The sweep deletes their bytes, then `forgetUploads` them.
   */
  takeDueUploads(cutoff: Date, limit: number): Promise<string[]>;
  /** Removes these uploads' records, their place in `/list`, their task link, and the sweep's mark on them. */
  forgetUploads(fileIds: string[]): Promise<void>;
  /**
   * Removes finished jobs created before `cutoff` where records do not expire by themselves (returns how
   * many), and the `/tasks` index entries of jobs created before it.
   */
  forgetJobsBefore(cutoff: Date): Promise<number>;
  /**
   * Calls `listener` as soon as the store learns that the job's status moved (to processing, completed or
   * failed), whichever process moved it, with the record as it then stood (or `undefined` when the notice
   * carries none: the listener reads it). Returns the unsubscribe. A notice can be lost (a dropped
   * connection), and the same change may be told twice: listeners read again on their own too, and compare.
   */
  onChange(processingId: string, listener: ChangeListener): () => void;
}

export interface QueueCounts {
  waiting: number;
  active: number;
  completed: number;
  failed: number;
  workers: number;
}

export interface JobQueue {
  enqueue(processingId: string): Promise<void>;
  counts(): Promise<QueueCounts>;
  /** Jobs waiting to start (cheaper than `counts`, asked on every `POST /process`). */
  depth(): Promise<number>;
}

/** A request-rate limit per subject (an API key's hash or a client address): one `hit` per request. */
export interface RateLimiter {
  hit(subject: string): Promise<{ allowed: boolean; retryAfterSeconds: number }>;
}

/** What a runner reports back to the queue that called it. */
export type JobOutcome = Extract<JobStatus, 'completed' | 'failed'> | 'skipped';

export interface RedisProbe {
  /** False while the connection is down: work-accepting routes answer 503 at once instead of hanging. */
  ready(): boolean;
  ping(): Promise<{ status: 'connected' | 'disconnected'; latency_ms?: number }>;
}

/** What an earlier request with the same `Idempotency-Key` got. */
export type IdempotencyClaim =
  { state: 'claimed' } | { state: 'replay'; status: number; body: unknown } | { state: 'mismatch' } | { state: 'in_progress' };

/** `Idempotency-Key` records: a claim is a short lease, an answer is kept for 24 h. */
export interface IdempotencyStore {
  /** Reserves `key` for a request with this fingerprint, or says what the key already stands for. */
  claim(key: string, fingerprint: string): Promise<IdempotencyClaim>;
  /** Records the answer a retry with the same key and fingerprint gets. */
  complete(key: string, fingerprint: string, status: number, body: unknown): Promise<void>;
  /** Drops a claim whose request failed, so a retry can run. */
  release(key: string): Promise<void>;
}

/** Limits and facts the handlers need, taken from the configuration once. */
export interface ServiceSettings {
  version: string;
  maxFileSize: number;
  maxInputPixels: number;
  /** The memory a process gives to jobs, all together (MEMORY_BUDGET_MB): a job estimated above it is refused. */
  memoryBudgetBytes: number;
  allowedExtensions: readonly string[];
  maxQueueDepth: number;
  /** Jobs waiting with no worker connected for this long make `/health` degraded. */
  workerAbsentSeconds: number;
  /** Bearer tokens accepted; empty = no authentication. */
  apiKeys: readonly string[];
  /** 0 = no limit. */
  rateLimitPerMinute: number;
  /** `TRUST_PROXY`: proxy hops whose `X-Forwarded-For` entries name the client; absent or 0 = the peer. */
  trustProxy?: number;
  startedAt: Date;
  /** Server-Sent Events on `GET /status` (SSE_*). */
  statusStreams: StatusStreamLimits;
}

export interface StatusStreamLimits {
  /** Streams this process holds at most (0: none; the stream is refused with a 503). */
  maxStreams: number;
  /** Streams one API key (or, without keys, one client address) holds at most. */
  maxPerClient: number;
  /** A comment line this often keeps idle proxies from closing the connection. */
  heartbeatSeconds: number;
  /** A stream older than this is closed; the client reconnects with Last-Event-ID and misses nothing. */
  maxSeconds: number;
}

/** A static file as stored: its bytes and the copies compressed ahead of time (at build time). */
export interface StaticAsset {
  /** Hex SHA-256 of `identity`: names the file's immutable URL and its ETags. */
  sha256: string;
  identity: Uint8Array;
  /** `Content-Encoding: br` copy, when there is one. */
  br?: Uint8Array;
  /** `Content-Encoding: gzip` copy, when there is one. */
  gzip?: Uint8Array;
}

/** Static files the app serves itself (a service in a private VPC cannot reach a CDN). */
export interface DocsAssets {
  /** The API reference page's script bundle (read once; later calls answer the same asset). */
  scalarScript(): Promise<StaticAsset>;
}

/**
 * Webhook messages waiting to be delivered, and how their delivery went: durable in the process's state
 * (embedded) or a BullMQ queue of its own (Redis). At-least-once: a message survives restarts and lost workers.
 */
export interface WebhookOutbox {
  /** Keeps `message` for delivery; a message with the same id already kept is left as it is. */
  enqueue(message: WebhookMessage): Promise<void>;
  /** The delivery of the job's message, once one was enqueued. */
  state(processingId: string): Promise<DeliveryState | undefined>;
}

/** Whether a `notify_url` may be stored: checked when the job is asked for (the host is resolved once here). */
export interface NotifyUrlPolicy {
  check(url: string): Promise<{ ok: true; url: string } | NotifyUrlRefusal>;
}

/**
 * The deployment's default `notify_url`, for a job whose request names none: the caller's API key's
 * (`WEBHOOK_KEY_URLS`), else everyone's (`WEBHOOK_DEFAULT_URL`). Vetted per request, as a request's own URL is.
 */
export interface NotifyUrlDefaults {
  /** `WEBHOOK_DEFAULT_URL` */
  global?: string;
  /** `WEBHOOK_KEY_URLS`: key-id (the first 32 hex digits of the key's SHA-256, as in `caller` `key:<key-id>`) → URL. */
  perKey: ReadonlyMap<string, string>;
}

/** Everything `createApp` is given. */
export interface AppDeps {
  settings: ServiceSettings;
  uploads: UploadReceiver;
  store: ImageStore;
  processor: ImageProcessor;
  jobs: JobStore;
  queue: JobQueue;
  docs: DocsAssets;
  idempotency: IdempotencyStore;
  rateLimiter?: RateLimiter;
  redis?: RedisProbe;
  /**
   * Webhooks. Without `WEBHOOK_SECRETS` there is no outbox and `notifyUrls` refuses every URL
   * (`webhooks_not_configured`); absent only in tests that build deps by hand.
   */
  webhooks?: { outbox?: WebhookOutbox; notifyUrls: NotifyUrlPolicy; defaults?: NotifyUrlDefaults };
  /** Aborted when the process begins to stop: a `?wait=` long poll then answers the job as it stands, at once. */
  stopping?: AbortSignal;
}
