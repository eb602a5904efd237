/**
 * @module
 * Reads a `multipart/form-data` upload with @fastify/busboy and hands the file part's bytes to the store as
 * they arrive (the store hashes, counts and keeps them); the size limit is enforced while they arrive, and
 * nothing is buffered whole. On Node the server's own request stream is read when the entry point offers it
 * (`nodeBodyOf`): it skips the Web-stream adapters in between (a third less CPU per large upload, measured).
 * (@fastify/busboy rather than busboy: it accepts raw control bytes in a part's file name, which clients
 * such as Python's urllib3 send unescaped; the name is then sanitised, instead of the whole upload refused.)
 * It also bounds what bodies cost: how many are received at once, how long one may take and how long it may
 * stall. Whatever ends an upload, the bytes it staged are removed before it counts as done (`idle()`).
 */
import { Busboy, type BusboyInstance } from '@fastify/busboy';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { AppError, badRequest, tooLarge, unavailable } from '../domain/errors.js';
import { PROBE_HEAD_BYTES, SNIFF_BYTES } from '../domain/formats.js';
import type { ImageStore, StagedBytes, StagedUpload, UploadReceiver, UploadRules } from '../ports.js';
import { watchBody, type ExpiredDeadline } from './body-deadlines.js';
import { fileTooLarge } from './byte-tap.js';

/** The Node request stream behind a `Request`, when the runtime has one (`src/server.ts` keeps them). */
export type NodeBodyOf = (request: Request) => Readable | undefined;

const FORM_LIMITS = { fields: 20, fieldSize: 64 * 1024, parts: 40, headerPairs: 40 };
/** Multipart framing and small fields around the file. */
const DRAIN_SLACK_BYTES = 1024 * 1024;
const usage = 'send multipart/form-data with one part named "file" holding the image';
/** What a client refused for the upload cap waits before trying again: uploads last seconds. */
const BUSY_RETRY_SECONDS = 2;

/** What bodies may cost (from the configuration: MAX_CONCURRENT_UPLOADS, UPLOAD_IDLE_TIMEOUT_SECONDS, UPLOAD_TIMEOUT_SECONDS). */
export interface ReceiverLimits {
  /** Bodies received at once; one more is refused at once, unread (503 `too_many_uploads`). */
  maxConcurrent: number;
  /** Longest gap between two chunks of a body (408 `upload_timeout`). */
  idleSeconds: number;
  /** Longest time for a whole body, from the moment its headers were read (408 `upload_timeout`). */
  totalSeconds: number;
}

export const DEFAULT_RECEIVER_LIMITS: ReceiverLimits = { maxConcurrent: 32, idleSeconds: 30, totalSeconds: 120 };

export class MultipartReceiver implements UploadReceiver {
  private readonly limits: ReceiverLimits;
  /** Bodies being read now (the cap counts these). */
  private receiving = 0;
  /** Uploads not yet done: still arriving, or refused with their staged bytes still being removed. */
  private readonly unsettled = new Set<Promise<void>>();

  constructor(
    private readonly store: ImageStore,
    private readonly nodeBodyOf: NodeBodyOf = () => undefined,
    limits: Partial<ReceiverLimits> = {},
  ) {
    this.limits = { ...DEFAULT_RECEIVER_LIMITS, ...limits };
  }

  /** Resolves once no upload is arriving and every refused one's staged bytes are gone. */
  async idle(): Promise<void> {
    while (this.unsettled.size) await Promise.all(this.unsettled);
  }

  receive(request: Request, rules: UploadRules): Promise<StagedUpload> {
    const contentType = request.headers.get('content-type') ?? '';
    if (!/^multipart\/form-data/i.test(contentType)) {
      return Promise.reject(
        badRequest(
          'not_multipart',
          `POST /upload takes multipart/form-data, got ${JSON.stringify(contentType || 'no Content-Type')}: ${usage}`,
        ),
      );
    }
    // The Node stream only while nobody has read from it: once `request.body` was touched, it owns the bytes.
    const nodeBody = this.nodeBodyOf(request);
    const direct = nodeBody && !nodeBody.readableDidRead ? nodeBody : undefined;
    if (!direct && !request.body) return Promise.reject(badRequest('missing_file', `the request has no body: ${usage}`));
    if (this.receiving >= this.limits.maxConcurrent) {
      // Refused before a byte of the body is read, and the connection closed rather than drained.
      if (direct) stopReading(direct, true, true);
      return Promise.reject(
        unavailable(
          'too_many_uploads',
          `the server is receiving ${this.limits.maxConcurrent} uploads already, its limit (MAX_CONCURRENT_UPLOADS); retry after Retry-After seconds`,
          BUSY_RETRY_SECONDS,
        ).withHeaders(CLOSE),
      );
    }
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
    return this.track(
      this.stream(direct ?? Readable.fromWeb(request.body as import('node:stream/web').ReadableStream), parser, rules, Boolean(direct)),
    );
  }

  /** Counts the upload while its body is read, and keeps it unsettled until its staged bytes are kept or gone. */
  private track({ received, cleaned }: { received: Promise<StagedUpload>; cleaned: () => Promise<unknown> }): Promise<StagedUpload> {
    this.receiving += 1;
    const release = () => {
      this.receiving -= 1;
    };
    received.then(release, release);
    const done: Promise<void> = received
      .then(
        () => undefined,
        () => cleaned(),
      )
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => this.unsettled.delete(done));
    this.unsettled.add(done);
    return received;
  }

  /**
   * `serverOwned`: `source` is the server's own request stream, which must stay open for the answer.
   * `received` settles with the upload or its refusal; `cleaned()`, once it has, with the removal of what a
   * refused upload staged.
   */
  private stream(source: Readable, parser: BusboyInstance, rules: UploadRules, serverOwned: boolean) {
    let cleanup: Promise<unknown> = Promise.resolve();
    const received = new Promise<StagedUpload>((resolvePromise, rejectPromise) => {
      let settled = false;
      let staged: Promise<StagedBytes> | undefined;
      let filename = '';
      let current: Readable | undefined;
      let stopDrain: (() => void) | undefined;
      const { idleSeconds, totalSeconds } = this.limits;

      // A refusal other than "too large" or "too slow" first reads (and discards) the rest of the body, bounded
      // in bytes and by the same deadlines, so the client finishes sending and reads the answer on a live
      // connection. The others answer at once and the connection is closed (the body may never end).
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        source.unpipe(parser);
        current?.destroy();
        parser.removeAllListeners('file');
        // The store removes a stage that fails; one that completed meanwhile is discarded here.
        cleanup =
          staged
            ?.then(
              (done) => this.store.discardStaged(done.stagingKey),
              () => undefined,
            )
            .catch(() => undefined) ?? cleanup;
        if (error instanceof AppError && (error.status === 413 || error.status === 408)) {
          stopReading(source, serverOwned);
          return finish(() => rejectPromise(error.withHeaders(CLOSE)));
        }
        const drained = drain(source, rules.maxBytes + DRAIN_SLACK_BYTES);
        stopDrain = drained.stop;
        void drained.done.then((outcome) => {
          if (outcome !== 'ended') stopReading(source, serverOwned);
          const answer =
            outcome === 'too_large'
              ? tooLarge('file_too_large', `the request body is larger than the limit of ${rules.maxBytes} bytes (MAX_FILE_SIZE)`)
              : error;
          finish(() => rejectPromise(outcome === 'ended' || !(answer instanceof AppError) ? answer : answer.withHeaders(CLOSE)));
        });
      };

      const stopWatching = watchBody(source, { idleMs: idleSeconds * 1000, totalMs: totalSeconds * 1000 }, (which) => {
        if (!settled) return fail(uploadTimeout(which, this.limits));
        stopDrain?.();
      });
      const finish = (settle: () => void) => {
        stopWatching();
        settle();
      };

      parser.on('file', (field: string, fileStream: Readable, name: string) => {
        // Busboy emits a body cut short on the file stream too, after the parser's own 'error' (which answers
        // it, below), and by then the stream may be resumed or its consumer gone: unheard, it would end the
        // process (Node 24 removes the consumer's listener once the stream is destroyed).
        fileStream.on('error', () => undefined);
        if (field !== rules.fieldName) {
          fileStream.resume();
          return fail(
            badRequest(
              'unexpected_file_field',
              `the file must be in a part named "${rules.fieldName}", got a part named ${JSON.stringify(field)}`,
            ),
          );
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
        staged = this.store.stage(fileStream, {
          maxBytes: rules.maxBytes,
          headBytes: this.store.localFiles ? SNIFF_BYTES : PROBE_HEAD_BYTES,
        });
        staged.catch(fail);
      });
      parser.on('filesLimit', () => fail(badRequest('too_many_files', 'send exactly one file per upload, in the part named "file"')));
      parser.on('partsLimit', () => fail(badRequest('too_many_parts', `a multipart upload may have at most ${FORM_LIMITS.parts} parts`)));
      parser.on('fieldsLimit', () =>
        fail(badRequest('too_many_parts', `a multipart upload may have at most ${FORM_LIMITS.fields} fields`)),
      );
      parser.on('error', () => fail(badRequest('malformed_multipart', `the multipart body could not be parsed: ${usage}`)));
      parser.on('finish', () => {
        if (settled) return;
        if (!staged) return fail(badRequest('missing_file', `no part named "${rules.fieldName}" with a file: ${usage}`));
        staged.then((result) => {
          if (settled) return;
          if (result.sizeBytes === 0) return fail(badRequest('empty_file', 'the uploaded file is empty'));
          settled = true;
          finish(() => resolvePromise({ ...result, filename }));
        }, fail);
      });
      const interrupted = () => fail(new AppError(400, 'upload_interrupted', 'the upload ended before the body was complete'));
      source.on('error', interrupted);
      // A client gone mid-body may close the stream without an error: the upload must not wait for ever.
      source.on('close', () => {
        if (!source.readableEnded) interrupted();
      });
      source.pipe(parser);
    });
    return { received, cleaned: () => cleanup };
  }
}

/**
 * How long a connection whose body is refused unfinished (413, 408, 503) stays half-open after the answer.
 * Closing a socket whose peer is still sending, with unread bytes queued, makes the kernel send a reset at
 * once, and a reset can reach the client before it has read the answer (it then sees ECONNRESET or EPIPE
 * instead of the answer). So, as web servers do with a "lingering close", the answer is followed by a
 * half-close (FIN) at once and the full close only after this delay, by when the client has read the answer.
 */
const LINGER_MS = 2000;

/**
 * Defers Node's close of the request's socket after a `Connection: close` answer by LINGER_MS. With `unread`,
 * the socket also stops reading once the answer is out: Node and @hono/node-server would otherwise read (and
 * discard) the body meanwhile, which is the very work a refusal of an unread body is there to spare.
 */
function lingerBeforeClose(source: Readable, unread = false): void {
  const socket = (source as Readable & { socket?: Socket }).socket;
  if (!socket) return;
  socket.destroySoon = function lingeringClose(this: Socket) {
    this.end();
    if (unread) {
      this.pause();
      this.resume = () => this;
    }
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/** Reads and discards the rest of `source`: `too_large` past `limit` bytes, `stopped` when told to stop. */
function drain(source: Readable, limit: number): { done: Promise<'ended' | 'too_large' | 'stopped'>; stop: () => void } {
  let stop = () => {};
  const done = new Promise<'ended' | 'too_large' | 'stopped'>((resolve) => {
    if (source.readableEnded || source.destroyed) return resolve('ended');
    let seen = 0;
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limit) end('too_large');
    };
    const end = (outcome: 'ended' | 'too_large' | 'stopped') => {
      source.off('data', onData);
      resolve(outcome);
    };
    stop = () => end('stopped');
    source.on('data', onData);
    source.once('end', () => end('ended'));
    source.once('close', () => end('ended'));
    source.resume();
  });
  return { done, stop: () => stop() };
}

const CLOSE = { Connection: 'close' };

/** Stops reading a body that is refused unread; the server's own stream is closed after the answer, lingering. */
function stopReading(source: Readable, serverOwned: boolean, unread = false): void {
  // Destroying the server's own stream would reset the socket before the answer is written: stop reading
  // instead; the answer's `Connection: close` then ends the connection, a moment later (see lingerBeforeClose).
  // A Web body is pull-based: unread, it simply stops being pulled. Cancelling it mid-write instead makes
  // Node 24's own FormData body writer throw an unhandled "ReadableStream is already closed".
  source.pause();
  if (serverOwned) lingerBeforeClose(source, unread);
}

function uploadTimeout(which: ExpiredDeadline, { idleSeconds, totalSeconds }: ReceiverLimits): AppError {
  return new AppError(
    408,
    'upload_timeout',
    which === 'idle'
      ? `no bytes of the upload arrived for ${idleSeconds} s, the limit (UPLOAD_IDLE_TIMEOUT_SECONDS); send the body without pauses that long`
      : `the upload took longer than the limit of ${totalSeconds} s (UPLOAD_TIMEOUT_SECONDS); send a smaller file or over a faster link`,
  );
}
