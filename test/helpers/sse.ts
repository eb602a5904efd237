/**
 * @module
 * A Server-Sent Events reader for tests, written from the format's definition (the HTML standard's "event
 * stream interpretation"): lines end in LF, CRLF or CR; `:` starts a comment; a blank line dispatches.
 * It keeps everything a test may look at: events, comments and the `retry:` hint, in arrival order.
 */

export interface SseEvent {
  kind: 'event';
  id?: string;
  event?: string;
  data: string;
}
export interface SseComment {
  kind: 'comment';
  text: string;
}
export interface SseRetry {
  kind: 'retry';
  ms: number;
}
export type SseItem = SseEvent | SseComment | SseRetry;

/** Feeds text in pieces (split anywhere); `feed` returns what became complete. */
export class SseParser {
  private buffer = '';
  private pending: { id?: string; event?: string; data: string[] } = { data: [] };

  feed(text: string): SseItem[] {
    this.buffer += text;
    const out: SseItem[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone CR at the end may be the first half of a CRLF: wait for more.
      if (!match || (match[0] === '\r' && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line, out);
    }
    return out;
  }

  private line(line: string, out: SseItem[]): void {
    if (line === '') {
      if (this.pending.data.length) {
        const { id, event, data } = this.pending;
        out.push({ kind: 'event', ...(id === undefined ? {} : { id }), ...(event === undefined ? {} : { event }), data: data.join('\n') });
      }
      this.pending = { data: [] };
      return;
    }
    if (line.startsWith(':')) return void out.push({ kind: 'comment', text: line.slice(1).trim() });
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') this.pending.data.push(value);
    else if (field === 'id') this.pending.id = value;
    else if (field === 'event') this.pending.event = value;
    else if (field === 'retry' && /^\d+$/.test(value)) out.push({ kind: 'retry', ms: Number(value) });
  }
}

/** Reads SSE items from a Web `ReadableStream` in turns: some now, the rest later, nothing lost between. */
export class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private readonly parser = new SseParser();
  private readonly queued: SseItem[] = [];
  private ended = false;

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }

  /** The next item, or `undefined` once the stream has ended; rejects after `timeoutMs`. */
  async next(timeoutMs = 10_000): Promise<SseItem | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (!this.queued.length && !this.ended) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no SSE item within ${timeoutMs} ms`)), Math.max(0, deadline - Date.now()));
      });
      try {
        const { done, value } = await Promise.race([this.reader.read(), timeout]);
        if (done) this.ended = true;
        else this.queued.push(...this.parser.feed(this.decoder.decode(value, { stream: true })));
      } finally {
        clearTimeout(timer);
      }
    }
    return this.queued.shift();
  }

  /** Items until `count` events have come (or the stream ends). */
  async events(count: number, timeoutMs = 10_000): Promise<SseItem[]> {
    const items: SseItem[] = [];
    const deadline = Date.now() + timeoutMs;
    for (let events = 0; events < count;) {
      const item = await this.next(Math.max(1, deadline - Date.now()));
      if (!item) break;
      items.push(item);
      if (item.kind === 'event') events++;
    }
    return items;
  }

  /** Everything until the stream ends; a stream still open after `timeoutMs` fails the test. */
  async rest(timeoutMs = 10_000): Promise<SseItem[]> {
    const items: SseItem[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const item = await this.next(Math.max(1, deadline - Date.now())).catch((error: Error) => {
        throw new Error(`${error.message}; the stream was still open, after ${JSON.stringify(items)}`);
      });
      if (!item) return items;
      items.push(item);
    }
  }

  /** Stops reading (the server sees the client go). */
  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }
}

/** Everything a stream sends until it ends (bounded by `timeoutMs`: a stream that stays open fails the test). */
export const collectSse = (body: ReadableStream<Uint8Array>, timeoutMs = 10_000): Promise<SseItem[]> => new SseReader(body).rest(timeoutMs);

export const eventsOf = (items: SseItem[]): SseEvent[] => items.filter((item): item is SseEvent => item.kind === 'event');
