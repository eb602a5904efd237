/**
 * @module
 * Minimal upload and job records for job-store tests: a 1×1 PNG upload and a queued grayscale job, each
 * with a fresh id; a test overrides only the fields it is about.
 */
import { randomUUID } from 'node:crypto';
import type { FileRecord, JobRecord } from '../../src/domain/jobs.js';

export const fileRecord = (overrides: Partial<FileRecord> = {}): FileRecord => ({
  file_id: randomUUID(),
  filename: 'a.png',
  content_type: 'image/png',
  format: 'png',
  size_bytes: 1,
  width: 1,
  height: 1,
  pages: 1,
  uploaded_at: new Date().toISOString(),
  sha256: 'ab',
  ...overrides,
});

export const jobRecord = (fileId: string, overrides: Partial<JobRecord> = {}): JobRecord => ({
  processing_id: randomUUID(),
  file_id: fileId,
  status: 'queued',
  cached: false,
  operations: [{ operation: 'grayscale' }],
  output: { format: 'png', quality: 80 },
  keep_metadata: false,
  cache_key: randomUUID(),
  created_at: new Date().toISOString(),
  ...overrides,
});
