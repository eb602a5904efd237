/**
 * @module
 * How a job runs on sharp, known before it runs: the pipelines it takes (the client's operations grouped
 * where sharp's own fixed order gives the same result, so fewer whole raw images are materialised), and an
 * upper bound of the memory it needs at its peak. Both are pure functions of the upload's header facts and
 * the request: the API uses the bound to refuse a job at `POST /process`, a worker to admit jobs within its
 * budget. The figures are bytes per pixel measured on libvips 8.18 (sharp 0.35) with incompressible noise,
 * the worst case for every codec (`npm run bench:memory` checks the bound against measured peaks).
 */
import type { InputFormat, OutputFormat } from '../domain/formats.js';
import { keepsAnimation } from '../domain/formats.js';
import { outputSize, type Operation, type Size } from '../domain/operations.js';
import type { InputFacts } from '../ports.js';

export interface OutputSpec {
  format: OutputFormat;
}

/**
 * The position of each operation in sharp's own pipeline (src/pipeline.cc): within one pipeline sharp
 * always applies greyscale, then resize, blur, recomb (sepia), modulate (brightness), sharpen and linear
 * (contrast), whatever order they were asked in. A run of the client's operations in this order (each at most
 * once) is therefore one pipeline with the same meaning; any other order needs a pipeline per run.
 */
const SHARP_ORDER: Readonly<Record<Operation['operation'], number>> = {
  grayscale: 0,
  resize: 1,
  blur: 2,
  sepia: 3,
  brightness: 4,
  sharpen: 5,
  contrast: 6,
};

/** After greyscale in the same pipeline, sharp writes one band: an operation that adds colour back must wait. */
const ADDS_COLOUR: ReadonlySet<Operation['operation']> = new Set(['sepia', 'brightness']);
/**
 * With alpha, sharp premultiplies for these and undoes it after sharpen: in between, modulate (brightness),
 * which is not linear, would see premultiplied colours; alone it sees them as they are.
 */
const PREMULTIPLIES: ReadonlySet<Operation['operation']> = new Set(['resize', 'blur', 'sharpen']);
/**
 * sharp's recomb (sepia) writes floats it does not clip; later in the same pipeline linear (contrast) would
 * scale values over 255 that, one pipeline each, were clipped first. (Modulate and sharpen clip on the way.)
 */
const UNCLIPPED: Operation['operation'] = 'sepia';

/**
 * The client's operations as the pipelines that run them, in order: each a run of operations sharp applies in
 * the asked order anyway. With a JPEG output the last operation runs alone with the encoder (as it always
 * has): JPEG flattens alpha first in sharp's order, and an earlier operation must still see the alpha.
 * With alpha, brightness never shares a pipeline with an operation that premultiplies, and grayscale runs
 * alone (see `greyKeepingAlpha` in the processor). Contrast never follows sepia in a pipeline, nor joins the
 * first one unless the input is known to have 8 bits a sample.
 * @example pipelinesOf([{ operation: 'resize', width: 100 }, { operation: 'sharpen', intensity: 1 }], 'png', true).length // 1
 */
export function pipelinesOf(operations: readonly Operation[], output: OutputFormat, alpha: boolean, maybeDeep = false): Operation[][] {
  const groups: Operation[][] = [];
  for (const [index, op] of operations.entries()) {
    const group = groups.at(-1);
    const last = group?.at(-1);
    const isFinal = index === operations.length - 1;
    const joins =
      group !== undefined &&
      last !== undefined &&
      SHARP_ORDER[op.operation] > SHARP_ORDER[last.operation] &&
      !(group.some((earlier) => earlier.operation === 'grayscale') && (alpha || ADDS_COLOUR.has(op.operation))) &&
      !(
        alpha &&
        [...group, op].some((any) => any.operation === 'brightness') &&
        [...group, op].some((any) => PREMULTIPLIES.has(any.operation))
      ) &&
      !(op.operation === 'contrast' && group.some((earlier) => earlier.operation === UNCLIPPED)) &&
      // The first pipeline reads the file itself, 16 bits a sample for some PNG and TIFF, until an operation
      // (greyscale) makes it 8: contrast's offset is for one depth, so there it only ever comes first.
      !(op.operation === 'contrast' && groups.length === 1 && maybeDeep) &&
      !(isFinal && output === 'jpeg');
    if (joins) group.push(op);
    else groups.push([op]);
  }
  return groups;
}

const MIB = 1024 * 1024;
/** libvips' per-thread buffers, sharp's own state, the tile caches: measured near 40 MiB on two cores. */
const FIXED_BYTES = 64 * MIB;
/** Working memory of an operation (a blur's or sharpen's line buffers), per pixel it handles. */
const OPERATION_BPP = 2;
/** The BMP decoder thread's own JavaScript heap, at most (bmp-decoder.ts). */
const BMP_THREAD_HEAP = 80 * MIB;

/** What reading the upload alone needs (the first pipeline with one cheap operation): no job on it can need less. */
export function readingEstimate(facts: InputFacts): number {
  return memoryEstimate(facts, [{ operation: 'grayscale' }], { format: 'jpeg' });
}

/** Decoding (with an operation on the way), per input pixel: [3 bands, 4 bands]. Interlaced or 16-bit PNG and TIFF included. */
const DECODE_BPP: Readonly<Record<Exclude<InputFormat, 'bmp'>, readonly [number, number]>> = {
  jpeg: [5, 6],
  png: [8, 9.5],
  gif: [10, 11],
  tiff: [8, 10],
  webp: [12, 15],
  avif: [20, 26],
};
/** A progressive JPEG's decoder holds every coefficient of the image until the last scan. */
const PROGRESSIVE_JPEG_BPP: readonly [number, number] = [10, 12];
/**
 * Encoding, per output pixel, the compressed result held in memory included (noise does not compress):
 * [3 bands, 4 bands]. WebP, GIF and AVIF encoders hold the whole frame several times over.
 */
const ENCODE_BPP: Readonly<Record<OutputFormat, readonly [number, number]>> = {
  jpeg: [7.5, 7.5],
  png: [6, 8],
  tiff: [6, 10],
  webp: [16, 40],
  gif: [16, 16],
  avif: [40, 58],
};

/** Whether the image may carry alpha: 2 or 4 bands, or not known. */
export const mayHaveAlpha = (facts: Pick<InputFacts, 'channels'>) => facts.channels !== 1 && facts.channels !== 3;
/** Whether the file may hold 16 bits a sample: the record says so, or does not say and it is PNG or TIFF. */
export const maybeDeep = (facts: Pick<InputFacts, 'format' | 'deep'>) => facts.deep ?? (facts.format === 'png' || facts.format === 'tiff');

const bandsOf = (facts: InputFacts) => (facts.channels === undefined ? 4 : Math.min(4, Math.max(3, facts.channels)));
const per = (table: readonly [number, number], bands: number) => table[bands >= 4 ? 1 : 0];

/**
 * An upper bound, in bytes, of the memory the job needs at its peak: the largest of its pipelines' own needs
 * (what it reads, the operations' working memory, what it writes: a raw image for the next pipeline, or the
 * encoded result), plus libvips' fixed share. BMP is decoded whole (to RGBA) from the whole file.
 */
export function memoryEstimate(facts: InputFacts, operations: readonly Operation[], output: OutputSpec): number {
  const bands = bandsOf(facts);
  const frames = keepsAnimation(facts.format, facts.pages, output.format) ? facts.pages : 1;
  const pixelsOf = (size: Size) => size.width * size.height * frames;
  const groups = pipelinesOf(operations, output.format, mayHaveAlpha(facts), maybeDeep(facts));
  let size: Size = { width: facts.width, height: facts.height };
  let peak = 0;
  for (const [index, group] of groups.entries()) {
    const next = outputSize(size, group);
    const inPixels = pixelsOf(size);
    const outPixels = pixelsOf(next);
    let reads: number;
    if (index > 0) reads = inPixels * bands;
    else if (facts.format === 'bmp') reads = 2 * facts.size_bytes + BMP_THREAD_HEAP + inPixels * 4;
    else if (facts.format === 'jpeg' && facts.progressive !== false) reads = inPixels * per(PROGRESSIVE_JPEG_BPP, bands);
    else reads = inPixels * per(DECODE_BPP[facts.format], bands);
    const work = OPERATION_BPP * Math.max(inPixels, outPixels);
    const writes = index === groups.length - 1 ? outPixels * per(ENCODE_BPP[output.format], bands) : outPixels * bands;
    peak = Math.max(peak, reads + work + writes);
    size = next;
  }
  return Math.ceil(FIXED_BYTES + peak);
}
