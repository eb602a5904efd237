/**
 * @module
 * Test images, made at test time (no binary fixtures in git), and ways to look at results by their pixels.
 */
import * as bmp from 'bmp-ts';
import sharp from 'sharp';

/** A noisy photo-like JPEG: real entropy, so codecs do real work. */
export function noisyJpeg(width = 320, height = 240): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

export function solid(
  width: number,
  height: number,
  color: { r: number; g: number; b: number; alpha?: number },
  format: 'png' | 'jpeg' | 'webp' | 'tiff' = 'png',
): Promise<Buffer> {
  const channels = color.alpha === undefined ? 3 : 4;
  return sharp({ create: { width, height, channels, background: color } })
    .toFormat(format)
    .toBuffer();
}

/** Left half red, right half blue: tells orientation and cropping apart. */
export function halves(width: number, height: number): Promise<Buffer> {
  const half = Math.floor(width / 2);
  return sharp({ create: { width, height, channels: 3, background: { r: 0, g: 0, b: 255 } } })
    .composite([{ input: { create: { width: half, height, channels: 3, background: { r: 255, g: 0, b: 0 } } }, left: 0, top: 0 }])
    .png()
    .toBuffer();
}

/** An animated GIF (or WebP) of solid frames, one colour each. */
export async function animated(format: 'gif' | 'webp', frames = 3, width = 40, height = 30): Promise<Buffer> {
  const colours = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 255, 0],
  ];
  const images = await Promise.all(
    Array.from({ length: frames }, (_, i) => {
      const [r, g, b] = colours[i % colours.length]!;
      return sharp({ create: { width, height, channels: 3, background: { r: r!, g: g!, b: b! } } })
        .png()
        .toBuffer();
    }),
  );
  return sharp(images, { join: { animated: true } })
    .toFormat(format, { delay: 100 } as object)
    .toBuffer();
}

/** A 24-bit BMP, encoded with bmp-ts (bottom-up rows, as most BMPs are). */
export function bmp24(width: number, height: number, rgb: [number, number, number]): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([0, rgb[2], rgb[1], rgb[0]], i * 4); // ABGR
  return bmp.encode({ data, bitPP: 24, width, height } as unknown as Parameters<typeof bmp.encode>[0]).data;
}

/** The file and DIB headers of an uncompressed-or-RLE BMP with a palette (BITMAPINFOHEADER). */
function bmpWithPalette(width: number, height: number, bits: 1 | 8, colours: number, compression: number, data: Buffer): Buffer {
  const offset = 54 + colours * 4;
  const file = Buffer.alloc(offset + data.length);
  file.write('BM');
  file.writeUInt32LE(file.length, 2);
  file.writeUInt32LE(offset, 10);
  file.writeUInt32LE(40, 14);
  file.writeInt32LE(width, 18);
  file.writeInt32LE(height, 22);
  file.writeUInt16LE(1, 26);
  file.writeUInt16LE(bits, 28);
  file.writeUInt32LE(compression, 30);
  file.writeUInt32LE(data.length, 34);
  file.writeUInt32LE(colours, 46);
  for (let i = 0; i < colours; i += 1)
    file.writeUInt32LE((Math.round((i * 255) / Math.max(1, colours - 1)) * 0x010101) & 0xffffff, 54 + i * 4);
  data.copy(file, offset);
  return file;
}

/** A BMP of `bits` per pixel with a full palette and rows of arbitrary bytes: the JavaScript decoder's costliest common case. */
export function paletteBmp(width: number, height: number, bits: 1 | 8): Buffer {
  const rows = Buffer.alloc(Math.ceil((width * bits) / 32) * 4 * height);
  for (let i = 0; i < rows.length; i += 1) rows[i] = (i * 2654435761) >>> 24;
  return bmpWithPalette(width, height, bits, 2 ** bits, 0, rows);
}

/** An RLE8 BMP of about a kilobyte that declares `width`×`height` pixels (the decoder allocates them all). */
export function rle8Bmp(width: number, height: number): Buffer {
  return bmpWithPalette(width, height, 8, 256, 1, Buffer.from([0, 1]));
}

/** A JPEG whose EXIF says "rotate 90° clockwise to display" (orientation 6). */
export function rotatedJpeg(width: number, height: number): Promise<Buffer> {
  return sharp(Buffer.alloc(width * height * 3, 200), { raw: { width, height, channels: 3 } })
    .jpeg()
    .withMetadata({ orientation: 6, exif: { IFD0: { Copyright: 'test-exif-marker' } } })
    .toBuffer();
}

export interface Look {
  format?: string;
  width: number;
  height: number;
  pages: number;
  channels: number;
  hasExif: boolean;
  /** Mean of each channel, 0–255. */
  means: number[];
  /** Standard deviation of each channel. */
  stdevs: number[];
}

/** Decodes an image and summarises it by its pixels. */
export async function look(bytes: Uint8Array): Promise<Look> {
  const meta = await sharp(bytes).metadata();
  const stats = await sharp(bytes).stats();
  const pages = meta.pages ?? 1;
  return {
    format: meta.format,
    width: meta.width!,
    height: pages > 1 && meta.pageHeight ? meta.pageHeight : meta.height!,
    pages,
    channels: meta.channels!,
    hasExif: meta.exif !== undefined,
    means: stats.channels.map((c) => c.mean),
    stdevs: stats.channels.map((c) => c.stdev),
  };
}

/** The RGB of one pixel. */
export async function pixel(bytes: Uint8Array, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const offset = (y * info.width + x) * info.channels;
  return [...data.subarray(offset, offset + 3)];
}
