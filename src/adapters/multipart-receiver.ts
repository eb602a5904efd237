/**
 * @module
 * Reads a `multipart/form-data` upload with @fastify/busboy and hands the file part's bytes to the store as
 * they arrive (the store hashes, counts and keeps them); the size limit is enforced while they arrive, and
 * nothing is buffered whole. On Node the server's own request stream is read when the entry point offers it
 * (`nodeBodyOf`): it skips the Web-stream adapters in between (a third less CPU per large upload, measured).
 * (@fastify/busboy rather than busboy: it accepts raw control bytes in a part's file name, which clients
 * such as Python's urllib3 send unescaped; the name is then sanitised, instead of the whole upload refused.)
 */
import { Busboy, type BusboyInstance } from '@fastify/busboy';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { AppError, badRequest, tooLarge } from '../domain/errors.js';
import { PROBE_HEAD_BYTES, SNIFF_BYTES } from '../domain/formats.js';
import type { ImageStore, StagedBytes, StagedUpload, UploadReceiver, UploadRules } from '../ports.js';
import { fileTooLarge } from './byte-tap.js';

/** The Node request stream behind a `Request`, when the runtime has one (`src/server.ts` keeps them). */
export type NodeBodyOf = (request: Request) => Readable | undefined;

const FORM_LIMITS = { fields: 20, fieldSize: 64 * 1024, parts: 40, headerPairs: 40 };
/** Multipart framing and small fields around the file. */
const DRAIN_SLACK_BYTES = 1024 * 1024;
const usage = 'send multipart/form-data with one part named "file" holding the image';

export class MultipartReceiver implements UploadReceiver {
  constructor(private readonly store: ImageStore, private readonly nodeBodyOf: NodeBodyOf = () => undefined) {}

  receive(request: Request, rules: UploadRules): Promise<StagedUpload> {
    const contentType = request.headers.get('content-type') ?? '';
    if (!/^multipart\/form-data/i.test(contentType)) {
      return Promise.reject(badRequest('not_multipart', `POST /upload takes multipart/form-data, got ${JSON.stringify(contentType || 'no Content-Type')}: ${usage}`));
    }
    // The Node stream only while nobody has read from it: once `request.body` was touched, it owns the bytes.
    const nodeBody = this.nodeBodyOf(request);
    const direct = nodeBody && !nodeBody.readableDidRead ? nodeBody : undefined;
    if (!direct && !request.body) return Promise.reject(badRequest('missing_file', `the request has no body: ${usage}`));
    let parser: BusboyInstance;
    try {
      parser = new Busboy({
        headers: { 'content-type': contentType },
        // One byte over the limit reaches the store, which refuses it; busboy's 'limit' answers at once too.
        limits: { ...FORM_LIMITS, files: 1, fileSize: rules.maxBytes + 1 },
      });
    } catch {
      return Promise.reject(badRequest('malformed_multipart', `the multipart Content-Type has no boundary: ${usage}`));
    }
    return this.stream(direct ?? Readable.fromWeb(request.body as import('node:stream/web').ReadableStream), parser, rules, Boolean(direct));
  }

  /** `serverOwned`: `source` is the server's own request stream, which must stay open for the answer. */
  private stream(source: Readable, parser: BusboyInstance, rules: UploadRules, serverOwned: boolean): Promise<StagedUpload> {
    return new Promise<StagedUpload>((resolvePromise, rejectPromise) => {
      let settled = false;
      let staged: Promise<StagedBytes> | undefined;
      let filename = '';
      let current: Readable | undefined;

      // A refusal other than "too large" first reads (and discards) the rest of the body, bounded, so the client
      // finishes sending and reads the answer on a live connection. "Too large" answers at once and the
      // connection is closed (the body may never end).
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        source.unpipe(parser);
        current?.destroy();
        parser.removeAllListeners('file');
        // The store removes a stage that fails; one that completed meanwhile is discarded here.
        void staged?.then((done) => this.store.discardStaged(done.stagingKey), () => undefined).catch(() => undefined);
        if (error instanceof AppError && error.status === 413) {
          // Destroying the server's own stream would reset the socket before the 413 is written: stop reading
          // instead; the answer's `Connection: close` then ends the connection, a moment later (see lingerBeforeClose).
          if (serverOwned) {
            source.pause();
            lingerBeforeClose(source);
          } else {
            // A Web body is pull-based: unread, it simply stops being pulled. Cancelling it mid-write instead
            // makes Node 24's own FormData body writer throw an unhandled "ReadableStream is already closed".
            source.pause();
          }
          return rejectPromise(error);
        }
        drain(source, rules.maxBytes + DRAIN_SLACK_BYTES).then(
          () => rejectPromise(error),
          () => rejectPromise(tooLarge('file_too_large', `the request body is larger than the limit of ${rules.maxBytes} bytes (MAX_FILE_SIZE)`)),
        );
      };

      parser.on('file', (field: string, fileStream: Readable, name: string) => {
        if (field !== rules.fieldName) {
          fileStream.resume();
          return fail(badRequest('unexpected_file_field', `the file must be in a part named "${rules.fieldName}", got a part named ${JSON.stringify(field)}`));
        }
        current = fileStream;
        filename = name ?? '';
        try {
          rules.checkFilename(filename);
        } catch (error) {
          fileStream.resume();
          return fail(error);
        }
        fileStream.on('limit', () => fail(fileTooLarge(rules.maxBytes)));
        // Enough head to probe most formats without reading the upload again, unless the store lets libvips read it in place.
        staged = this.store.stage(fileStream, { maxBytes: rules.maxBytes, headBytes: this.store.localFiles ? SNIFF_BYTES : PROBE_HEAD_BYTES });
        staged.catch(fail);
      });
      parser.on('filesLimit', () => fail(badRequest('too_many_files', 'send exactly one file per upload, in the part named "file"')));
      parser.on('partsLimit', () => fail(badRequest('too_many_parts', `a multipart upload may have at most ${FORM_LIMITS.parts} parts`)));
      parser.on('fieldsLimit', () => fail(badRequest('too_many_parts', `a multipart upload may have at most ${FORM_LIMITS.fields} fields`)));
      parser.on('error', () => fail(badRequest('malformed_multipart', `the multipart body could not be parsed: ${usage}`)));
      parser.on('finish', () => {
        if (settled) return;
        if (!staged) return fail(badRequest('missing_file', `no part named "${rules.fieldName}" with a file: ${usage}`));
        staged.then(
          (result) => {
            if (settled) return;
            if (result.sizeBytes === 0) return fail(badRequest('empty_file', 'the uploaded file is empty'));
            settled = true;
            resolvePromise({ ...result, filename });
          },
          fail,
        );
      });
      source.on('error', () => fail(new AppError(400, 'upload_interrupted', 'the upload ended before the body was complete')));
      source.pipe(parser);
    });
  }
}

/**
 * How long a connection refused with 413 stays half-open after the answer. Closing a socket whose peer is still
 * sending, with unread bytes queued, makes the kernel send a reset at once, and a reset can reach the client
 * before it has read the answer (it then sees ECONNRESET or EPIPE instead of the 413). So, as web servers do
 * with a "lingering close", the answer is followed by a half-close (FIN) at once and the full close only after
 * this delay, by when the client has read the answer. Nothing more is read meanwhile: the stream stays paused.
 */
const LINGER_MS = 2000;

/** Defers Node's close of the request's socket after a `Connection: close` answer by LINGER_MS. */
function lingerBeforeClose(source: Readable): void {
  const socket = (source as Readable & { socket?: Socket }).socket;
  if (!socket) return;
  socket.destroySoon = function lingeringClose(this: Socket) {
    this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/** Reads and discards the rest of `source`; rejects (and destroys it) past `limit` bytes. */
function drain(source: Readable, limit: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (source.readableEnded || source.destroyed) return resolve();
    let seen = 0;
    source.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limit) {
        source.destroy();
        reject(new Error('body too large'));
      }
    });
    source.once('end', () => resolve());
    source.once('close', () => resolve());
    source.resume();
  });
}
