/**
 * @module
 * Deadlines for a request body as it arrives: one for the whole body, one for the gap between two chunks.
 * Node's own `requestTimeout` only backs them up: it is checked every `connectionsCheckingInterval` and
 * answers a bare 408, while these name the setting and let the receiver remove what it staged first.
 */
import type { Readable } from 'node:stream';

export interface BodyDeadlines {
  /** Longest gap between two chunks while the body is being read, in ms. */
  idleMs: number;
  /** Longest time for the whole body, from the first look at it, in ms. */
  totalMs: number;
}

export type ExpiredDeadline = 'idle' | 'total';

/**
 * Calls `onExpired` once when `source` goes `idleMs` without a chunk, or has not ended `totalMs` after this
 * call; returns the function that stops watching. A gap while the source is paused by its reader (the store writes slower
 * than the client sends) is the server's, not the client's: the idle deadline starts again then.
 * @example const stop = watchBody(request, { idleMs: 30_000, totalMs: 120_000 }, (which) => refuse(which));
 */
export function watchBody(source: Readable, { idleMs, totalMs }: BodyDeadlines, onExpired: (which: ExpiredDeadline) => void): () => void {
  let stopped = false;
  const expire = (which: ExpiredDeadline) => {
    if (stopped) return;
    stop();
    onExpired(which);
  };
  const idle = setTimeout(function idleExpired() {
    if (source.readableFlowing === false) return void idle.refresh();
    expire('idle');
  }, idleMs);
  const total = setTimeout(() => expire('total'), totalMs);
  // Only listened to, never read from here: the reader's own 'data' or pipe decides the flow.
  const onChunk = () => idle.refresh();
  source.prependListener('data', onChunk);
  // Once the body is in, the client has done its part: what the server does with it is not timed here.
  source.once('end', stop);
  function stop(): void {
    stopped = true;
    clearTimeout(idle);
    clearTimeout(total);
    source.off('data', onChunk);
    source.off('end', stop);
  }
  return stop;
}
