/**
 * @module
 * BMP, which libvips cannot read, decoded by bmp-ts in a worker thread: a decoder written in JavaScript would
 * otherwise hold the event loop for as long as it runs (a 6 MB 1-bit file: about 2 s, every request
 * stalled). Each decode gets a thread of its own, ended when the decode is done or the job's deadline
 * passes, so a slow or hostile file costs its own thread and its job's time, nothing else. The pixels come
 * back as RGBA, moved (not copied) from the thread.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface DecodedBmp {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel, top row first. */
  pixels: Uint8Array;
  /** Only 32-bit BMPs carry alpha, and many of those leave it all zero ("unused"): true when some is not. */
  hasAlpha: boolean;
}

/** bmp-ts's CommonJS entry, required by path inside the thread (the thread's code is plain JavaScript). */
const BMP_TS = createRequire(import.meta.url).resolve('bmp-ts');

const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bmp = require(workerData.module);
parentPort.once('message', (bytes) => {
  try {
    const decoded = bmp.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { toRGBA: true });
    const data = decoded.data;
    let hasAlpha = false;
    if (decoded.bitPP === 32) for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) { hasAlpha = true; break; }
    const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    parentPort.postMessage({ width: decoded.width, height: Math.abs(decoded.height), hasAlpha, pixels: own }, [own]);
  } catch (error) {
    parentPort.postMessage({ error: String((error && error.message) || error) });
  }
});
`;

/** The thread's own JavaScript heap; the pixels live outside it, in the budget the job was admitted with. */
const THREAD_LIMITS = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 };

/** Decodes `bytes` in a thread of its own; rejects with a "timeout" error once `deadline` (ms since epoch) passes. */
export function decodeBmp(bytes: Uint8Array, deadline: number): Promise<DecodedBmp> {
  return new Promise((resolve, reject) => {
    const thread = new Worker(THREAD_SOURCE, { eval: true, workerData: { module: BMP_TS }, resourceLimits: THREAD_LIMITS });
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Settled once the thread is gone: its memory is the job's until then.
      void thread.terminate().then(outcome, outcome);
    };
    const timer = setTimeout(() => settle(() => reject(new Error('timeout'))), Math.max(0, deadline - Date.now()));
    thread.once('message', (message: { error?: string; width: number; height: number; hasAlpha: boolean; pixels: ArrayBuffer }) => {
      if (message.error !== undefined) return settle(() => reject(new Error(`BMP decode failed: ${message.error}`)));
      settle(() =>
        resolve({ width: message.width, height: message.height, hasAlpha: message.hasAlpha, pixels: new Uint8Array(message.pixels) }),
      );
    });
    thread.once('error', (error) =>
      settle(() =>
        reject(
          /memory/i.test(String(error)) ? new Error('out of memory decoding the BMP') : new Error(`BMP decode failed: ${String(error)}`),
        ),
      ),
    );
    thread.once('exit', () => settle(() => reject(new Error('BMP decode failed: the decoder stopped'))));
    // Copied into the thread (structured clone): the caller's bytes may be a view of memory it still uses.
    thread.postMessage(bytes);
  });
}
