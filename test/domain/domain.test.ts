import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { contentDisposition, sanitizeFilename } from '../../src/domain/filenames.js';
import { defaultOutputFormat, extensionOf, sniffFormat } from '../../src/domain/formats.js';
import { jsonDepth } from '../../src/domain/json-body.js';
import { quote } from '../../src/domain/operations.js';

const bytes = (...parts: Array<string | number[]>) =>
  new Uint8Array(parts.flatMap((part) => (typeof part === 'string' ? [...part].map((ch) => ch.charCodeAt(0)) : part)));

describe('sniffFormat', () => {
  it('tells formats by their magic numbers alone', () => {
    expect(sniffFormat(bytes([0xff, 0xd8, 0xff, 0xe1]))).toBe('jpeg');
    expect(sniffFormat(bytes('\x89PNG\r\n\x1a\n'))).toBe('png');
    expect(sniffFormat(bytes('GIF89a'))).toBe('gif');
    expect(sniffFormat(bytes('II*\0'))).toBe('tiff');
    expect(sniffFormat(bytes('MM\0*'))).toBe('tiff');
    expect(sniffFormat(bytes('RIFF', [1, 2, 3, 4], 'WEBPVP8 '))).toBe('webp');
    expect(sniffFormat(bytes([0, 0, 0, 28], 'ftypavif'))).toBe('avif');
    const bmpHead = new Uint8Array(30);
    bmpHead.set(bytes('BM'));
    bmpHead[14] = 40;
    expect(sniffFormat(bmpHead)).toBe('bmp');
  });

  it('refuses what is not an image we read', () => {
    for (const text of [
      '<html>',
      '<?php echo 1;',
      'PK\x03\x04',
      '<svg xmlns="http://www.w3.org/2000/svg"/>',
      'BM not really a bitmap header',
      'RIFF....WAVE',
      '',
    ]) {
      expect(sniffFormat(bytes(text))).toBeUndefined();
    }
  });

  it('maps input formats to the output they default to', () => {
    expect(defaultOutputFormat('bmp')).toBe('png');
    expect(defaultOutputFormat('webp')).toBe('webp');
    expect(extensionOf('a.TIF')).toBe('tif');
    expect(extensionOf('.hidden')).toBeUndefined();
    expect(extensionOf('name.')).toBeUndefined();
  });
});

describe('file names', () => {
  it('keeps the last path segment, without control characters, bounded', () => {
    expect(sanitizeFilename('C:\\Users\\me\\photo.JPG')).toBe('photo.JPG');
    expect(sanitizeFilename('../../../etc/passwd')).toBe('passwd');
    expect(sanitizeFilename('a\u0000b\r\nc.png')).toBe('abc.png');
    expect(sanitizeFilename('..')).toBe('upload');
    expect(sanitizeFilename('\u202Egnp.exe')).toBe('gnp.exe');
    const long = sanitizeFilename(`${'é'.repeat(5000)}.png`);
    expect([...long].length).toBe(200);
    expect(long.endsWith('.png')).toBe(true);
  });

  it('makes a safe Content-Disposition, with filename* for non-ASCII names', () => {
    expect(contentDisposition('cat.png')).toBe('attachment; filename="cat.png"');
    expect(contentDisposition('a"b.png')).toBe('attachment; filename="a_b.png"; filename*=UTF-8\'\'a%22b.png');
    expect(contentDisposition('café.png')).toBe('attachment; filename="caf_.png"; filename*=UTF-8\'\'caf%C3%A9.png');
  });
});

describe('loadConfig', () => {
  it('gives the contract defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 8000,
      UPLOAD_DIR: 'uploads',
      PROCESSED_DIR: 'processed',
      MAX_FILE_SIZE: 10_485_760,
      MAX_INPUT_PIXELS: 50_000_000,
      ALLOWED_EXTENSIONS: ['jpg', 'jpeg', 'png', 'gif', 'bmp', 'tiff', 'tif', 'webp'],
    });
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.WORKER_CONCURRENCY).toBeGreaterThan(0);
  });

  it('bounds status streams by the connections: 3/4 of MAX_CONNECTIONS unless set', () => {
    expect(loadConfig({})).toMatchObject({
      SSE_MAX_STREAMS: 768,
      SSE_MAX_STREAMS_PER_CLIENT: 256,
      SSE_HEARTBEAT_SECONDS: 15,
      SSE_MAX_SECONDS: 3600,
    });
    expect(loadConfig({ MAX_CONNECTIONS: '100' }).SSE_MAX_STREAMS).toBe(75);
    expect(loadConfig({ MAX_CONNECTIONS: '100', SSE_MAX_STREAMS: '99' }).SSE_MAX_STREAMS).toBe(99);
    expect(loadConfig({ SSE_MAX_STREAMS: '0' }).SSE_MAX_STREAMS).toBe(0);
  });

  it('stops with one line naming the variable and what it accepts', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ PORT: 'eighty' }, /PORT must be an integer from 1 to 65535, got "eighty"/],
      [{ MAX_FILE_SIZE: '-5' }, /MAX_FILE_SIZE must be an integer/],
      [{ ALLOWED_EXTENSIONS: 'jpg,exe' }, /ALLOWED_EXTENSIONS must be a comma-separated list of/],
      [{ REDIS_URL: 'http://x' }, /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
      [{ WORKER_CONCURRENCY: '0' }, /WORKER_CONCURRENCY=0 needs REDIS_URL/],
      [{ SSE_MAX_STREAMS: '1024' }, /SSE_MAX_STREAMS must be below MAX_CONNECTIONS/],
      [{ SSE_HEARTBEAT_SECONDS: '0' }, /SSE_HEARTBEAT_SECONDS must be an integer from 1 to 300, got "0"/],
      [{ SSE_MAX_STREAMS_PER_CLIENT: 'many' }, /SSE_MAX_STREAMS_PER_CLIENT must be an integer from 1/],
    ];
    for (const [env, message] of cases) {
      let thrown: unknown;
      try {
        loadConfig(env);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as Error).message).toMatch(message);
      expect((thrown as Error).message).not.toContain('\n');
    }
  });
});

describe('quote', () => {
  it('quotes values short, as printable ASCII', () => {
    expect(quote(undefined)).toBe('nothing');
    expect(quote('blur')).toBe('"blur"');
    expect(quote(1.5)).toBe('1.5');
    expect(quote(null)).toBe('null');
    expect(quote({ a: [1, 2, 3, 4] })).toBe('{"a":[1,2,3,...]}');
    expect(quote('k'.repeat(60_000))).toBe(`"${'k'.repeat(36)}...`);
    expect(quote('\u202egnp.exe\u0000')).toBe('"\\u202egnp.exe\\u0000"');
  });

  it('never throws and stays fast on values JSON.stringify chokes on', () => {
    let deep: unknown = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const wide = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, 'v'.repeat(100)]));
    const started = performance.now();
    expect(quote(deep)).toBe('[[[...]]]');
    expect(quote(cyclic)).toBe('{"a":1,"self":{"a":1,"self":{...}}}');
    expect(quote(wide)).toBe(`{"k0":"${'v'.repeat(30)}...`);
    expect(quote(10n)).toBe('bigint');
    expect(
      quote({
        get boom() {
          throw new Error('no');
        },
      }),
    ).toBe('object');
    expect(performance.now() - started).toBeLessThan(200);
  });
});

describe('jsonDepth', () => {
  it('counts nesting outside strings, and stops past the limit', () => {
    expect(jsonDepth('{"a": [1, "[[", {"b": "\\"}]}', 32)).toBe(3);
    expect(jsonDepth('"[[[[\\"[[["', 32)).toBe(0);
    expect(jsonDepth('['.repeat(1_000_000), 32)).toBe(33);
    expect(jsonDepth(']]]][[', 32)).toBe(2);
  });
});
