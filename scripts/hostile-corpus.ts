/**
 * @module
 * A corpus of hostile uploads, made on demand (no binary fixtures in git): pixel bombs that declare huge
 * sizes in a few bytes, files that lie about their type, and broken images. Each case says what the
 * service must answer. `tsx scripts/hostile-corpus.ts <folder>` writes them out for manual poking.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';

export interface HostileCase {
  name: string;
  filename: string;
  bytes: Uint8Array;
  /** What `POST /upload` must answer; `accept-then-fail` = 200, and a job on it ends `failed`. */
  expect: { status: number; code: string } | 'accept-then-fail';
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const out = Buffer.alloc(body.length + 8);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), body.length + 4);
  return out;
}

/** A valid-looking PNG of a few KB whose header declares `width`×`height` RGB pixels. */
export function pngDeclaring(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const idat = deflateSync(Buffer.alloc(64 * 1024));
  return Buffer.concat([
    Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** A real small baseline JPEG with its frame header patched to claim `width`×`height`. */
export async function jpegDeclaring(width: number, height: number): Promise<Buffer> {
  const jpeg = Buffer.from(
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } })
      .jpeg()
      .toBuffer(),
  );
  for (let i = 2; i < jpeg.length - 9; i++) {
    if (jpeg[i] === 0xff && jpeg[i + 1] === 0xc0) {
      jpeg.writeUInt16BE(height, i + 5);
      jpeg.writeUInt16BE(width, i + 7);
      return jpeg;
    }
  }
  throw new Error('no SOF0 marker found');
}

/** A GIF whose `frames` frames are 1×1 pixel each, on a `width`×`height` logical screen: ~23 bytes a frame. */
export function gifWithFrames(frames: number, width = 200, height = 200): Buffer {
  const header = Buffer.alloc(13);
  header.write('GIF89a', 0, 'ascii');
  header.writeUInt16LE(width, 6);
  header.writeUInt16LE(height, 8);
  header.set([0x80, 0, 0], 10); // global colour table of 2 entries
  const palette = Buffer.from([0, 0, 0, 255, 255, 255]);
  const loop = Buffer.from([0x21, 0xff, 0x0b, ...Buffer.from('NETSCAPE2.0'), 3, 1, 0, 0, 0]);
  const frame = Buffer.from([0x21, 0xf9, 4, 0, 10, 0, 0, 0, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0]);
  return Buffer.concat([header, palette, loop, ...Array.from({ length: frames }, () => frame), Buffer.from([0x3b])]);
}

/** A BMP file header and BITMAPINFOHEADER declaring `width`×`height`, with almost no pixel data. */
export function bmpDeclaring(width: number, height: number): Buffer {
  const header = Buffer.alloc(54 + 16);
  header.write('BM', 0, 'ascii');
  header.writeUInt32LE(header.length, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(width, 18);
  header.writeInt32LE(height, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  return header;
}

export async function hostileCorpus(): Promise<HostileCase[]> {
  const noisy = sharp({
    create: { width: 64, height: 48, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } },
  });
  const photo = await noisy.clone().jpeg().toBuffer();
  const png = await noisy.clone().png().toBuffer();
  const corruptPng = Buffer.from(png);
  corruptPng.fill(0x5a, 60, corruptPng.length - 20);
  const text = (value: string) => new TextEncoder().encode(value);
  const tooManyPixels = { status: 413, code: 'too_many_pixels' };
  const notAnImage = { status: 415, code: 'unsupported_format' };
  return [
    { name: 'PNG of 3 KB declaring 30000×30000', filename: 'bomb.png', bytes: pngDeclaring(30_000, 30_000), expect: tooManyPixels },
    {
      name: 'JPEG whose header claims 65000×65000',
      filename: 'bomb.jpg',
      bytes: await jpegDeclaring(65_000, 65_000),
      expect: tooManyPixels,
    },
    { name: 'GIF of 5000 frames on a 200×200 screen', filename: 'frames.gif', bytes: gifWithFrames(5000), expect: tooManyPixels },
    { name: 'BMP header declaring 60000×60000', filename: 'bomb.bmp', bytes: bmpDeclaring(60_000, 60_000), expect: tooManyPixels },
    {
      name: 'BMP header declaring a zero width',
      filename: 'zero.bmp',
      bytes: bmpDeclaring(0, 10),
      expect: { status: 415, code: 'undecodable_image' },
    },
    {
      name: 'HTML named .jpg',
      filename: 'page.jpg',
      bytes: text('<!doctype html><html><script>alert(1)</script></html>'),
      expect: notAnImage,
    },
    { name: 'PHP named .png', filename: 'shell.png', bytes: text('<?php system($_GET["c"]); ?>'), expect: notAnImage },
    {
      name: 'ZIP named .gif',
      filename: 'archive.gif',
      bytes: Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(100)]),
      expect: notAnImage,
    },
    {
      name: 'SVG named .png',
      filename: 'vector.png',
      bytes: text('<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"><rect/></svg>'),
      expect: notAnImage,
    },
    { name: 'a fine JPEG named .exe', filename: 'photo.exe', bytes: photo, expect: { status: 415, code: 'unsupported_extension' } },
    { name: 'a fine JPEG with no extension', filename: 'photo', bytes: photo, expect: { status: 415, code: 'unsupported_extension' } },
    {
      name: 'WebP magic with garbage after it',
      filename: 'bad.webp',
      bytes: Buffer.concat([Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8 ', 'latin1'), Buffer.alloc(40, 0xee)]),
      expect: { status: 415, code: 'undecodable_image' },
    },
    {
      name: 'JPEG cut after its first third',
      filename: 'truncated.jpg',
      bytes: photo.subarray(0, Math.floor(photo.length / 3)),
      expect: 'accept-then-fail',
    },
    {
      name: 'PNG whose data after the header is overwritten',
      filename: 'corrupt.png',
      bytes: corruptPng,
      expect: { status: 415, code: 'undecodable_image' },
    },
  ];
}

if (process.argv[1]?.endsWith('hostile-corpus.ts')) {
  const folder = process.argv[2] ?? 'hostile-corpus';
  mkdirSync(folder, { recursive: true });
  for (const item of await hostileCorpus()) writeFileSync(join(folder, item.filename), item.bytes);
  console.log(`wrote the hostile corpus to ${folder}/`);
}
