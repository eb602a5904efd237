/**
 * Whole-file writes: small payloads (synchronous calls, fsync on the pool) and large ones (all on the pool)
 * land whole under their name, and a failed write leaves no partial file behind.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomically } from '../../src/adapters/atomic-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'atomic-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('writeFileAtomically', () => {
  it.each([
    ['a small record (synchronous path)', 1_000],
    ['a large result (thread-pool path)', 3 * 1024 * 1024],
  ])('writes %s whole, leaving only the named file', async (_label, size) => {
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = i % 251;
    await writeFileAtomically(dir, 'out.bin', bytes);
    // Compared as buffers: a deep equality over millions of elements would take seconds.
    expect((await readFile(join(dir, 'out.bin'))).equals(bytes)).toBe(true);
    // Written again, the file is replaced whole.
    await writeFileAtomically(dir, 'out.bin', 'second');
    expect(await readFile(join(dir, 'out.bin'), 'utf8')).toBe('second');
    expect(await readdir(dir)).toEqual(['out.bin']);
  });

  it.each([
    ['small', 10],
    ['large', 3 * 1024 * 1024],
  ])('removes the partial file when the %s write cannot be put in place', async (_label, size) => {
    await mkdir(join(dir, 'taken', 'inside'), { recursive: true }); // a non-empty folder where the file should go
    await expect(writeFileAtomically(dir, 'taken', new Uint8Array(size))).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['taken']);
  });
});
