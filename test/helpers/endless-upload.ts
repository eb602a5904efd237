/**
 * @module
 * A hostile client: an endless chunked multipart body, sent until the server answers.
 */
import { request as httpRequest } from 'node:http';

/** Sends an endless chunked multipart body until the server answers; resolves with the status, or with the error code (ECONNRESET, EPIPE) when the connection broke before an answer was read. */
export function endlessUpload(baseUrl: string): Promise<number | string> {
  return new Promise((resolve) => {
    const boundary = 'endlessBOUNDARY';
    const req = httpRequest(`${baseUrl}/upload`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' },
    });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (error: NodeJS.ErrnoException) => (answered ? undefined : resolve(error.code ?? error.message)));
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="endless.png"\r\n\r\n`);
    const chunk = Buffer.alloc(256 * 1024, 0x42);
    let sent = 0;
    const pump = () => {
      while (!answered && sent < 500 * 1024 * 1024) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
    };
    pump();
  });
}
