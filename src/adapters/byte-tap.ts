/**
 * @module
 * What every store does to an incoming upload on its way in: count it (refusing it past the limit), hash
 * it (SHA-256, the contract's `sha256`) and keep its first bytes. One place, so the stores agree.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { tooLarge } from '../domain/errors.js';
import type { StageOptions } from '../ports.js';

/**
 * At start, a store's own leftovers (of this instance id) are those untouched for this long: an id that two
 * live processes happen to share (a fixed INSTANCE_ID) then costs nothing still being written.
 */
export const OWN_LEFTOVER_AGE_MS = 60_000;

export class ByteTap {
  private readonly hash = createHash('sha256');
  private readonly headChunks: Uint8Array[] = [];
  private headLength = 0;
  sizeBytes = 0;

  constructor(private readonly options: StageOptions) {}

  /** Takes the next chunk; throws a 413 once the total is over `maxBytes`. */
  take(chunk: Uint8Array): void {
    this.sizeBytes += chunk.byteLength;
    if (this.sizeBytes > this.options.maxBytes) throw fileTooLarge(this.options.maxBytes);
    this.hash.update(chunk);
    if (this.headLength < this.options.headBytes) {
      const part = chunk.subarray(0, this.options.headBytes - this.headLength);
      // A copy: the chunk's memory may be reused by whoever produced it.
      this.headChunks.push(Uint8Array.prototype.slice.call(part));
      this.headLength += part.byteLength;
    }
  }

  /** The figures once the last chunk is in. */
  result(): { sizeBytes: number; sha256: string; head: Uint8Array } {
    return { sizeBytes: this.sizeBytes, sha256: this.hash.digest('hex'), head: new Uint8Array(Buffer.concat(this.headChunks)) };
  }

  /** The tap as a pass-through stream stage. */
  transform(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        try {
          this.take(chunk);
          done(null, chunk);
        } catch (error) {
          done(error as Error);
        }
      },
    });
  }
}

/** The SHA-256 of `bytes`, as lower-case hex. */
export const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export const fileTooLarge = (maxBytes: number) =>
  tooLarge('file_too_large', `the file is larger than the limit of ${maxBytes} bytes (MAX_FILE_SIZE)`);

/** Reads a stream of `sizeBytes` whole into one buffer of that size (stores without a cheaper way use it for `bytes()`). */
export async function readWhole(file: { sizeBytes: number; body: ReadableStream<Uint8Array> }): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(file.sizeBytes);
  let offset = 0;
  for await (const chunk of file.body as unknown as AsyncIterable<Uint8Array>) {
    if (offset + chunk.byteLength > bytes.length) throw new Error('the stored file is longer than its recorded size');
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  if (offset !== bytes.length) throw new Error('the stored file is shorter than its recorded size');
  return bytes;
}
