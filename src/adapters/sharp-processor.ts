/**
 * @module
 * The image work, on sharp (libvips): header probes and the processing pipeline. libvips runs on the libuv
 * thread pool, so the event loop stays free. BMP, which libvips cannot read, is decoded by bmp-ts and
 * handed over as raw pixels. The bytes come from the store, whichever it is. Where the store keeps files on
 * a file system (`localFile`: the disk store), libvips reads them in place, as before there were other
 * stores. Otherwise a probe reads the upload's head where the header comes first (JPEG, PNG, BMP) and the
 * whole staged file for the other formats, and a job reads its input whole (bounded by MAX_FILE_SIZE).
 */
import sharp, { type Matrix3x3, type Metadata, type Sharp } from 'sharp';
import { AppError, storageFault, unsupportedMedia, type JobErrorCode } from '../domain/errors.js';
import { HEADER_FIRST_FORMATS, keepsAnimation, type InputFormat } from '../domain/formats.js';
import type { Operation } from '../domain/operations.js';
import type { OutputFormat } from '../domain/formats.js';
import { MemoryBudget, mib, type BudgetUse } from '../memory-budget.js';
import type { ImageInfo, ImageProcessor, ImageStore, InputFacts, ProcessedImage, ProcessTask, StagedBytes } from '../ports.js';
import { decodeBmp } from './bmp-decoder.js';
import { mayHaveAlpha, maybeDeep, memoryEstimate, pipelinesOf, readingEstimate } from './sharp-plan.js';

/** The classic sepia tone matrix; `sepia` blends it with the identity by its intensity. */
const SEPIA = [
  [0.393, 0.769, 0.189],
  [0.349, 0.686, 0.168],
  [0.272, 0.534, 0.131],
];
/** What sharp's metadata calls each of our formats. */
const SHARP_FORMATS: Record<Exclude<InputFormat, 'bmp'>, string[]> = {
  jpeg: ['jpeg'],
  png: ['png'],
  gif: ['gif'],
  tiff: ['tiff'],
  webp: ['webp'],
  avif: ['heif', 'avif'],
};

/** A job's failure, with a code a client can branch on and a message free of paths. */
export class ProcessingError extends AppError {
  constructor(code: JobErrorCode, message: string) {
    super(422, code, message);
  }
}

/** Whole-file probes at once (GIF, WebP, TIFF, AVIF from a store without local files: up to MAX_FILE_SIZE each in memory). */
const WHOLE_PROBES_AT_ONCE = 2;

export interface SharpProcessorOptions {
  maxInputPixels: number;
  /** The memory this process gives to jobs, all together (MEMORY_BUDGET_MB); a job larger than it is refused. */
  memoryBudgetBytes: number;
}

export class SharpProcessor implements ImageProcessor {
  private readonly wholeProbes = new Semaphore(WHOLE_PROBES_AT_ONCE);
  private readonly maxInputPixels: number;
  private readonly budget: MemoryBudget;

  constructor(
    private readonly store: ImageStore,
    { maxInputPixels, memoryBudgetBytes }: SharpProcessorOptions,
  ) {
    this.maxInputPixels = maxInputPixels;
    this.budget = new MemoryBudget(memoryBudgetBytes);
  }

  estimateMemory(facts: InputFacts, operations: readonly Operation[], output: { format: OutputFormat }): number {
    return memoryEstimate(facts, operations, output);
  }

  readingMemory(facts: InputFacts): number {
    return readingEstimate(facts);
  }

  /** How much of the budget running jobs hold, and how many jobs wait for room (metrics). */
  memoryUse(): BudgetUse {
    return this.budget.use();
  }

  async probe(staged: StagedBytes, format: InputFormat): Promise<ImageInfo> {
    const whole = staged.head.byteLength >= staged.sizeBytes;
    if (format === 'bmp') return probeBmp(staged.head);
    let meta: Metadata | undefined;
    if (staged.localFile) {
      // libvips reads only what the header needs from a file in place (the disk store), as from the head.
      meta = await readHeader(staged.localFile);
    } else {
      meta = whole || HEADER_FIRST_FORMATS.has(format) ? await readHeader(staged.head) : undefined;
      if (!meta && !whole) meta = await this.wholeProbes.run(async () => readHeader(await this.stagedBytes(staged)));
    }
    // A file libvips could not read may be a storage fault, not a bad image: the store tells (a 503 then).
    if (!meta && staged.localFile && !(await this.store.openStaged(staged.stagingKey))) throw storageFault('unavailable');
    return infoOf(meta, format);
  }

  /**
   * Runs the job once its estimated peak fits in the budget (it waits its turn until then; JOB_TIMEOUT_SECONDS
   * counts from there), and hands the result to `use` within it. The answer comes at the deadline at the
   * latest; the budget is given back once `use` is done and libvips has stopped working for the job (sharp's
   * own timeout stops a pipeline within a second of the deadline).
   */
  async process<T>(task: ProcessTask, use: (image: ProcessedImage) => Promise<T>): Promise<T> {
    const need = memoryEstimate(task.input, task.operations, task.output);
    if (!this.budget.fits(need)) throw overBudget(need, this.budget.budgetBytes);
    const giveBack = await this.budget.take(need);
    const work = { pending: Promise.resolve() as Promise<unknown> };
    try {
      return await use(await this.processWithin(task, work));
    } finally {
      void work.pending.then(giveBack, giveBack);
    }
  }

  private async processWithin(task: ProcessTask, work: { pending: Promise<unknown> }): Promise<ProcessedImage> {
    // A storage fault (a 503) is not the image's fault: it is passed on as it is, for the queue to retry.
    const stored = await this.store.openUpload(task.fileId);
    if (!stored) throw new ProcessingError('file_missing', 'the uploaded file is no longer in storage');
    // libvips reads a file the store keeps on a file system in place; BMP (decoded in JS) and other stores' bytes come whole.
    const input = stored.localFile && task.input.format !== 'bmp' ? stored.localFile : asBuffer(await stored.bytes());
    try {
      return await this.run(task, input, work);
    } catch (error) {
      if (typeof input === 'string' && !(error instanceof ProcessingError)) {
        // libvips read the file itself: whether it is still there, and readable, is the store's to say.
        if (!(await this.store.openUpload(task.fileId)))
          throw new ProcessingError('file_missing', 'the uploaded file is no longer in storage');
      }
      throw asProcessingError(error, task.timeoutSeconds);
    }
  }

  /** The staged upload whole, for formats whose header may sit anywhere (frames counted, TIFF directories). */
  private async stagedBytes(staged: StagedBytes): Promise<Buffer> {
    const file = await this.store.openStaged(staged.stagingKey);
    if (!file) throw storageFault('unavailable');
    return asBuffer(await file.bytes());
  }

  private async run(task: ProcessTask, input: Buffer | string, work: { pending: Promise<unknown> }): Promise<ProcessedImage> {
    const deadline = Date.now() + task.timeoutSeconds * 1000;
    /** Waits for a step until the deadline; the step itself is what the budget waits for. */
    const step = <T>(promise: Promise<T>): Promise<T> => {
      work.pending = promise.catch(() => undefined);
      return beforeDeadline(promise, deadline);
    };
    const animated = keepsAnimation(task.input.format, task.input.pages, task.output.format);
    let image = await this.open(task, input, animated, deadline, step);
    // sharp applies one pipeline's operations in its own fixed order. Where the client's order is that order,
    // the operations share a pipeline; elsewhere each run gets its own, and the pixels are passed on raw
    // (uncompressed, no re-encoding): a whole raw image in memory between the two.
    const alpha = mayHaveAlpha(task.input);
    const pipelines = pipelinesOf(task.operations, task.output.format, alpha, maybeDeep(task.input));
    for (const [index, operations] of pipelines.entries()) {
      const final = index === pipelines.length - 1;
      // sharp writes greyscale as one raw band, dropping alpha; between steps the same grey keeps it.
      // The first pipeline reads the file at its own depth (contrast is then its first operation); later ones 8-bit raw.
      const sampleMax = index === 0 && task.input.deep === true ? 65535 : 255;
      for (const op of operations)
        if (!final && alpha && op.operation === 'grayscale') greyKeepingAlpha(image);
        else apply(image, op, sampleMax);
      if (final) break;
      const { data, info } = await step(
        image
          .timeout({ seconds: remaining(deadline) })
          .raw()
          .toBuffer({ resolveWithObject: true }),
      );
      image = sharp(data, {
        raw: {
          width: info.width,
          height: info.height,
          channels: info.channels,
          // Not `info.premultiplied`: sharp sets it when it premultiplied on the way, but undoes that before
          // writing, so the bytes are never premultiplied (passing it on unpremultiplied them twice: alpha
          // images came out of a second step far too bright).
          ...(animated && info.pageHeight ? { pageHeight: info.pageHeight } : {}),
        },
        animated,
        limitInputPixels: this.maxInputPixels,
      });
    }
    encode(image, task);
    const { data, info } = await step(image.timeout({ seconds: remaining(deadline) }).toBuffer({ resolveWithObject: true }));
    return { data, width: info.width, height: animated && info.pageHeight ? info.pageHeight : info.height };
  }

  private async open(
    task: ProcessTask,
    input: Buffer | string,
    animated: boolean,
    deadline: number,
    step: <T>(promise: Promise<T>) => Promise<T>,
  ): Promise<Sharp> {
    if (task.input.format !== 'bmp') {
      return sharp(input, { autoOrient: true, animated, limitInputPixels: this.maxInputPixels, failOn: 'error', sequentialRead: true });
    }
    const bytes = input as Buffer;
    // The header is checked here too: the decoder allocates what the header claims before reading a pixel.
    const claimed = probeBmp(bytes);
    if (claimed.width * claimed.height > this.maxInputPixels)
      throw new ProcessingError('too_many_pixels', 'the image has more pixels than MAX_INPUT_PIXELS allows');
    const decoded = await step(decodeBmp(bytes, deadline));
    const image = sharp(decoded.pixels, {
      raw: { width: decoded.width, height: decoded.height, channels: 4 },
      limitInputPixels: this.maxInputPixels,
    });
    return decoded.hasAlpha ? image : image.removeAlpha();
  }
}

/** A job whose estimated peak is over the whole budget: it could never run here. */
function overBudget(need: number, budget: number): ProcessingError {
  return new ProcessingError(
    'out_of_memory_budget',
    `the job needs about ${mib(need)} MiB at its peak, more than this worker's memory budget of ${mib(budget)} MiB (MEMORY_BUDGET_MB); ask for a smaller size or a lighter output format`,
  );
}

/** `sampleMax`: the largest value of a sample in the pipeline (255, or 65535 for 16 bits), for contrast's mid-grey. */
function apply(image: Sharp, op: Operation, sampleMax = 255): void {
  switch (op.operation) {
    case 'resize':
      image.resize({
        width: op.width,
        height: op.height,
        fit: op.fit ?? 'cover',
        withoutEnlargement: op.without_enlargement,
        kernel: 'lanczos3',
      });
      return;
    case 'blur':
      image.blur(op.intensity);
      return;
    case 'sharpen':
      image.sharpen({ sigma: op.intensity });
      return;
    case 'grayscale':
      image.grayscale();
      return;
    case 'sepia': {
      const t = op.intensity;
      image.recomb(SEPIA.map((row, r) => row.map((value, c) => t * value + (r === c ? 1 - t : 0))) as Matrix3x3);
      return;
    }
    case 'brightness':
      image.modulate({ brightness: op.intensity });
      return;
    case 'contrast':
      image.linear(op.intensity, ((128 * sampleMax) / 255) * (1 - op.intensity));
      return;
  }
}

/** Greyscale as sharp's greyscale gives it (to within one level), as colour bands that keep the alpha band. */
function greyKeepingAlpha(image: Sharp): void {
  image.modulate({ saturation: 0 });
}

function encode(image: Sharp, { output, keepMetadata }: ProcessTask): void {
  if (keepMetadata) image.keepMetadata();
  switch (output.format) {
    case 'jpeg':
      image.flatten({ background: '#ffffff' }).jpeg({ quality: output.quality });
      return;
    case 'webp':
      image.webp({ quality: output.quality });
      return;
    case 'avif':
      image.avif({ quality: output.quality });
      return;
    case 'png':
      image.png();
      return;
    case 'gif':
      image.gif();
      return;
    case 'tiff':
      image.tiff({ compression: 'lzw' });
      return;
  }
}

/**
 * `step`, or a timeout error once the job's deadline passes: sharp's own timeout counts whole seconds per
 * pipeline, so alone it lets a job of several steps run well past JOB_TIMEOUT_SECONDS.
 */
function beforeDeadline<T>(step: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([step, late]).finally(() => clearTimeout(timer));
}

function remaining(deadline: number): number {
  const seconds = Math.ceil((deadline - Date.now()) / 1000);
  if (seconds <= 0) throw new Error('timeout');
  return seconds;
}

/** Dimensions as displayed and frames, from sharp's reading of a header; a 415 when there was none. */
function infoOf(meta: Metadata | undefined, format: Exclude<InputFormat, 'bmp'>): ImageInfo {
  if (!meta || !SHARP_FORMATS[format].includes(meta.format ?? '') || !meta.width || !meta.height) {
    throw unsupportedMedia('undecodable_image', `the file looks like ${format} but its header cannot be read as one`);
  }
  const pages = Math.max(1, meta.pages ?? 1);
  const frameHeight = meta.pageHeight && pages > 1 ? meta.pageHeight : meta.height;
  const rotated = (meta.orientation ?? 1) >= 5;
  const facts = {
    pages,
    channels: meta.channels ?? 4,
    progressive: meta.isProgressive ?? true,
    deep: meta.depth === 'ushort' || meta.depth === 'short',
  };
  return rotated ? { width: frameHeight, height: meta.width, ...facts } : { width: meta.width, height: frameHeight, ...facts };
}

/** The same memory as a Buffer (sharp's typings want one); no copy. */
const asBuffer = (bytes: Uint8Array) => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/** At most `limit` runs at once; the rest wait their turn. */
class Semaphore {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running < this.limit) this.running += 1;
    // A waiter is handed the finishing run's place, so the count never goes over the limit.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}

/** sharp's reading of a header, or `undefined` when these bytes (or the file) do not hold a readable one. */
function readHeader(bytes: Uint8Array | string): Promise<Metadata | undefined> {
  return sharp(bytes, { limitInputPixels: false })
    .metadata()
    .catch(() => undefined);
}

/** Reads a BMP's dimensions from its header (BITMAPCOREHEADER or BITMAPINFOHEADER and later). */
function probeBmp(head: Uint8Array): ImageInfo {
  if (head.byteLength < 26) throw unsupportedMedia('undecodable_image', 'the BMP header is truncated');
  const buffer = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  const headerSize = buffer.readUInt32LE(14);
  const width = headerSize === 12 ? buffer.readUInt16LE(18) : buffer.readInt32LE(18);
  const height = Math.abs(headerSize === 12 ? buffer.readUInt16LE(20) : buffer.readInt32LE(22));
  if (width <= 0 || height <= 0) throw unsupportedMedia('undecodable_image', `the BMP header declares ${width}×${height} pixels`);
  // Only 32-bit BMPs may carry alpha (the header's bit count sits at the same place in every DIB header).
  // (A header cut short of it counts as maybe alpha: the decoder will tell.)
  const at = headerSize === 12 ? 24 : 28;
  const bitCount = buffer.byteLength >= at + 2 ? buffer.readUInt16LE(at) : 32;
  // A palette larger than the bit count allows would make the decoder build it all (millions of entries).
  const colours = headerSize >= 40 && buffer.byteLength >= 50 ? buffer.readUInt32LE(46) : 0;
  if (bitCount <= 8 && colours > 2 ** bitCount)
    throw unsupportedMedia(
      'undecodable_image',
      `the BMP header declares ${colours} palette colours for ${bitCount} bits a pixel (at most ${2 ** bitCount})`,
    );
  if (bitCount > 8 && colours > 256)
    throw unsupportedMedia('undecodable_image', `the BMP header declares ${colours} palette colours (at most 256)`);
  return { width, height, pages: 1, channels: bitCount === 32 ? 4 : 3, progressive: false, deep: false };
}

/** Turns whatever sharp or a decoder threw into a `ProcessingError` whose message names no path. */
function asProcessingError(error: unknown, timeoutSeconds: number): ProcessingError {
  if (error instanceof ProcessingError) return error;
  const raw = error instanceof Error ? error.message : String(error);
  const message = (raw.split('\n')[0] ?? '').replace(/(?:[A-Za-z]:)?[\\/][^\s:'"]+/g, '<file>').slice(0, 200);
  if (/timeout/i.test(raw))
    return new ProcessingError('timeout', `processing took longer than the limit of ${timeoutSeconds} s (JOB_TIMEOUT_SECONDS)`);
  if (/ERR_WORKER_OUT_OF_MEMORY|decoding the BMP/i.test(raw))
    return new ProcessingError('decode_failed', "the BMP could not be decoded within its decoder's memory (a malformed header?)");
  if (/out of memory|memory area too large/i.test(raw))
    return new ProcessingError('out_of_memory', 'the job ran out of memory; ask for a smaller size');
  if (/pixel limit/i.test(raw)) return new ProcessingError('too_many_pixels', 'the image has more pixels than MAX_INPUT_PIXELS allows');
  if (/jpeg|png|gif|tiff|webp|heif|bmp|premature|corrupt|truncat|decode|unsupported image format|invalid/i.test(raw)) {
    return new ProcessingError('decode_failed', `the image could not be decoded: ${message}`);
  }
  return new ProcessingError('processing_failed', `processing failed: ${message}`);
}
