/**
 * `npm run bench`'s status-stream phase: what held Server-Sent-Event streams cost everyone else. Against one
 * server process, in alternating rounds (without, with, with, without, …: `roundOrder`, so a drifting machine
 * shows as drift, not as an effect), each round queues the same batch of 2 MP jobs (one new upload, then `jobs`
 * `POST /process` with distinct widths and qualities: one job each, no cache hit, no upload in the window)
 * and measures:
 * - `GET /status` (plain JSON, of a finished job, every 25 ms from scripts/bench-prober.ts in its own
 *   process, as the main bench's prober asks it) while the queue drains;
 * - in the "with" rounds, `streams` clients each following one job with `Accept: text/event-stream`: they
 *   take the queue's jobs in order as they are accepted, and each, when its job's final event closes its
 *   stream, opens one on the next job, so the streams follow the queue's next `streams` jobs: that many
 *   held all through the window, opening and closing as jobs finish, each read as it arrives;
 * - the API process's RSS (from /proc, every 50 ms) and V8 heap (from /metrics, at the window's end).
 * The window opens once the batch is accepted (and, with streams, all `streams` are open) and closes when
 * the batch's job number `jobs − streams` is done (polled every 100 ms, both kinds), before the streams run
 * out of jobs to follow; the round then waits for the whole batch, so the next round starts on an idle
 * queue. Bounded: `streams` sockets, `jobs` jobs, `roundTimeoutMs` per round (open streams are then cut).
 */
import { spawn } from 'node:child_process';
import { Agent, request as httpRequest, type ClientRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { summary } from './bench-stats.js';

export type SseRoundKind = 'without' | 'with';

/**
 * `count` rounds in the Thue–Morse order (without, with, with, without, with, without, without, with): each
 * pair holds one of each kind, and a drift that is linear over the run (RSS growing as the process warms up,
 * the machine slowing) weighs on both kinds alike after 4 or 8 rounds, where a,b,a,b would charge it to b.
 */
export const roundOrder = (count: number): SseRoundKind[] =>
  Array.from({ length: count }, (_, i) => {
    let ones = 0;
    for (let bits = i; bits > 0; bits >>= 1) ones += bits & 1;
    return ones % 2 === 0 ? 'without' : 'with';
  });

export interface SseOptions {
  base: string;
  apiPid: number;
  repo: string;
  /** Uploads a new variant of the 2 MP photo (new bytes, so no result is cached) and answers its file_id. */
  upload(): Promise<string>;
  streams: number;
  /** Jobs per round; more than `streams`, and the window lasts while `jobs − streams` of them are done. */
  jobs: number;
  rounds: SseRoundKind[];
  roundTimeoutMs: number;
}

/** What the streams of a round saw. */
interface StreamCounts {
  /** Streams answered 200. */
  opened: number;
  /** Events (`data:` blocks) received. */
  events: number;
  /** Comment lines (heartbeats) received. */
  comments: number;
  /** Answers other than 200 (429 too_many_streams, 503 streams_full, …), by status. */
  refused: Record<string, number>;
  /** Connections that failed or were cut. */
  errors: number;
  /** Streams that ended without a completed or failed event. */
  endedWithoutFinal: number;
  /** Events whose id did not rise. */
  idsNotRising: number;
  /** When each stream was asked for (epoch ms) and the time from the request to its first event (ms). */
  firstEvents: Array<[number, number]>;
}

/** Plain requests (submissions, the window's polls, /metrics): their own few kept-alive connections. */
const plain = new Agent({ keepAlive: true, maxSockets: 16 });

function call(url: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent: plain, timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => (body += text));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The n-th job of a batch: a width and a quality of its own (another cache key), no shrink-on-load (width > 866). */
const operationOf = (n: number) =>
  `operation=resize&width=${880 + (n % 300)}&height=800&fit=inside&format=jpeg&quality=${80 + Math.floor(n / 300)}`;

function rssMiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  } catch {
    return NaN;
  }
}

async function heapUsedMiB(base: string): Promise<number> {
  const text = (await call(`${base}/metrics`)).body;
  return Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1] ?? NaN) / 2 ** 20;
}

async function finished(base: string, id: string): Promise<boolean> {
  const answer = await call(`${base}/status/${id}`);
  const status = (JSON.parse(answer.body) as { status?: string }).status;
  return status === 'completed' || status === 'failed';
}

/** Resolves once job `id` is completed or failed, asking every 100 ms; false at `deadline`. */
async function doneBy(base: string, id: Promise<string>, deadline: number): Promise<boolean> {
  const known = await id;
  while (Date.now() < deadline) {
    if (await finished(base, known)) return true;
    await sleep(100);
  }
  return false;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((ok, fail) => ((resolve = ok), (reject = fail)));
  promise.catch(() => undefined); // a waiter sees it; a batch cut short leaves some unawaited
  return { promise, resolve, reject };
}

/** The streams' client: one socket per stream (a kept-alive socket is reused by the next stream), at most `streams`. */
class StreamClients {
  readonly counts: StreamCounts = {
    opened: 0,
    events: 0,
    comments: 0,
    refused: {},
    errors: 0,
    endedWithoutFinal: 0,
    idsNotRising: 0,
    firstEvents: [],
  };
  /** Streams answered 200 and not yet ended. */
  held = 0;
  private readonly live = new Set<ClientRequest>();
  private readonly agent: Agent;

  constructor(
    private readonly base: string,
    streams: number,
  ) {
    // node:http's own pool: maxSockets bounds the connections per origin (the bench's shared agent has 64).
    this.agent = new Agent({ keepAlive: true, maxSockets: streams });
  }

  /** Follows job `id` until its stream ends. */
  follow(id: string): Promise<void> {
    const counts = this.counts;
    return new Promise((resolve) => {
      const asked = Date.now();
      const opened = performance.now();
      let settled = false;
      let holding = false;
      const done = () => {
        if (settled) return;
        settled = true;
        if (holding) this.held -= 1;
        this.live.delete(req);
        resolve();
      };
      const req = httpRequest(`${this.base}/status/${id}`, { agent: this.agent, headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) {
          const key = String(res.statusCode);
          counts.refused[key] = (counts.refused[key] ?? 0) + 1;
          res.resume();
          res.on('end', done);
          res.on('error', done);
          return;
        }
        counts.opened += 1;
        holding = true;
        this.held += 1;
        res.setEncoding('utf8');
        let buffer = '';
        let lastId = 0;
        let first = true;
        let final = false;
        res.on('data', (text: string) => {
          buffer += text;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let data: string | undefined;
            let eventId = NaN;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) counts.comments += 1;
              else if (line.startsWith('data:')) data = (data === undefined ? '' : `${data}\n`) + line.slice(5).trimStart();
              else if (line.startsWith('id:')) eventId = Number(line.slice(3).trim());
            }
            if (data === undefined) continue;
            if (first) counts.firstEvents.push([asked, performance.now() - opened]);
            first = false;
            counts.events += 1;
            if (!(eventId > lastId)) counts.idsNotRising += 1;
            lastId = eventId;
            const status = (JSON.parse(data) as { status?: string }).status;
            if (status === 'completed' || status === 'failed') final = true;
          }
        });
        res.on('end', () => {
          if (!final) counts.endedWithoutFinal += 1;
          done();
        });
        res.on('error', () => {
          counts.errors += 1;
          done();
        });
        res.on('aborted', () => {
          counts.errors += 1;
          done();
        });
      });
      this.live.add(req);
      req.on('error', () => {
        counts.errors += 1;
        done();
      });
      req.end();
    });
  }

  /** Cuts whatever is still open, and closes the pool's sockets. */
  close(): void {
    for (const req of this.live) req.destroy();
    this.agent.destroy();
  }
}

interface ProbeWindow {
  from: number;
  to: number;
}

async function round(options: SseOptions, kind: SseRoundKind, index: number) {
  const { base, apiPid, streams, jobs } = options;
  const started = Date.now();
  const deadline = started + options.roundTimeoutMs;
  const fileId = await options.upload();
  const acceptingFrom = Date.now();
  const ids = Array.from({ length: jobs }, () => deferred<string>());
  const clients = kind === 'with' ? new StreamClients(base, streams) : undefined;

  // The streams: each takes the next accepted job, follows it to its end, then takes the next.
  let next = 0;
  const following = clients
    ? Array.from({ length: streams }, async () => {
        while (next < jobs && Date.now() < deadline) {
          const id = await ids[next++]!.promise;
          await clients.follow(id);
        }
      }).map((slot) => slot.catch(() => undefined)) // a batch cut short: its error is the submission's
    : [];

  // The batch, 8 submissions at a time (the same in both kinds).
  let submitted = 0;
  const submitting = Array.from({ length: 8 }, async () => {
    while (submitted < jobs) {
      const n = submitted++;
      const answer = await call(`${base}/process/${fileId}?${operationOf(n)}`, 'POST');
      const id = (JSON.parse(answer.body) as { processing_id?: string }).processing_id;
      if ((answer.status !== 200 && answer.status !== 202) || !id) {
        const error = new Error(`POST /process answered ${answer.status}: ${answer.body.slice(0, 300)}`);
        for (const later of ids) later.reject(error); // no-op for those accepted already
        throw error;
      }
      ids[n]!.resolve(id);
    }
  });
  try {
    await Promise.all(submitting);
    // With streams, the window opens once all are open (they open as the batch is accepted).
    while (clients && clients.held < streams && Date.now() < Math.min(deadline, started + 10_000)) await sleep(10);

    const window: ProbeWindow = { from: Date.now(), to: NaN };
    const rss: number[] = [];
    const held: number[] = [];
    const sampler = setInterval(() => {
      rss.push(rssMiB(apiPid));
      if (clients) held.push(clients.held);
    }, 50);
    const cpu = process.cpuUsage();
    const inWindow = await doneBy(base, ids[jobs - streams - 1]!.promise, deadline);
    window.to = Date.now();
    clearInterval(sampler);
    const clientCpu = process.cpuUsage(cpu);
    const heap = await heapUsedMiB(base);

    // The rest of the batch, so the next round starts on an idle queue.
    const drained = inWindow && (await doneBy(base, ids[jobs - 1]!.promise, deadline));
    if (clients) {
      const cut = new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())));
      await Promise.race([Promise.all(following), cut]);
    }
    const seconds = (Date.now() - started) / 1000;
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    return {
      round: index + 1,
      kind,
      jobs,
      finishedInTime: drained,
      window,
      /** From the batch's first submission to the window: its POSTs, and with streams all of them opening. */
      accepting: { from: acceptingFrom, to: window.from },
      windowSeconds: (window.to - window.from) / 1000,
      /** The whole round, the batch's first submission to its last job done: jobs per second. */
      jobsPerSecond: jobs / seconds,
      rssMiB: { mean: mean(rss), max: Math.max(...rss) },
      heapUsedMiB: heap,
      /** CPU the bench's own process (the streams' client, the submissions) spent per second of the window. */
      clientCpuMsPerSecond: (clientCpu.user + clientCpu.system) / 1000 / ((window.to - window.from) / 1000),
      ...(clients
        ? {
            heldDuringWindow: { min: Math.min(...held), mean: mean(held) },
            streams: clients.counts,
          }
        : {}),
    };
  } finally {
    clients?.close();
  }
}

/** A round's stream counts for the report: the first events as percentiles instead of every one. */
function withoutRaw<T>({ firstEvents: _raw, ...counts }: StreamCounts, firstEventMs: T) {
  return { ...counts, firstEventMs };
}

/** The phase: the rounds, one prober for all of them, and the comparison. */
export async function statusWithStreams(options: SseOptions) {
  const { base, streams, repo } = options;
  if (options.jobs <= streams) throw new Error('the status-stream phase needs more jobs per round than streams');
  // The prober's target: a finished job, as in the main bench.
  const warmFile = await options.upload();
  const warm = JSON.parse((await call(`${base}/process/${warmFile}?${operationOf(0)}`, 'POST')).body) as { processing_id: string };
  if (!(await doneBy(base, Promise.resolve(warm.processing_id), Date.now() + 30_000))) throw new Error('the warm-up job did not finish');

  const prober = spawn(
    process.execPath,
    ['--import', 'tsx', join(repo, 'scripts/bench-prober.ts'), `${base}/status/${warm.processing_id}`, '--timed'],
    {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let probeOutput = '';
  prober.stdout!.on('data', (chunk: Buffer) => (probeOutput += chunk.toString()));
  const proberDone = new Promise((resolve) => prober.once('exit', resolve));
  const rounds = [];
  try {
    await sleep(1500); // let it start (tsx) before the first round
    for (const [index, kind] of options.rounds.entries()) rounds.push(await round(options, kind, index));
  } finally {
    prober.kill('SIGTERM');
    await proberDone;
  }
  const probes = JSON.parse(probeOutput.trim() || '[]') as Array<[number, number]>;
  const within = (window: ProbeWindow) => probes.filter(([at]) => at >= window.from && at < window.to).map(([, ms]) => ms);
  // A stream's first event: those asked for while the batch was being accepted (all streams at once), and
  // those asked for in the window (one as each job ends), apart: the first are a burst of 200 requests.
  const firstEvents = (counts: StreamCounts, window: ProbeWindow) => ({
    burst: summary(counts.firstEvents.filter(([at]) => at < window.from).map(([, ms]) => ms)),
    inWindow: summary(counts.firstEvents.filter(([at]) => at >= window.from && at < window.to).map(([, ms]) => ms)),
  });
  const measured = rounds.map(({ streams: counts, ...r }) => ({
    ...r,
    statusMs: summary(within(r.window)),
    statusWhileAcceptingMs: summary(within(r.accepting)),
    ...(counts ? { streams: withoutRaw(counts, firstEvents(counts, r.window)) } : {}),
  }));
  const pooled = (kind: SseRoundKind, part: 'window' | 'accepting' = 'window') =>
    summary(measured.filter((r) => r.kind === kind).flatMap((r) => within(r[part])));
  const mean = (kind: SseRoundKind, value: (r: (typeof measured)[number]) => number) => {
    const values = measured.filter((r) => r.kind === kind).map(value);
    return values.reduce((sum, v) => sum + v, 0) / values.length;
  };
  const without = pooled('without');
  const withStreams = pooled('with');
  const streamRounds = rounds.flatMap((r) => (r.streams ? [r.streams] : []));
  const firstInWindow = rounds.flatMap((r) =>
    (r.streams?.firstEvents ?? []).filter(([at]) => at >= r.window.from && at < r.window.to).map(([, ms]) => ms),
  );
  const firstInBurst = rounds.flatMap((r) => (r.streams?.firstEvents ?? []).filter(([at]) => at < r.window.from).map(([, ms]) => ms));
  const refused: Record<string, number> = {};
  for (const counts of streamRounds) for (const [status, n] of Object.entries(counts.refused)) refused[status] = (refused[status] ?? 0) + n;
  const rssDelta = mean('with', (r) => r.rssMiB.mean) - mean('without', (r) => r.rssMiB.mean);
  const heapDelta = mean('with', (r) => r.heapUsedMiB) - mean('without', (r) => r.heapUsedMiB);
  // Rounds 1–2, 3–4, …: one of each kind (roundOrder), the same comparison pair by pair.
  const pairs = [];
  for (let i = 0; i + 1 < measured.length; i += 2) {
    const [one, other] = [measured[i]!, measured[i + 1]!];
    if (one.kind === other.kind) continue;
    const [withRound, withoutRound] = one.kind === 'with' ? [one, other] : [other, one];
    pairs.push(withRound.statusMs.p99 / withoutRound.statusMs.p99);
  }
  return {
    streams,
    jobsPerRound: options.jobs,
    workload: '2 MP JPEG, resize to ~1000 px wide, JPEG q80-82; one upload per round, then the batch',
    rounds: measured,
    statusMs: { without, with: withStreams },
    /** The same prober while each batch was being accepted (before the window): with streams, 200 opening at once. */
    statusWhileAcceptingMs: { without: pooled('without', 'accepting'), with: pooled('with', 'accepting') },
    p99Ratio: withStreams.p99 / without.p99,
    p50Ratio: withStreams.p50 / without.p50,
    pairP99Ratios: pairs,
    jobsPerSecond: { without: mean('without', (r) => r.jobsPerSecond), with: mean('with', (r) => r.jobsPerSecond) },
    streamTotals: {
      opened: streamRounds.reduce((sum, c) => sum + c.opened, 0),
      events: streamRounds.reduce((sum, c) => sum + c.events, 0),
      comments: streamRounds.reduce((sum, c) => sum + c.comments, 0),
      refused,
      errors: streamRounds.reduce((sum, c) => sum + c.errors, 0),
      endedWithoutFinal: streamRounds.reduce((sum, c) => sum + c.endedWithoutFinal, 0),
      idsNotRising: streamRounds.reduce((sum, c) => sum + c.idsNotRising, 0),
      firstEventMs: { burst: summary(firstInBurst), inWindow: summary(firstInWindow) },
    },
    memory: {
      rssMeanMiB: { without: mean('without', (r) => r.rssMiB.mean), with: mean('with', (r) => r.rssMiB.mean) },
      heapUsedMiB: { without: mean('without', (r) => r.heapUsedMiB), with: mean('with', (r) => r.heapUsedMiB) },
      rssKiBPerStream: (rssDelta * 1024) / streams,
      heapKiBPerStream: (heapDelta * 1024) / streams,
    },
  };
}
