/**
 * @module
 * An upload over its own connection, sent piece by piece as a client streams it, with a handle to stall it,
 * trickle it or cut it mid-body; and a look at what a disk store's upload folder holds.
 */
import { readdir } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { CONTENT_TYPE } from './refusals.js';

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** ms from the first byte sent to the answer's headers. */
  afterMs: number;
}

export interface RawUpload {
  req: ClientRequest;
  /** The answer, or the error code (ECONNRESET, EPIPE) when the connection broke before one was read. */
  answer: Promise<Answer | string>;
  /** Writes `chunks` in order, honouring backpressure; stops early once an answer has arrived. */
  send(chunks: Buffer[]): Promise<void>;
}

/** Opens `POST /upload` with a chunked multipart body (or `contentLength` declared) and sends nothing yet. */
export function rawUpload(baseUrl: string, { contentLength }: { contentLength?: number } = {}): RawUpload {
  const headers: Record<string, string> = { 'content-type': CONTENT_TYPE };
  if (contentLength === undefined) headers['transfer-encoding'] = 'chunked';
  else headers['content-length'] = String(contentLength);
  const req = httpRequest(`${baseUrl}/upload`, { method: 'POST', agent: false, headers });
  const started = Date.now();
  let answered = false;
  const answer = new Promise<Answer | string>((resolve) => {
    req.on('response', (res) => {
      answered = true;
      const afterMs = Date.now() - started;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, afterMs }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, afterMs }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => (answered ? undefined : resolve(error.code ?? error.message)));
  });
  const send = async (chunks: Buffer[]) => {
    for (const chunk of chunks) {
      if (answered || req.destroyed) return;
      if (!req.write(chunk))
        await new Promise((resolve) => {
          req.once('drain', resolve);
          req.once('close', resolve);
        });
    }
  };
  return { req, answer, send };
}

/** Sends the whole body as `chunks` and waits for the answer. */
export async function uploadChunks(baseUrl: string, chunks: Buffer[]): Promise<Answer | string> {
  const upload = rawUpload(baseUrl, { contentLength: chunks.reduce((sum, chunk) => sum + chunk.length, 0) });
  await upload.send(chunks);
  if (!upload.req.destroyed) upload.req.end();
  return upload.answer;
}

/** Every file under `dir`, staging folders and partial files included (folders themselves are not listed). */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => !entry.isDirectory()).map((entry) => join(entry.parentPath, entry.name));
}
