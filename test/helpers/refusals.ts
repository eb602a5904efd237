/**
 * @module
 * Every way an upload's content can be refused, as raw multipart bodies cut into the chunks a client would
 * send them in: the same table runs against a real server over sockets (disk store) and against the app
 * over the memory store, each then checking that no byte of the refused upload is left anywhere.
 */
import { hostileCorpus } from '../../scripts/hostile-corpus.js';
import { noisyJpeg } from './images.js';

export const BOUNDARY = 'refusalBOUNDARY';
export const CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

export interface Part {
  name: string;
  filename?: string;
  bytes: Uint8Array | string;
}

/** A multipart body; `closed: false` leaves out the closing boundary (a malformed body). */
export function formBody(parts: Part[], { closed = true } = {}): Buffer {
  const pieces: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename === undefined ? '' : `; filename="${part.filename}"`}`;
    pieces.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n\r\n`), Buffer.from(part.bytes), Buffer.from('\r\n'));
  }
  if (closed) pieces.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(pieces);
}

/** `body` in pieces of `size` bytes (a client streaming it); one piece when `size` is undefined. */
export function inChunks(body: Buffer, size?: number): Buffer[] {
  if (!size) return [body];
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += size) chunks.push(body.subarray(offset, offset + size));
  return chunks;
}

export interface Refusal {
  name: string;
  chunks: Buffer[];
  status: number;
  code: string;
}

/** Bytes of a repeatable pattern; refused before anyone looks at what they are. */
const filler = (size: number) => Buffer.alloc(size, 0x5a);

/** The table, for a server whose MAX_FILE_SIZE is `maxFileSize`. */
export async function refusals(maxFileSize: number): Promise<Refusal[]> {
  const corpus = await hostileCorpus();
  const item = (filename: string) => corpus.find((entry) => entry.filename === filename)!;
  const photo = await noisyJpeg(200, 150);
  const file = (bytes: Uint8Array | string, filename = 'photo.jpg', name = 'file'): Part => ({ name, filename, bytes });
  return [
    {
      name: 'too many files (the first one staged whole)',
      chunks: inChunks(formBody([file(filler(60_000)), file(photo, 'second.jpg')]), 16_384),
      status: 400,
      code: 'too_many_files',
    },
    {
      name: 'too many parts (fields after the file)',
      chunks: inChunks(
        formBody([file(filler(60_000)), ...Array.from({ length: 25 }, (_, i) => ({ name: `field${i}`, bytes: 'x' }))]),
        16_384,
      ),
      status: 400,
      code: 'too_many_parts',
    },
    { name: 'a wrong extension', chunks: [formBody([file(photo, 'photo.exe')])], status: 415, code: 'unsupported_extension' },
    { name: 'too large in the first piece', chunks: [formBody([file(filler(maxFileSize + 50_000))])], status: 413, code: 'file_too_large' },
    {
      name: 'too large mid-body',
      chunks: inChunks(formBody([file(filler(maxFileSize * 3))]), 16_384),
      status: 413,
      code: 'file_too_large',
    },
    {
      name: 'too large by exactly one byte',
      chunks: inChunks(formBody([file(filler(maxFileSize + 1))]), 16_384),
      status: 413,
      code: 'file_too_large',
    },
    {
      name: 'the file in a wrongly named part',
      chunks: [formBody([file(photo, 'photo.jpg', 'image')])],
      status: 400,
      code: 'unexpected_file_field',
    },
    {
      name: 'malformed multipart (no closing boundary)',
      chunks: inChunks(formBody([file(filler(60_000))], { closed: false }), 16_384),
      status: 400,
      code: 'malformed_multipart',
    },
    { name: 'an empty file', chunks: [formBody([file('')])], status: 400, code: 'empty_file' },
    {
      name: 'not an image (HTML named .jpg)',
      chunks: [formBody([file(item('page.jpg').bytes, 'page.jpg')])],
      status: 415,
      code: 'unsupported_format',
    },
    {
      name: 'an undecodable header (WebP magic, garbage after it)',
      chunks: [formBody([file(item('bad.webp').bytes, 'bad.webp')])],
      status: 415,
      code: 'undecodable_image',
    },
    {
      name: 'too many pixels (a PNG declaring 30000×30000)',
      chunks: [formBody([file(item('bomb.png').bytes, 'bomb.png')])],
      status: 413,
      code: 'too_many_pixels',
    },
  ];
}

/** Polls `check` until it returns true, failing with `describe()` after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, describe: () => Promise<string> | string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still not so after ${timeoutMs} ms: ${await describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
