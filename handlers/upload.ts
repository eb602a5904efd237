/**
 * @module
 * `POST /upload`: one image in a multipart part named `file`, streamed to staging, checked by its bytes
 * and its header, then committed under a new `file_id`.
 */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { tooLarge, unsupportedMedia } from '../src/domain/errors.js';
import { sanitizeFilename } from '../src/domain/filenames.js';
import { EXTENSION_FORMATS, extensionOf, MIME_TYPES, sniffFormat } from '../src/domain/formats.js';
import type { FileRecord } from '../src/domain/jobs.js';
import { mib } from '../src/memory-budget.js';
import type { AppDeps, StagedUpload } from '../src/ports.js';
import { idempotencyKeyOf, once, replayHeaders, type Idempotent, type IdempotencyKey } from './idempotency.js';
import {
  type AppEnv,
  IdempotencyKeyHeader,
  problemResponse,
  REPLAYED_HEADER,
  REQUEST_ID_HEADER,
  routeErrors,
  UploadedFile,
} from './schemas.js';

/** An upload as `POST /upload` answers it (the record without the facts kept for planning jobs). */
export type UploadedFileRecord = Omit<FileRecord, 'pages' | 'channels' | 'progressive' | 'deep'>;

export const uploadRoute = createRoute({
  method: 'post',
  path: '/upload',
  operationId: 'uploadImage',
  summary: 'Upload an image',
  description:
    'One image in a multipart part named `file`. The format is decided from the bytes; the extension must be in ALLOWED_EXTENSIONS.',
  tags: ['images'],
  request: {
    headers: IdempotencyKeyHeader,
    body: {
      required: true,
      // A plain schema, not zod: a zod multipart schema would make the validator buffer the whole body.
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            required: ['file'],
            properties: { file: { type: 'string', format: 'binary', description: 'The image, with its file name' } },
          },
          encoding: { file: { contentType: 'image/*, application/octet-stream' } },
        },
      },
    },
  },
  responses: {
    200: {
      description: 'Stored',
      headers: { ...REQUEST_ID_HEADER, ...REPLAYED_HEADER },
      content: { 'application/json': { schema: UploadedFile } },
    },
    400: problemResponse(400, 'No file, an empty file, several files, not multipart, or a malformed Idempotency-Key'),
    408: problemResponse(
      408,
      'upload_timeout: the body stalled for UPLOAD_IDLE_TIMEOUT_SECONDS, or took longer than UPLOAD_TIMEOUT_SECONDS; the connection is closed',
    ),
    409: problemResponse(
      409,
      'idempotency_key_in_progress: a request with this Idempotency-Key is still being handled; retry after Retry-After',
    ),
    413: problemResponse(
      413,
      'Over MAX_FILE_SIZE, or over MAX_INPUT_PIXELS (width × height × frames), or over the memory budget just to be read',
    ),
    415: problemResponse(415, 'Extension not allowed, or the bytes are not an image of an allowed format'),
    422: problemResponse(422, 'idempotency_key_reused: this Idempotency-Key came with another upload'),
    ...routeErrors,
    503: problemResponse(
      503,
      'MAX_CONCURRENT_UPLOADS uploads are arriving already (too_many_uploads, refused unread, the connection closed), or the file store (or Redis) is unreachable (storage_unavailable, redis_unavailable); retry after Retry-After seconds',
    ),
    507: problemResponse(507, 'The file store is full: storage_full; retry after Retry-After seconds'),
  },
});

type UploadDeps = Pick<AppDeps, 'settings' | 'uploads' | 'store' | 'processor' | 'jobs' | 'idempotency'>;

export function uploadHandler(deps: UploadDeps): RouteHandler<typeof uploadRoute, AppEnv> {
  const intake = uploadIntake(deps);
  return async function upload(c) {
    const { body, replayed } = await intake(c.req.raw, idempotencyKeyOf(c), 'upload', async (file) => file);
    return c.json(body, 200, replayHeaders(replayed));
  };
}

/**
 * What `POST /upload` does, for it and for `POST /upload-image/`: receives the multipart body, checks and
 * commits it, and answers what `answer` makes of the stored upload, once per `Idempotency-Key` in `scope`.
 */
export function uploadIntake({ settings, uploads, store, processor, jobs, idempotency }: UploadDeps) {
  const allowedExtensions = new Set(settings.allowedExtensions);
  const allowedFormats = new Set(settings.allowedExtensions.map((ext) => EXTENSION_FORMATS[ext]));
  const extensionList = settings.allowedExtensions.map((ext) => `.${ext}`).join(', ');

  function checkFilename(raw: string): void {
    const ext = extensionOf(sanitizeFilename(raw));
    if (!ext || !allowedExtensions.has(ext)) {
      throw unsupportedMedia(
        'unsupported_extension',
        `the file name must end in one of ${extensionList}, got ${ext ? `.${ext}` : 'no extension'}`,
      );
    }
  }

  return async function intake<T>(
    request: Request,
    key: IdempotencyKey | undefined,
    scope: string,
    answer: (file: UploadedFileRecord) => Promise<T>,
  ): Promise<Idempotent<T>> {
    const rules = { fieldName: 'file', maxBytes: settings.maxFileSize, checkFilename };
    // A refusal of a body that may still be arriving (too large, too slow, too many at once) closes the connection.
    const staged = await uploads.receive(request, rules);
    const filename = sanitizeFilename(staged.filename);
    try {
      const result = await once(idempotency, scope, key, `${staged.sha256}:${filename}`, async () =>
        answer(await commit(staged, filename)),
      );
      if (result.replayed) await store.discardStaged(staged.stagingKey);
      return result;
    } catch (error) {
      await store.discardStaged(staged.stagingKey);
      throw error;
    }
  };

  async function commit(staged: StagedUpload, filename: string): Promise<UploadedFileRecord> {
    const format = sniffFormat(staged.head);
    if (!format || !allowedFormats.has(format)) {
      throw unsupportedMedia(
        'unsupported_format',
        `the file's content is not an image of an allowed format (${[...allowedFormats].join(', ')})`,
      );
    }
    const info = await processor.probe(staged, format);
    const pixels = info.width * info.height * info.pages;
    if (pixels > settings.maxInputPixels) {
      throw tooLarge(
        'too_many_pixels',
        `the image is ${info.width}×${info.height}${info.pages > 1 ? `×${info.pages} frames` : ''} = ${pixels} pixels; the limit is ${settings.maxInputPixels} (MAX_INPUT_PIXELS)`,
      );
    }
    // An upload no job could ever be admitted for (reading it alone is over the memory budget) is refused now.
    const reading = processor.readingMemory({ format, ...info, size_bytes: staged.sizeBytes });
    if (reading > settings.memoryBudgetBytes) {
      throw tooLarge(
        'out_of_memory_budget',
        `the image needs about ${mib(reading)} MiB just to be read, more than the memory budget of ${mib(settings.memoryBudgetBytes)} MiB (MEMORY_BUDGET_MB): no job could run on it; send it smaller or as JPEG or PNG`,
      );
    }
    const record: FileRecord = {
      file_id: crypto.randomUUID(),
      filename,
      content_type: MIME_TYPES[format],
      format,
      size_bytes: staged.sizeBytes,
      width: info.width,
      height: info.height,
      pages: info.pages,
      channels: info.channels,
      progressive: info.progressive,
      deep: info.deep,
      uploaded_at: new Date().toISOString(),
      sha256: staged.sha256,
    };
    // The record first, then the bytes: a process that dies in between leaves a record the retention sweep
    // removes (its upload is refused as file_missing meanwhile), never bytes that no record names.
    await jobs.putFile(record);
    try {
      await store.commitUpload(staged.stagingKey, record.file_id);
    } catch (error) {
      // The bytes may have landed all the same (an answer lost on the way back): remove them, and the record
      // only if that worked; otherwise the record stays, and retention removes both.
      await store
        .deleteUploads([record.file_id])
        .then((gone) => (gone.length ? jobs.forgetUploads(gone) : undefined))
        .catch(() => undefined);
      throw error;
    }
    const { pages: _pages, channels: _channels, progressive: _progressive, deep: _deep, ...visible } = record;
    return visible;
  }
}
