/**
 * Headers every answer carries, over in-memory ports: `X-Content-Type-Options: nosniff` on successes,
 * problems, 304s, the docs and the metrics alike, so no client reads an answer as another type than it says.
 */
import { describe, expect, it } from 'vitest';
import { processToBytes } from '../helpers/client.js';
import { noisyJpeg } from '../helpers/images.js';
import { memoryApp } from '../helpers/memory-app.js';

describe('X-Content-Type-Options: nosniff', () => {
  it('is on every answer: success, error, 304, HEAD, 404, 413, 415, docs and metrics', async () => {
    const m = memoryApp();
    const { file, job, response: download } = await processToBytes(m.send, await noisyJpeg(40, 30), 'sniff.jpg', 'operation=grayscale');
    const processingId = String(job.processing_id);
    const json = { 'content-type': 'application/json' };
    const answers: Array<[string, Response]> = [
      ['download', download],
      ['download 304', await m.send(`/download/${processingId}`, { headers: { 'if-none-match': `"${job.result!.sha256}"` } })],
      ['download HEAD', await m.send(`/download/${processingId}`, { method: 'HEAD' })],
      ['root', await m.send('/')],
      ['health', await m.send('/health')],
      ['list', await m.send('/list')],
      ['status', await m.send(`/status/${processingId}`)],
      ['openapi', await m.send('/openapi.json')],
      ['docs', await m.send('/docs')],
      ['docs script', await m.send('/docs/scalar.js')],
      ['metrics', await m.send('/metrics')],
      ['unknown route', await m.send('/nope')],
      ['bad id', await m.send('/status/not-a-uuid')],
      ['unknown job', await m.send(`/download/${crypto.randomUUID()}`)],
      ['bad parameter', await m.send(`/process/${file.file_id}?operation=explode`, { method: 'POST' })],
      ['malformed JSON', await m.send(`/process/${file.file_id}`, { method: 'POST', headers: json, body: '{' })],
      ['too large', await m.send(`/process/${file.file_id}`, { method: 'POST', headers: json, body: ' '.repeat(70_000) })],
      [
        'wrong media type',
        await m.send(`/process/${file.file_id}`, { method: 'POST', headers: { 'content-type': 'text/html' }, body: '<b>' }),
      ],
      ['upload refused', await m.send('/upload', { method: 'POST' })],
    ];
    for (const [label, response] of answers)
      expect(response.headers.get('x-content-type-options'), `${label} (${response.status})`).toBe('nosniff');
    expect(new Set(answers.map(([, response]) => response.status))).toEqual(new Set([200, 304, 400, 404, 413, 415]));
  });
});
