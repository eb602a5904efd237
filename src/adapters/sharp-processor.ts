/**
 * @module
 * The image work, on sharp (libvips): header probes and the processing pipeline. libvips runs on the libuv
 * thread pool, so the event loop stays free. BMP, which libvips cannot read, is decoded by bmp-ts and
 * handed over as raw pixels.
 */
import * as bmp from 'bmp-ts';
import { open, readFile } from 'node:fs/promises';
import sharp, { type Matrix3x3, type Sharp } from 'sharp';
import { AppError, unsupportedMedia } from '../domain/errors.js';
import { keepsAnimation, type InputFormat } from '../domain/formats.js';
import type { Operation } from '../domain/operations.js';
import type { ImageInfo, ImageProcessor, ProcessedImage, ProcessTask } from '../ports.js';
import type { DiskStore } from './disk-store.js';

/** The classic sepia tone matrix; `sepia` blends it with the identity by its intensity. */
const SEPIA = [
  [0.393, 0.769, 0.189],
  [0.349, 0.686, 0.168],
  [0.272, 0.534, 0.131],
];
/** What sharp's metadata calls each of our formats. */
const SHARP_FORMATS: Record<Exclude<InputFormat, 'bmp'>, string[]> = {
  jpeg: ['jpeg'], png: ['png'], gif: ['gif'], tiff: ['tiff'], webp: ['webp'], avif: ['heif', 'avif'],
};

/** A job's failure, with a code a client can branch on and a message free of paths. */
export class ProcessingError extends AppError {
  constructor(code: string, message: string) {
    super(422, code, message);
  }
}

export class SharpProcessor implements ImageProcessor {
  constructor(private readonly store: DiskStore, private readonly maxInputPixels: number) {}

  async probe(stagingKey: string, format: InputFormat): Promise<ImageInfo> {
    const path = this.store.stagingPath(stagingKey);
    if (format === 'bmp') return probeBmp(path);
    const meta = await sharp(path, { limitInputPixels: false }).metadata().catch(() => undefined);
    if (!meta || !SHARP_FORMATS[format].includes(meta.format ?? '') || !meta.width || !meta.height) {
      throw unsupportedMedia('undecodable_image', `the file looks like ${format} but its header cannot be read as one`);
    }
    const pages = Math.max(1, meta.pages ?? 1);
    const frameHeight = meta.pageHeight && pages > 1 ? meta.pageHeight : meta.height;
    const rotated = (meta.orientation ?? 1) >= 5;
    return rotated ? { width: frameHeight, height: meta.width, pages } : { width: meta.width, height: frameHeight, pages };
  }

  async process(task: ProcessTask): Promise<ProcessedImage> {
    try {
      return await this.run(task);
    } catch (error) {
      throw asProcessingError(error, task.timeoutSeconds);
    }
  }

  private async run(task: ProcessTask): Promise<ProcessedImage> {
    const deadline = Date.now() + task.timeoutSeconds * 1000;
    const animated = keepsAnimation(task.inputFormat, task.pages, task.output.format);
    let image = await this.open(task, animated);
    // sharp applies one pipeline's operations in its own fixed order; to honour the client's order, each
    // operation gets its own pipeline and the pixels are passed on raw (uncompressed, no re-encoding).
    for (const [index, op] of task.operations.entries()) {
      apply(image, op);
      if (index === task.operations.length - 1) break;
      const { data, info } = await image.timeout({ seconds: remaining(deadline) }).raw().toBuffer({ resolveWithObject: true });
      image = sharp(data, {
        raw: {
          width: info.width,
          height: info.height,
          channels: info.channels,
          premultiplied: info.premultiplied,
          ...(animated && info.pageHeight ? { pageHeight: info.pageHeight } : {}),
        },
        animated,
        limitInputPixels: this.maxInputPixels,
      });
    }
    encode(image, task);
    const { data, info } = await image.timeout({ seconds: remaining(deadline) }).toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: animated && info.pageHeight ? info.pageHeight : info.height };
  }

  private async open(task: ProcessTask, animated: boolean): Promise<Sharp> {
    const path = this.store.uploadPath(task.fileId);
    if (task.inputFormat !== 'bmp') {
      return sharp(path, { autoOrient: true, animated, limitInputPixels: this.maxInputPixels, failOn: 'error', sequentialRead: true });
    }
    const decoded = bmp.decode(await readFile(path), { toRGBA: true });
    const pixels = Buffer.from(decoded.data);
    const image = sharp(pixels, { raw: { width: decoded.width, height: Math.abs(decoded.height), channels: 4 }, limitInputPixels: this.maxInputPixels });
    // Only 32-bit BMPs carry alpha, and many of those leave it all zero ("unused").
    return decoded.bitPP === 32 && hasAlpha(pixels) ? image : image.removeAlpha();
  }
}

function apply(image: Sharp, op: Operation): void {
  switch (op.operation) {
    case 'resize':
      image.resize({ width: op.width, height: op.height, fit: op.fit ?? 'cover', withoutEnlargement: op.without_enlargement, kernel: 'lanczos3' });
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
      image.linear(op.intensity, 128 * (1 - op.intensity));
      return;
  }
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

function remaining(deadline: number): number {
  const seconds = Math.ceil((deadline - Date.now()) / 1000);
  if (seconds <= 0) throw new Error('timeout');
  return seconds;
}

function hasAlpha(rgba: Uint8Array): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 0) return true;
  return false;
}

/** Reads a BMP's dimensions from its header (BITMAPCOREHEADER or BITMAPINFOHEADER and later). */
async function probeBmp(path: string): Promise<ImageInfo> {
  const handle = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(26), 0, 26, 0);
    const headerSize = buffer.readUInt32LE(14);
    if (bytesRead < 26) throw unsupportedMedia('undecodable_image', 'the BMP header is truncated');
    const width = headerSize === 12 ? buffer.readUInt16LE(18) : buffer.readInt32LE(18);
    const height = Math.abs(headerSize === 12 ? buffer.readUInt16LE(20) : buffer.readInt32LE(22));
    if (width <= 0 || height <= 0) throw unsupportedMedia('undecodable_image', `the BMP header declares ${width}×${height} pixels`);
    return { width, height, pages: 1 };
  } finally {
    await handle.close();
  }
}

/** Turns whatever sharp or a decoder threw into a `ProcessingError` whose message names no path. */
function asProcessingError(error: unknown, timeoutSeconds: number): ProcessingError {
  if (error instanceof ProcessingError) return error;
  const raw = error instanceof Error ? error.message : String(error);
  const message = (raw.split('\n')[0] ?? '').replace(/(?:[A-Za-z]:)?[\\/][^\s:'"]+/g, '<file>').slice(0, 200);
  if (/timeout/i.test(raw)) return new ProcessingError('timeout', `processing took longer than the limit of ${timeoutSeconds} s (JOB_TIMEOUT_SECONDS)`);
  if (/pixel limit/i.test(raw)) return new ProcessingError('too_many_pixels', 'the image has more pixels than MAX_INPUT_PIXELS allows');
  if (/input file is missing/i.test(raw)) return new ProcessingError('file_missing', 'the uploaded file is no longer in storage');
  if (/jpeg|png|gif|tiff|webp|heif|bmp|premature|corrupt|truncat|decode|unsupported image format|invalid/i.test(raw)) {
    return new ProcessingError('decode_failed', `the image could not be decoded: ${message}`);
  }
  return new ProcessingError('processing_failed', `processing failed: ${message}`);
}
