/**
 * @module
 * Image formats: what can come in, what can go out, and how a format is told from its bytes.
 * Names and `Content-Type` headers are never trusted; only the magic numbers decide.
 */

export const INPUT_FORMATS = ['jpeg', 'png', 'gif', 'tiff', 'webp', 'bmp', 'avif'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

export const OUTPUT_FORMATS = ['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Extensions a deployment may allow, and the format each one names. */
export const EXTENSION_FORMATS: Readonly<Record<string, InputFormat>> = {
  jpg: 'jpeg',
  jpeg: 'jpeg',
  png: 'png',
  gif: 'gif',
  tif: 'tiff',
  tiff: 'tiff',
  webp: 'webp',
  bmp: 'bmp',
  avif: 'avif',
};

export const MIME_TYPES: Readonly<Record<InputFormat, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  tiff: 'image/tiff',
  webp: 'image/webp',
  bmp: 'image/bmp',
  avif: 'image/avif',
};

export const FILE_EXTENSIONS: Readonly<Record<OutputFormat, string>> = {
  jpeg: 'jpg',
  png: 'png',
  webp: 'webp',
  avif: 'avif',
  gif: 'gif',
  tiff: 'tiff',
};

/** Output formats whose encoders use `quality`; the others ignore it. */
export const LOSSY_FORMATS: ReadonlySet<OutputFormat> = new Set(['jpeg', 'webp', 'avif']);

/** Formats that hold animation, as input and as output. */
const ANIMATED_FORMATS: ReadonlySet<string> = new Set(['gif', 'webp']);

/** True when the result keeps every frame: animated input, and an output that can hold frames. */
export function keepsAnimation(input: InputFormat, pages: number, output: OutputFormat): boolean {
  return pages > 1 && ANIMATED_FORMATS.has(input) && ANIMATED_FORMATS.has(output);
}

/** How many leading bytes `sniffFormat` needs. */
export const SNIFF_BYTES = 32;

/**
 * Leading bytes an upload keeps in memory: enough for the header of almost every JPEG, PNG and BMP (EXIF,
 * ICC and XMP included), so those are probed without reading the stored file again.
 */
export const PROBE_HEAD_BYTES = 256 * 1024;

/** Formats whose header (size, orientation; one frame) comes before the pixels. Others are probed whole. */
export const HEADER_FIRST_FORMATS: ReadonlySet<InputFormat> = new Set(['jpeg', 'png', 'bmp']);

const ascii = (bytes: Uint8Array, from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));

/**
 * Tells the format from the first bytes of a file, or `undefined` when they are not an image we read.
 * @example sniffFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])) // 'jpeg'
 */
export function sniffFormat(head: Uint8Array): InputFormat | undefined {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.length >= 8 && ascii(head, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (head.length >= 6 && (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a')) return 'gif';
  if (head.length >= 4 && (ascii(head, 0, 4) === 'II*\0' || ascii(head, 0, 4) === 'MM\0*')) return 'tiff';
  if (head.length >= 12 && ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'webp';
  if (head.length >= 26 && ascii(head, 0, 2) === 'BM' && isBmpInfoHeader(head)) return 'bmp';
  if (head.length >= 12 && ascii(head, 4, 8) === 'ftyp' && ['avif', 'avis'].includes(ascii(head, 8, 12))) return 'avif';
  return undefined;
}

/** "BM" alone is too weak a signature: also require a known DIB header size. */
function isBmpInfoHeader(head: Uint8Array): boolean {
  const size = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(14, true);
  return [12, 40, 52, 56, 64, 108, 124].includes(size);
}

/** The output a job gets when it names none: the input's own format where it can be written. */
export function defaultOutputFormat(input: InputFormat): OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(input) ? (input as OutputFormat) : 'png';
}

/** The lower-cased extension of a file name, with no dot, or `undefined`. */
export function extensionOf(filename: string): string | undefined {
  const dot = filename.lastIndexOf('.');
  return dot > 0 && dot < filename.length - 1 ? filename.slice(dot + 1).toLowerCase() : undefined;
}
