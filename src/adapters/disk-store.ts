/**
 * @module
 * Files on disk: uploads under `uploadDir/<file_id>`, results under `processedDir/<name>`.
 * Every file is written under a `.partial-*` name, synced, then renamed, so no reader ever sees half of one;
 * leftovers of a crash are removed at open.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { ImageStore, StoredFile } from '../ports.js';
import { PARTIAL, writeFileAtomically } from './atomic-file.js';

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

/** A file name made by this service, never by a client; anything else is a bug, not a path. */
function assertSafe(name: string): string {
  if (!SAFE_NAME.test(name) || name.includes('..')) throw new Error(`unsafe storage name refused`);
  return name;
}

export class DiskStore implements ImageStore {
  private constructor(readonly uploadDir: string, readonly processedDir: string) {}

  /** Creates the folders and removes partial files a crash left behind. */
  static async open({ uploadDir, processedDir }: { uploadDir: string; processedDir: string }): Promise<DiskStore> {
    const store = new DiskStore(resolve(uploadDir), resolve(processedDir));
    for (const dir of [store.uploadDir, store.processedDir]) {
      await mkdir(dir, { recursive: true });
      for (const entry of await readdir(dir)) {
        if (entry.startsWith(PARTIAL)) await rm(join(dir, entry), { force: true });
      }
    }
    return store;
  }

  /** A fresh staging path for an incoming upload (in the upload folder, so the commit is a rename). */
  newStagingKey(): string {
    return randomUUID();
  }

  stagingPath(stagingKey: string): string {
    return join(this.uploadDir, PARTIAL + assertSafe(stagingKey));
  }

  uploadPath(fileId: string): string {
    return join(this.uploadDir, assertSafe(fileId));
  }

  resultPath(name: string): string {
    return join(this.processedDir, assertSafe(name));
  }

  async commitUpload(stagingKey: string, fileId: string): Promise<void> {
    await rename(this.stagingPath(stagingKey), this.uploadPath(fileId));
  }

  async discardStaged(stagingKey: string): Promise<void> {
    await rm(this.stagingPath(stagingKey), { force: true });
  }

  async hasResult(name: string): Promise<boolean> {
    return stat(this.resultPath(name)).then(() => true, () => false);
  }

  async writeResult(name: string, bytes: Uint8Array): Promise<{ sizeBytes: number; sha256: string }> {
    await writeFileAtomically(this.processedDir, assertSafe(name), bytes);
    return { sizeBytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  async openResult(name: string): Promise<StoredFile | undefined> {
    const path = this.resultPath(name);
    const handle = await open(path, 'r').catch(() => undefined);
    if (!handle) return undefined;
    const { size } = await handle.stat();
    const stream = createReadStream('', { fd: handle, autoClose: true });
    return { body: Readable.toWeb(stream) as ReadableStream<Uint8Array>, sizeBytes: size };
  }

  async touchResult(name: string): Promise<void> {
    const now = new Date();
    await utimes(this.resultPath(name), now, now).catch(() => undefined);
  }

  async sweep(cutoff: Date, fileIds: string[]): Promise<{ uploads: number; results: number }> {
    for (const fileId of fileIds) await rm(this.uploadPath(fileId), { force: true });
    let results = 0;
    for (const entry of await readdir(this.processedDir)) {
      if (entry.startsWith(PARTIAL)) continue;
      const path = join(this.processedDir, entry);
      const info = await stat(path).catch(() => undefined);
      if (info && info.mtime < cutoff) {
        await rm(path, { force: true });
        results += 1;
      }
    }
    return { uploads: fileIds.length, results };
  }

  async freeBytes(): Promise<number | undefined> {
    const info = await statfs(this.processedDir).catch(() => undefined);
    return info ? info.bavail * info.bsize : undefined;
  }
}
