/**
 * @module
 * `GET /status/{processing_id}` with `Accept: text/event-stream`: the job's changes as Server-Sent Events.
 *
 * - Each event's `data` is the job's status as `GET /status` answers it; its `id` is the status's place in
 *   the job's life (1 queued, 2 processing, 3 completed or failed). A job only moves forward, so the ids of
 *   one job's events rise, and any API process gives the same id to the same state: a client that
 *   reconnects anywhere with `Last-Event-ID` gets only what it has not seen.
 * - The stream begins with a `retry:` hint, sends a comment line every SSE_HEARTBEAT_SECONDS, and closes
 *   after the final event. A client that reconnects after the final event (EventSource does) gets a 204,
 *   which tells EventSource to stop.
 * - A change reaches the stream by the job store's notice (Redis pub/sub in Redis mode); each heartbeat
 *   also reads the job (within half a beat, spread over the streams, so 768 reads do not land at once),
 *   so a lost notice delays an event by about one heartbeat at most.
 * - Bounded: SSE_MAX_STREAMS per process (503), SSE_MAX_STREAMS_PER_CLIENT per API key or address (429),
 *   SSE_MAX_SECONDS per stream (then closed; the client reconnects), and a backlog a client never reads.
 * - A stopping process ends its streams at once with a comment saying so; clients reconnect to another.
 *
 * Only Web APIs (ReadableStream, TextEncoder, timers): the same code runs on Node and in tests.
 */
import { tooMany, unavailable } from '../src/domain/errors.js';
import { isFinished, STATUS_RANK, type JobRecord, type JobStatus } from '../src/domain/jobs.js';
import type { JobStore, StatusStreamLimits } from '../src/ports.js';

export const EVENT_STREAM = 'text/event-stream';
/** How long a client waits before it reconnects (the `retry:` hint), in milliseconds. */
export const RETRY_MS = 2000;
/**
 * A client that has left this many chunks unread is cut (the stream errors, which closes its connection):
 * it stopped reading, and its backlog would only grow. A safeguard: the runtime moves chunks into the
 * socket's own buffers first, so heartbeats alone take very long to fill it.
 */
const MAX_UNREAD_CHUNKS = 64;

/** The `id:` of the event that shows a job at `status`: 1 queued, 2 processing, 3 completed or failed. */
export const eventIdOf = (status: JobStatus): number => STATUS_RANK[status] + 1;

/**
 * The `Last-Event-ID` a client sent, as a number; 0 (send everything) when absent or not an id this
 * service gives (a client sends back only what it was given, so anything else is noise, not an error).
 */
export function lastEventId(header: string | undefined): number {
  const text = header?.trim() ?? '';
  return /^[1-3]$/.test(text) ? Number(text) : 0;
}

/**
 * Whether the client asks for a stream: `text/event-stream` in `Accept` with a non-zero weight, at least as
 * preferred as JSON. (A wildcard Accept, or none, gets JSON as before.)
 */
export function wantsEventStream(accept: string | undefined): boolean {
  if (!accept) return false;
  let stream = -1;
  let json = -1;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const q = params.find((param) => param.startsWith('q='));
    const weight = q ? Number(q.slice(2)) : 1;
    if (!(weight >= 0)) continue;
    if (type === EVENT_STREAM) stream = Math.max(stream, weight);
    else if (type === 'application/json') json = Math.max(json, weight);
  }
  return stream > 0 && stream >= json;
}

export interface StreamDeps {
  jobs: Pick<JobStore, 'getJob' | 'onChange'>;
  /** The job as `GET /status` shows it (with its notification, when it has one). */
  view(job: JobRecord): Promise<unknown>;
}

const encoder = new TextEncoder();

/** A stream's headers: never cached, never buffered by a proxy (nginx reads X-Accel-Buffering). */
export const STREAM_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': `${EVENT_STREAM}; charset=utf-8`,
  'Cache-Control': 'no-store',
  'X-Accel-Buffering': 'no',
};

/** Every status stream this process holds: admission by the limits, one shared heartbeat, and the stop. */
export class StatusStreams {
  private readonly streams = new Set<StatusStream>();
  private readonly perClient = new Map<string, number>();
  private ticker: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly limits: StatusStreamLimits,
    private readonly deps: StreamDeps,
    private readonly stopping?: AbortSignal,
  ) {
    stopping?.addEventListener('abort', () => {
      for (const stream of [...this.streams]) stream.end(': the service is stopping; reconnect\n\n');
    });
  }

  /** How many streams are open now. */
  get size(): number {
    return this.streams.size;
  }

  /**
   * What a HEAD with `Accept: text/event-stream` gets: the status and headers the GET would (204, 429,
   * 503 or 200), without a stream to hold a place.
   */
  head(job: JobRecord, after: number, client: string): Response {
    return this.refusal(job, after, client) ?? new Response(null, { status: 200, headers: STREAM_HEADERS });
  }

  /**
   * The response streaming `job`'s changes to `client` (an API key's hash or an address), events with ids
   * above `after` only; a 204 when `after` is the final event already. Throws the 429/503 of the limits.
   */
  open(job: JobRecord, after: number, client: string): Response {
    const refusal = this.refusal(job, after, client);
    if (refusal) return refusal;
    const held = this.perClient.get(client) ?? 0;
    this.perClient.set(client, held + 1);
    const release = () => {
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left > 0) this.perClient.set(client, left);
      else this.perClient.delete(client);
      this.streams.delete(stream);
      if (this.streams.size === 0) this.stopTicker();
    };
    let stream!: StatusStream;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        stream = new StatusStream(controller, this.deps, job, after, release);
        this.streams.add(stream);
        this.startTicker();
        try {
          stream.begin();
        } catch {
          // Listening failed (the store could not subscribe): the place is given back, the stream ends.
          stream.end();
        }
      },
      cancel: () => stream.end(),
    });
    return new Response(body, { status: 200, headers: STREAM_HEADERS });
  }

  /** The 204 when there is nothing more to send; throws the 429/503 of the limits; `undefined` when a stream may open. */
  private refusal(job: JobRecord, after: number, client: string): Response | undefined {
    if (isFinished(job.status) && after >= eventIdOf(job.status))
      return new Response(null, { status: 204, headers: { 'Cache-Control': 'no-store' } });
    if (this.stopping?.aborted)
      throw unavailable('service_stopping', 'this process is stopping; open the stream again (another process answers)', 1);
    if (this.streams.size >= this.limits.maxStreams) {
      throw unavailable(
        'streams_full',
        `this process holds ${this.limits.maxStreams} status streams (SSE_MAX_STREAMS); retry shortly or poll`,
        5,
      );
    }
    if ((this.perClient.get(client) ?? 0) >= this.limits.maxPerClient) {
      throw tooMany(
        'too_many_streams',
        `at most ${this.limits.maxPerClient} status streams at once for one API key or address (SSE_MAX_STREAMS_PER_CLIENT); close one first`,
        5,
      );
    }
    return undefined;
  }

  private startTicker(): void {
    if (this.ticker !== undefined) return;
    this.ticker = setInterval(() => {
      const now = Date.now();
      // Each stream's read lands somewhere in the first half of the beat, not all in one burst.
      const spreadMs = (this.limits.heartbeatSeconds * 1000) / 2;
      for (const stream of [...this.streams]) stream.tick(now, this.limits.maxSeconds * 1000, spreadMs);
    }, this.limits.heartbeatSeconds * 1000);
  }

  private stopTicker(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
  }
}

/** One client's stream of one job. */
class StatusStream {
  private closed = false;
  private sent: number;
  /** Every send and read runs in this order, one at a time, so events leave in the order of their ids. */
  private chain: Promise<void> = Promise.resolve();
  private readQueued = false;
  private readonly openedAt = Date.now();
  private stopListening: () => void = () => {};
  /** The heartbeat's read, due within the first half of the beat. */
  private readTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly controller: ReadableStreamDefaultController<Uint8Array>,
    private readonly deps: StreamDeps,
    private readonly first: JobRecord,
    after: number,
    private readonly release: () => void,
  ) {
    this.sent = after;
  }

  begin(): void {
    this.push(`retry: ${RETRY_MS}\n\n`);
    this.stopListening = this.deps.jobs.onChange(this.first.processing_id, (job) => (job ? this.offer(job) : this.read()));
    this.offer(this.first);
    // Read again once listening: the job may have moved between the first read and the subscription.
    this.read();
  }

  /** The heartbeat: a comment, and a read in case a notice was lost; or the end of a stream past its age. */
  tick(now: number, maxAgeMs: number, spreadMs: number): void {
    if (now - this.openedAt >= maxAgeMs) return this.end(': this stream has been open SSE_MAX_SECONDS; reconnect with Last-Event-ID\n\n');
    this.push(': keep-alive\n\n');
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => this.read(), Math.random() * spreadMs);
  }

  /** Sends `job` unless the client has it already (same or later state). */
  private offer(job: JobRecord): void {
    if (this.closed) return;
    if (eventIdOf(job.status) <= this.sent) {
      // The job has ended and the client has its final event already (it resumed from 3 while the job
      // was, for a moment, not finished: an embedded crash between notice and write). Nothing will follow.
      if (isFinished(job.status)) this.end();
      return;
    }
    this.chain = this.chain.then(() => this.send(job));
  }

  private read(): void {
    if (this.closed || this.readQueued) return;
    this.readQueued = true;
    this.chain = this.chain.then(async () => {
      this.readQueued = false;
      if (this.closed) return;
      let job: JobRecord | undefined;
      try {
        job = await this.deps.jobs.getJob(this.first.processing_id);
      } catch {
        // The store is unreachable for now: the stream stays open, and the next heartbeat reads again.
        return;
      }
      if (!job) return this.end(': the job is no longer known (retention)\n\n');
      this.offer(job);
    });
  }

  private async send(job: JobRecord): Promise<void> {
    const id = eventIdOf(job.status);
    if (this.closed || id <= this.sent) return;
    let data: unknown;
    try {
      data = await this.deps.view(job);
    } catch {
      // Only the notification's state can fail to be read (its store unreachable): the job's own state still goes.
      const { notify_url: _left, ...bare } = job;
      data = await this.deps.view(bare);
    }
    if (this.closed) return;
    this.sent = id;
    this.push(`id: ${id}\ndata: ${JSON.stringify(data)}\n\n`);
    if (isFinished(job.status)) this.end();
  }

  private push(text: string): void {
    if (this.closed) return;
    try {
      this.controller.enqueue(encoder.encode(text));
    } catch {
      return this.end();
    }
    if ((this.controller.desiredSize ?? 0) < -MAX_UNREAD_CHUNKS) this.cut();
  }

  /** Ends the stream as an error: the connection is closed, not left holding what the client never read. */
  private cut(): void {
    this.finish(() => this.controller.error(new Error('the client stopped reading')));
  }

  /** Closes the stream (after `comment`, when given) and gives its place back; idempotent. */
  end(comment?: string): void {
    this.finish(() => {
      if (comment) this.controller.enqueue(encoder.encode(comment));
      this.controller.close();
    });
  }

  /** Stops listening and reading, gives the place back, then `close`s the stream: once, whichever way it ends. */
  private finish(close: () => void): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.readTimer);
    this.stopListening();
    this.release();
    try {
      close();
    } catch {
      // Already closed, or cancelled by the client's going away.
    }
  }
}
