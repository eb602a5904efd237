/**
 * @module
 * A file-system fault as the client should see it, for every adapter that writes files (the disk store, the
 * embedded job store's records): a full disk is a 507, one that cannot be written or reached a 503, both
 * with Retry-After. Anything else stays what it is (a bug, a 500).
 */
import { AppError, storageFault } from '../domain/errors.js';

const UNAVAILABLE = new Set(['EROFS', 'EACCES', 'EPERM', 'EIO', 'ENOENT', 'ESTALE', 'ETIMEDOUT', 'EMFILE', 'ENFILE']);

/** @example await writeFile(path, bytes).catch((error) => { throw asStorageError(error); }) */
export function asStorageError(error: unknown): unknown {
  if (error instanceof AppError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return storageFault('full');
  if (code && UNAVAILABLE.has(code)) return storageFault('unavailable');
  return error;
}
