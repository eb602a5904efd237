/**
 * @module
 * Uploads and results held in this process's memory, within a byte budget: for tests (handler units with
 * plain `Request`s and no file system) and throwaway runs. Nothing survives the process.
 */
import { randomUUID } from 'node:crypto';
import { storageFault } from '../domain/errors.js';
import type { ByteSource, ImageStore, StagedBytes, StageOptions, StoredFile, SweptFiles } from '../ports.js';
import { ByteTap, sha256Of } from './byte-tap.js';

interface Entry {
  bytes: Uint8Array;
  modifiedAt: Date;
}

export interface MemoryStoreOptions {
  /** Bytes held at most, staged ones included; past it a write is a 507 `storage_full`. */
  maxBytes?: number;
  now?: () => Date;
}

export class MemoryStore implements ImageStore {
  readonly localFiles = false;
  private readonly staged = new Map<string, Entry>();
  private readonly uploads = new Map<string, Entry>();
  private readonly results = new Map<string, Entry>();
  /** Bytes held, plus those of stages still arriving. */
  private used = 0;
  private readonly maxBytes: number;
  private readonly now: () => Date;

  constructor({ maxBytes = 512 * 1024 * 1024, now = () => new Date() }: MemoryStoreOptions = {}) {
    this.maxBytes = maxBytes;
    this.now = now;
  }

  async stage(source: ByteSource, options: StageOptions): Promise<StagedBytes> {
    const tap = new ByteTap(options);
    const chunks: Uint8Array[] = [];
    let reserved = 0;
    try {
      for await (const chunk of source) {
        tap.take(chunk);
        this.reserve(chunk.byteLength);
        reserved += chunk.byteLength;
        chunks.push(Uint8Array.prototype.slice.call(chunk));
      }
    } catch (error) {
      this.used -= reserved;
      throw error;
    }
    const stagingKey = randomUUID();
    this.staged.set(stagingKey, { bytes: new Uint8Array(Buffer.concat(chunks)), modifiedAt: this.now() });
    return { stagingKey, ...tap.result() };
  }

  async commitUpload(stagingKey: string, fileId: string): Promise<void> {
    const entry = this.staged.get(stagingKey);
    if (!entry) throw storageFault('unavailable');
    this.staged.delete(stagingKey);
    this.uploads.set(fileId, { ...entry, modifiedAt: this.now() });
  }

  async discardStaged(stagingKey: string): Promise<void> {
    this.drop(this.staged, stagingKey);
  }

  async openStaged(stagingKey: string): Promise<StoredFile | undefined> {
    return opened(this.staged.get(stagingKey));
  }

  async openUpload(fileId: string): Promise<StoredFile | undefined> {
    return opened(this.uploads.get(fileId));
  }

  async deleteUploads(fileIds: string[]): Promise<string[]> {
    for (const fileId of fileIds) this.drop(this.uploads, fileId);
    return fileIds;
  }

  async hasResult(name: string): Promise<boolean> {
    return this.results.has(name);
  }

  async writeResult(name: string, bytes: Uint8Array): Promise<{ sizeBytes: number; sha256: string }> {
    this.reserve(bytes.byteLength);
    this.drop(this.results, name);
    this.results.set(name, { bytes: Uint8Array.prototype.slice.call(bytes), modifiedAt: this.now() });
    return { sizeBytes: bytes.byteLength, sha256: sha256Of(bytes) };
  }

  async openResult(name: string): Promise<StoredFile | undefined> {
    return opened(this.results.get(name));
  }

  async touchResult(name: string): Promise<void> {
    const entry = this.results.get(name);
    if (entry) entry.modifiedAt = this.now();
  }

  async sweep(cutoff: Date, stagedCutoff: Date): Promise<SweptFiles> {
    return { results: this.dropOlder(this.results, cutoff), staged: this.dropOlder(this.staged, stagedCutoff) };
  }

  async freeBytes(): Promise<number> {
    return this.maxBytes - this.used;
  }

  async close(): Promise<void> {}

  private reserve(bytes: number): void {
    if (this.used + bytes > this.maxBytes) throw storageFault('full');
    this.used += bytes;
  }

  private drop(map: Map<string, Entry>, key: string): boolean {
    const entry = map.get(key);
    if (!entry) return false;
    map.delete(key);
    this.used -= entry.bytes.byteLength;
    return true;
  }

  private dropOlder(map: Map<string, Entry>, cutoff: Date): number {
    let dropped = 0;
    for (const [key, entry] of map) {
      if (entry.modifiedAt < cutoff && this.drop(map, key)) dropped += 1;
    }
    return dropped;
  }
}

function opened(entry: Entry | undefined): StoredFile | undefined {
  if (!entry) return undefined;
  const { bytes } = entry;
  return {
    sizeBytes: bytes.byteLength,
    bytes: async () => bytes,
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        if (bytes.byteLength) controller.enqueue(bytes);
        controller.close();
      },
    }),
  };
}
