/**
 * @module
 * Uploads and results as objects in S3 (or an S3-compatible server): `<prefix>uploads/<file_id>`,
 * `<prefix>results/<name>`, and each process's staging under `<prefix>staging/<instance>/`. An upload streams
 * to S3 as it arrives (a single PUT under one part size, a multipart upload above it) through one part buffer
 * that is filled, sent and reused, so an upload never holds more than a part in memory; it is copied into
 * place when committed. A result is one PUT, which S3 makes visible whole or not at all. Loaded only when
 * `STORAGE_URL` is `s3://...`.
 *
 * (Not @aws-sdk/lib-storage's `Upload`: it gathers each part as a list of chunks and then concatenates them,
 * and with it 8 concurrent 9 MB uploads grew the process by 148 MiB, more than the uploads themselves.)
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { AppError, storageFault } from '../domain/errors.js';
import type { ByteSource, ImageStore, StagedBytes, StageOptions, StoredFile, SweptFiles } from '../ports.js';
import { ByteTap, OWN_LEFTOVER_AGE_MS, readWhole, sha256Of } from './byte-tap.js';

/** S3's smallest part size (but for the last part): an upload holds at most this much in memory. */
const PART_BYTES = 5 * 1024 * 1024;
/** DeleteObjects takes at most this many keys per call. */
const DELETE_BATCH = 1000;
/** `/health` asks S3 at most this often, and waits for it at most this long (a slow S3 is "error", not a hang). */
const HEALTH_CACHE_MS = 5000;
const HEALTH_TIMEOUT_MS = 2000;

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix, `''` or ending in `/`. */
  prefix: string;
  instanceId: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  /** Told the cause of every fault before it becomes a 503 (the client sees none of it). */
  onFault?: (error: unknown) => void;
}

export class S3Store implements ImageStore {
  readonly localFiles = false;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly stagingPrefix: string;
  /** Touches run in the background (a cache hit does not wait for them); `close` waits. */
  private readonly pending = new Set<Promise<unknown>>();

  private constructor(private readonly options: S3StoreOptions) {
    this.bucket = options.bucket;
    this.stagingPrefix = `${options.prefix}staging/${options.instanceId}/`;
    this.client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle,
      // S3-compatible servers may not know the newer default checksums; S3 itself needs none of them here.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      // Without throwOnRequestTimeout the SDK only warns; a connection dropped silently would hang a request
      // (and a job) for good. The idle timeout also ends a download whose client stopped reading for 30 s.
      requestHandler: {
        connectionTimeout: 3000,
        requestTimeout: 30_000,
        throwOnRequestTimeout: true,
        socketTimeout: 30_000,
        httpAgent: { keepAlive: true, maxSockets: 256 },
        httpsAgent: { keepAlive: true, maxSockets: 256 },
      },
    });
  }

  /** Connects and removes what this instance left staged when it last stopped (nobody else's). */
  static async open(options: S3StoreOptions): Promise<S3Store> {
    const store = new S3Store(options);
    await store.removeStaged(store.stagingPrefix, new Date(Date.now() - OWN_LEFTOVER_AGE_MS)).catch((error: unknown) => {
      throw new Error(`the S3 store s3://${options.bucket}/${options.prefix} cannot be used: ${describe(error)}`);
    });
    return store;
  }

  async stage(source: ByteSource, options: StageOptions): Promise<StagedBytes> {
    const stagingKey = randomUUID();
    const key = this.stagingPrefix + stagingKey;
    const tap = new ByteTap(options);
    // Allocated, not zeroed: pages are only made resident as bytes are copied in, so a small upload costs little.
    const part = Buffer.allocUnsafeSlow(PART_BYTES);
    let filled = 0;
    let multipart: { uploadId: string; parts: CompletedPart[] } | undefined;
    const sendPart = async () => {
      multipart ??= {
        uploadId: (
          await this.call((s3) =>
            s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: 'application/octet-stream' })),
          )
        ).UploadId!,
        parts: [],
      };
      const PartNumber = multipart.parts.length + 1;
      const { uploadId } = multipart;
      // Awaited before the buffer is filled again: the source waits meanwhile (backpressure to the client).
      const { ETag } = await this.call((s3) =>
        s3.send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber,
            Body: part.subarray(0, filled),
            ContentLength: filled,
          }),
        ),
      );
      multipart.parts.push({ ETag, PartNumber });
      filled = 0;
    };
    try {
      for await (const chunk of source) {
        tap.take(chunk);
        for (let offset = 0; offset < chunk.byteLength;) {
          const copied = Math.min(PART_BYTES - filled, chunk.byteLength - offset);
          part.set(chunk.subarray(offset, offset + copied), filled);
          filled += copied;
          offset += copied;
          if (filled === PART_BYTES) await sendPart();
        }
      }
      const done = multipart;
      if (!done) {
        await this.call((s3) =>
          s3.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: key,
              Body: part.subarray(0, filled),
              ContentLength: filled,
              ContentType: 'application/octet-stream',
            }),
          ),
        );
      } else {
        if (filled > 0) await sendPart();
        await this.call((s3) =>
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: done.uploadId,
              MultipartUpload: { Parts: done.parts },
            }),
          ),
        );
      }
    } catch (error) {
      const started = multipart;
      if (started)
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: started.uploadId }))
          .catch(() => undefined);
      // An object a lost answer may hide; otherwise the sweep removes it by age.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => undefined);
      // A fault of S3 is already a 503 (and logged); anything else is the source's (the client went away).
      throw error;
    }
    return { stagingKey, ...tap.result() };
  }

  async commitUpload(stagingKey: string, fileId: string): Promise<void> {
    const from = this.stagingPrefix + stagingKey;
    await this.call((s3) =>
      s3.send(new CopyObjectCommand({ Bucket: this.bucket, Key: this.uploadKey(fileId), CopySource: copySource(this.bucket, from) })),
    );
    await this.discardStaged(stagingKey);
  }

  async discardStaged(stagingKey: string): Promise<void> {
    // A leftover is swept by age if this fails.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.stagingPrefix + stagingKey })).catch(() => undefined);
  }

  openStaged(stagingKey: string): Promise<StoredFile | undefined> {
    return this.open(this.stagingPrefix + stagingKey);
  }

  openUpload(fileId: string): Promise<StoredFile | undefined> {
    return this.open(this.uploadKey(fileId));
  }

  async deleteUploads(fileIds: string[]): Promise<string[]> {
    const failed = new Set(
      await this.deleteKeys(
        fileIds.map((fileId) => this.uploadKey(fileId)),
        { tolerateSome: true },
      ),
    );
    return fileIds.filter((fileId) => !failed.has(this.uploadKey(fileId)));
  }

  async hasResult(name: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.resultKey(name) }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw asStorageError(error);
    }
  }

  async writeResult(name: string, bytes: Uint8Array): Promise<{ sizeBytes: number; sha256: string }> {
    await this.call((s3) =>
      s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.resultKey(name),
          Body: bytes,
          ContentLength: bytes.byteLength,
          ContentType: 'application/octet-stream',
        }),
      ),
    );
    return { sizeBytes: bytes.byteLength, sha256: sha256Of(bytes) };
  }

  openResult(name: string): Promise<StoredFile | undefined> {
    return this.open(this.resultKey(name));
  }

  /** An object's age cannot be set; copying it onto itself with new metadata makes it new. */
  async touchResult(name: string): Promise<void> {
    const key = this.resultKey(name);
    const touch = this.client
      .send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: key,
          CopySource: copySource(this.bucket, key),
          MetadataDirective: 'REPLACE',
          Metadata: { touched: new Date().toISOString() },
          ContentType: 'application/octet-stream',
        }),
      )
      .catch(() => undefined);
    this.pending.add(touch);
    void touch.finally(() => this.pending.delete(touch));
  }

  async sweep(cutoff: Date, stagedCutoff: Date): Promise<SweptFiles> {
    const results = await this.deleteOlder(`${this.options.prefix}results/`, cutoff);
    const staged = await this.removeStaged(`${this.options.prefix}staging/`, stagedCutoff);
    return { results, staged };
  }

  /** An object store has no free-space figure; this only proves, at most every few seconds, that the bucket answers. */
  freeBytes(): Promise<undefined> {
    if (!this.health || Date.now() - this.health.at > HEALTH_CACHE_MS) {
      const answered = this.call((s3) =>
        s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.options.prefix, MaxKeys: 1 }), {
          abortSignal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
        }),
      );
      this.health = { at: Date.now(), answer: answered.then(() => undefined) };
    }
    return this.health.answer;
  }

  private health: { at: number; answer: Promise<undefined> } | undefined;

  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    this.client.destroy();
  }

  private uploadKey(fileId: string): string {
    return `${this.options.prefix}uploads/${fileId}`;
  }

  private resultKey(name: string): string {
    return `${this.options.prefix}results/${name}`;
  }

  private async open(key: string): Promise<StoredFile | undefined> {
    try {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!answer.Body) return undefined;
      const file = { sizeBytes: answer.ContentLength ?? 0, body: answer.Body.transformToWebStream() as ReadableStream<Uint8Array> };
      return {
        ...file,
        bytes: () =>
          readWhole(file).catch((error: unknown) => {
            throw asStorageError(error);
          }),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw asStorageError(error);
    }
  }

  /** Objects and unfinished multipart uploads under `prefix` older than `cutoff`. */
  private async removeStaged(prefix: string, cutoff: Date): Promise<number> {
    const removed = await this.deleteOlder(prefix, cutoff);
    let token: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      const page = await this.client
        .send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, ...token }))
        .catch((error: unknown) => {
          // Some S3-compatible servers do not list multipart uploads; a bucket lifecycle rule covers those.
          if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 501) return undefined;
          throw error;
        });
      if (!page) break;
      for (const upload of page.Uploads ?? []) {
        if (upload.Key && upload.UploadId && upload.Initiated && upload.Initiated < cutoff) {
          await this.client
            .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: upload.Key, UploadId: upload.UploadId }))
            .catch(() => undefined);
        }
      }
      if (!page.IsTruncated) break;
      token = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
    }
    return removed;
  }

  /** Deletes the objects under `prefix` last modified before `cutoff`, a page at a time; returns how many. */
  private async deleteOlder(prefix: string, cutoff: Date): Promise<number> {
    let removed = 0;
    let token: string | undefined;
    do {
      const page = await this.call((s3) =>
        s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token })),
      );
      const old = (page.Contents ?? [])
        .filter((item) => item.Key && item.LastModified && item.LastModified < cutoff)
        .map((item) => item.Key!);
      await this.deleteKeys(old);
      removed += old.length;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return removed;
  }

  /**
   * Deletes the keys a batch at a time; returns those S3 would not delete (AccessDenied, an object lock...).
   * Unless told to tolerate some, any such key fails the call.
   */
  private async deleteKeys(keys: string[], { tolerateSome = false } = {}): Promise<string[]> {
    const refused: string[] = [];
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      const answer = await this.call((s3) =>
        s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } })),
      );
      // Quiet: only the keys that could not be deleted come back; the sweep must not take that for done.
      if (answer.Errors?.length) {
        this.options.onFault?.(
          new Error(`DeleteObjects left ${answer.Errors.length} keys, e.g. ${answer.Errors[0]?.Key}: ${answer.Errors[0]?.Code}`),
        );
        if (!tolerateSome) throw storageFault('unavailable');
        refused.push(...answer.Errors.map((error) => error.Key ?? ''));
      }
    }
    return refused;
  }

  /** Runs S3 calls with their faults turned into the service's storage errors. */
  private async call<T>(run: (client: S3Client) => Promise<T>): Promise<T> {
    try {
      return await run(this.client);
    } catch (error) {
      if (!(error instanceof AppError)) this.options.onFault?.(error);
      throw asStorageError(error);
    }
  }
}

function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

function isNotFound(error: unknown): boolean {
  return (
    error instanceof S3ServiceException &&
    (error.name === 'NotFound' || error.name === 'NoSuchKey' || error.$metadata.httpStatusCode === 404)
  );
}

/** Every S3 fault (unreachable, timed out, refused, misconfigured) is a 503 to the client; a 413 stays a 413. */
function asStorageError(error: unknown): unknown {
  if (error instanceof AppError) return error;
  return storageFault('unavailable');
}

function describe(error: unknown): string {
  if (error instanceof S3ServiceException) return `${error.name} (HTTP ${error.$metadata.httpStatusCode ?? '?'})`;
  return error instanceof Error ? error.message : String(error);
}
