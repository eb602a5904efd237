/**
 * `npm run bench [-- --quick]`: the service against the limit, side by side in one run.
 *
 * - Makes realistic photos (gradients with noise, so JPEG has real entropy) at ~20 MP and ~2 MP.
 * - The limit: sharp alone doing the same operation (fit 800×800, JPEG q85) on the same bytes, C at a time,
 *   in one process (scripts/bench-baseline.ts), with the same allocator.
 * - The service: the built server (embedded default on disk; the same with its files in S3, against the
 *   S3-protocol server the tests use, started here on loopback; with REDIS_URL also Redis mode with a separate
 *   worker process) and C concurrent clients running the seed's flow: upload → POST /process → poll /status →
 *   download. Each upload differs by a JPEG comment so the result cache cannot answer. BENCH_MODES picks modes
 *   (embedded,s3,redis); BENCH_COMPARE_DIST=<another checkout>/dist adds that build's embedded mode to the same
 *   run, for a change's before and after side by side.
 * - Also: p50/p95/p99 per endpoint, the server's peak RSS, event-loop delay p99, GET /status p99 while the
 *   CPU is saturated, the time of a result-cache hit, and peak RSS during 16 concurrent ~10 MB uploads.
 * - The status-stream phase (scripts/bench-sse.ts; embedded mode, BENCH_SSE_MODES=embedded,s3,redis or none):
 *   GET /status p50/p99 while queued 2 MP jobs run, without and with BENCH_SSE_STREAMS (200) Server-Sent-Event
 *   streams held open, in alternating rounds against the same process; the ratio, the streams' events and
 *   refusals, and the API process's memory per stream.
 * Prints a table and writes bench/results/<time>.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { deleteKeysUnder } from '../src/adapters/redis-connection.js';
import { startS3, type TestS3 } from '../test/helpers/s3-server.js';
import { freePort } from '../test/helpers/server-process.js';
import { summary } from './bench-stats.js';
import { roundOrder, statusWithStreams } from './bench-sse.js';

const repo = resolve(import.meta.dirname, '..');
const quick = process.argv.includes('--quick');
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 2 * cpus().length);
/** Jobs the service processes at once: its default (the number of CPUs) unless BENCH_WORKERS says otherwise. */
const workers = Number(process.env.BENCH_WORKERS ?? cpus().length);
const work = mkdtempSync(join(tmpdir(), 'bench-'));
const jemalloc = spawnSync('bash', ['-c', 'find /usr/lib /usr/local/lib -name libjemalloc.so.2 2>/dev/null | head -n 1'])
  .stdout.toString()
  .trim();
const runtimeEnv: Record<string, string> = { PATH: process.env.PATH ?? '', ...(jemalloc ? { LD_PRELOAD: jemalloc } : {}) };

/** The status-stream phase: streams held in its "with" rounds, jobs per round, rounds (alternating: roundOrder). */
const sseStreams = Number(process.env.BENCH_SSE_STREAMS ?? 200);
const sseJobs = Number(process.env.BENCH_SSE_JOBS ?? (quick ? 500 : 900));
const sseRounds = Number(process.env.BENCH_SSE_ROUNDS ?? (quick ? 4 : 8));
const sseKinds = (process.env.BENCH_SSE_MODES ?? 'embedded').split(',').map((kind) => kind.trim());

const workloads = [
  { label: '20 MP', width: 5472, height: 3648, jobs: quick ? 6 : 30 },
  { label: '2 MP', width: 1732, height: 1155, jobs: quick ? 30 : 150 },
];

// ---------- inputs ----------

/** A noisy diagonal gradient: smooth structure plus grain, like a photo, so JPEG has real entropy. */
async function photo(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let seed = 12345;
  const noise = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 41) - 20;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const base = ((x / width) * 180 + (y / height) * 60) | 0;
      raw[i] = Math.max(0, Math.min(255, base + noise()));
      raw[i + 1] = Math.max(0, Math.min(255, 255 - base + noise()));
      raw[i + 2] = Math.max(0, Math.min(255, ((x + y) % 256) / 2 + 64 + noise()));
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/**
 * The same JPEG with a comment segment after SOI: other bytes (another cache key), the same pixels. As pieces
 * sent one after another, not one new buffer: copying 6.8 MB into fresh memory costs the client ~10 ms of page
 * faults on these VMs.
 */
function variant(jpeg: Buffer, n: number): Buffer[] {
  const text = Buffer.from(`bench-${n}-${Math.random()}`);
  const segment = Buffer.from([0xff, 0xfe, 0, 0]);
  segment.writeUInt16BE(text.length + 2, 2);
  return [jpeg.subarray(0, 2), segment, text, jpeg.subarray(2)];
}

// ---------- measuring ----------

function rssSampler(pid: number) {
  let peak = 0;
  const read = () => {
    try {
      peak = Math.max(peak, Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024);
    } catch {
      // the process is gone
    }
  };
  const timer = setInterval(read, 20);
  return { reset: () => (peak = 0), peak: () => (read(), peak), stop: () => clearInterval(timer) };
}

/** CPU seconds (user + system) a process (or, with `tid`, one of its threads) has used so far. */
function cpuSeconds(pid: number, tid?: number): number {
  try {
    const fields = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8')
      .split(') ')[1]!
      .split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Jiffies the whole machine has spent busy and in all, from /proc/stat: how saturated the CPUs were. */
function machineJiffies(): { busy: number; total: number } {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const numbers = values.map(Number);
  const total = numbers.reduce((a, b) => a + b, 0);
  return { busy: total - numbers[3]! - numbers[4]!, total };
}

async function timed<T>(bucket: number[], call: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const value = await call();
  bucket.push(performance.now() - started);
  return value;
}

// ---------- processes ----------

interface Proc {
  child: ChildProcess;
  base: string;
}

async function startProcess(dist: string, entry: string, env: Record<string, string>, port: number, waitForHttp: boolean): Promise<Proc> {
  const nodeFlags = process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ') : [];
  const child = spawn(process.execPath, [...nodeFlags, join(dist, 'src', entry)], {
    cwd: work,
    env: { ...runtimeEnv, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    if (output.length < 10_000) output += chunk.toString();
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${entry} exited: ${output}`);
    if (
      waitForHttp
        ? await fetch(`${base}/health`).then(
            (r) => r.ok,
            () => false,
          )
        : output.includes('worker started')
    )
      break;
    if (Date.now() > deadline) throw new Error(`${entry} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, base };
}

async function stop(proc: Proc): Promise<void> {
  if (proc.child.exitCode !== null) return;
  const exited = new Promise((r) => proc.child.once('exit', r));
  proc.child.kill('SIGTERM');
  await exited;
}

/** sharp alone on the same bytes; with `store`, plus writing the input and the result to synced files and hashing the input. */
type Limit = { jobsPerSecond: number; sharpConcurrency: number; cpuMsPerJob: number };

function baseline(file: string, jobs: number, store = false): Limit {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(repo, 'scripts/bench-baseline.ts'), JSON.stringify({ files: [file], jobs, concurrency, store })],
    {
      cwd: repo,
      env: runtimeEnv,
      encoding: 'utf8',
    },
  );
  if (result.status !== 0) throw new Error(`baseline failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as Limit;
}

// ---------- the seed's workload ----------

/**
 * How often a client polls /status: 20 times a second by default (the seed's client sleeps between polls);
 * BENCH_POLL_MS=10 gives the aggressive client the README also reports.
 */
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 50);
/** BENCH_LONG_POLL=1: clients ask GET /status?wait=30 instead of polling (the service answers on completion). */
const LONG_POLL = process.env.BENCH_LONG_POLL === '1';

interface Latencies {
  upload: number[];
  process: number[];
  status: number[];
  download: number[];
}

/**
 * The bench's HTTP client: node:http on kept-alive connections, as lean as curl. fetch (undici) cost the shared
 * CPU 12–30 ms per 6.8 MB upload against 3–4 ms for node:http (measured side by side), time the service then
 * lacked; the bench measures the service, so its client should take as little as it can.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function call(
  url: string,
  method = 'GET',
  body?: Buffer[],
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolvePromise, reject) => {
    const length = body?.reduce((sum, piece) => sum + piece.length, 0);
    const req = httpRequest(url, { method, agent, headers: body ? { ...headers, 'content-length': String(length) } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    for (const piece of body ?? []) req.write(piece);
    req.end();
  });
}

const callJson = async <T>(url: string, method = 'GET', body?: Buffer[], headers?: Record<string, string>): Promise<T> =>
  JSON.parse((await call(url, method, body, headers)).body.toString()) as T;

const BOUNDARY = 'bench-boundary-7d1a0c';
const PREAMBLE = Buffer.from(
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="bench.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
);
const EPILOGUE = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);

/** The seed's workload: fit within 800×800, JPEG quality 85. */
const OPERATION = 'operation=resize&width=800&height=800&fit=inside&format=jpeg&quality=85';

/** A multipart body built once, as curl sends it: the bench client should cost the shared CPU little. */
const multipartBody = (pieces: Buffer[]) => [PREAMBLE, ...pieces, EPILOGUE];

async function seedFlow(base: string, bytes: Buffer[], lat: Latencies): Promise<{ fileId: string; processingId: string }> {
  const body = multipartBody(bytes);
  const headers = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };
  const uploaded = await timed(lat.upload, () => callJson<{ file_id: string }>(`${base}/upload`, 'POST', body, headers));
  if (!uploaded.file_id) throw new Error(`upload failed: ${JSON.stringify(uploaded)}`);
  const accepted = await timed(lat.process, () =>
    callJson<{ processing_id: string }>(`${base}/process/${uploaded.file_id}?${OPERATION}`, 'POST'),
  );
  for (;;) {
    const job = await timed(lat.status, () =>
      callJson<{ status: string }>(`${base}/status/${accepted.processing_id}${LONG_POLL ? '?wait=30' : ''}`),
    );
    if (job.status === 'completed') break;
    if (job.status === 'failed') throw new Error(`job failed: ${JSON.stringify(job)}`);
    if (!LONG_POLL) await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const result = await timed(lat.download, () => call(`${base}/download/${accepted.processing_id}`));
  if (result.status !== 200 || result.body.length === 0) throw new Error(`download failed: ${result.status}`);
  return { fileId: uploaded.file_id, processingId: accepted.processing_id };
}

/** CPU used from `start()` to `stop()`: the service's processes (and their main threads), this client, the machine. */
function cpuWindow(pids: number[]) {
  const server = pids.map((pid) => cpuSeconds(pid));
  const main = pids.map((pid) => cpuSeconds(pid, pid));
  const client = process.cpuUsage();
  const machine = machineJiffies();
  return (jobs: number) => {
    const clientSpent = process.cpuUsage(client);
    const machineAfter = machineJiffies();
    return {
      cpuMsPerJob: {
        service: (pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - server[i]!, 0) * 1000) / jobs,
        /** Of which the JavaScript threads (HTTP, multipart, queue, state); the rest is libvips, GC and I/O threads. */
        serviceMainThreads: (pids.reduce((sum, pid, i) => sum + cpuSeconds(pid, pid) - main[i]!, 0) * 1000) / jobs,
        client: (clientSpent.user + clientSpent.system) / 1000 / jobs,
      },
      /** Share of all CPUs busy (any process) during the run: well below 100%, the service leaves CPU idle. */
      machineBusy: (machineAfter.busy - machine.busy) / (machineAfter.total - machine.total),
    };
  };
}

async function serviceRun(base: string, jpeg: Buffer, jobs: number, pids: number[]) {
  const lat: Latencies = { upload: [], process: [], status: [], download: [] };
  let next = 0;
  let last = { fileId: '', processingId: '' };
  // A prober asks /status of a finished job every 25 ms while the CPU is saturated by the workload.
  const warm = await seedFlow(base, variant(jpeg, -1), { upload: [], process: [], status: [], download: [] });
  const prober = spawn(
    process.execPath,
    ['--import', 'tsx', join(repo, 'scripts/bench-prober.ts'), `${base}/status/${warm.processingId}`],
    { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let probeOutput = '';
  prober.stdout!.on('data', (chunk: Buffer) => (probeOutput += chunk.toString()));
  const proberDone = new Promise((r) => prober.once('exit', r));
  await new Promise((r) => setTimeout(r, 1500)); // let it start (tsx) before the load begins
  const started = performance.now();
  const cpu = cpuWindow(pids);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs) {
        const n = next++;
        last = await seedFlow(base, variant(jpeg, n), lat);
      }
    }),
  );
  const used = cpu(jobs);
  const seconds = (performance.now() - started) / 1000;
  prober.kill('SIGTERM');
  await proberDone;
  const probe = JSON.parse(probeOutput.trim() || '[]') as number[];
  return { seconds, jobsPerSecond: jobs / seconds, lat, statusUnderLoad: summary(probe), last, ...used };
}

async function eventLoopP99(base: string): Promise<number> {
  const text = (await call(`${base}/metrics`)).body.toString();
  return Number(/^nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text)?.[1] ?? NaN) * 1000;
}

async function cacheHit(base: string, fileId: string): Promise<ReturnType<typeof summary>> {
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    const body = await timed(times, () => callJson<{ cached: boolean }>(`${base}/process/${fileId}?${OPERATION}`, 'POST'));
    if (!body.cached) throw new Error('expected a cache hit');
  }
  return summary(times);
}

async function uploadStorm(base: string, jpeg: Buffer, rss: ReturnType<typeof rssSampler>) {
  rss.reset();
  const bytes = jpeg.length > 10_000_000 ? jpeg.subarray(0, 10_000_000) : jpeg;
  const statuses = await Promise.all(
    Array.from({ length: 16 }, async (_, n) => {
      const headers = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };
      return (await call(`${base}/upload`, 'POST', multipartBody(variant(bytes, 1000 + n)), headers)).status;
    }),
  );
  return { uploads: statuses.length, sizeBytes: bytes.length, statuses: [...new Set(statuses)], peakRssMiB: rss.peak() };
}

// ---------- main ----------

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '—');

/** A service configuration to measure: embedded on disk, embedded with its files in S3, or Redis mode; from a build (`dist`). */
interface Mode {
  name: string;
  kind: 'embedded' | 's3' | 'redis';
  dist: string;
  /** Whether to run the status-stream phase in this mode. */
  sse?: boolean;
}

async function runMode(mode: Mode, photos: Array<{ label: string; jobs: number; file: string; bytes: Buffer }>, s3?: TestS3) {
  // A port the system says is free, not a guess: a taken one would measure another process.
  const port = await freePort();
  const home = join(work, mode.name.replace(/[^a-z0-9]+/gi, '-'));
  const dirs = { UPLOAD_DIR: join(home, 'uploads'), PROCESSED_DIR: join(home, 'processed'), STATE_DIR: join(home, 'state') };
  const common = { ...dirs, PORT: String(port), HOST: '127.0.0.1', MAX_FILE_SIZE: String(32 * 1024 * 1024), LOG_LEVEL: 'info' };
  const prefix = `bench-${Date.now()}`;
  const procs: Proc[] = [];
  if (mode.kind === 'redis') {
    const redisEnv = { ...common, REDIS_URL: process.env.REDIS_URL!, REDIS_KEY_PREFIX: prefix };
    procs.push(await startProcess(mode.dist, 'server.js', { ...redisEnv, WORKER_CONCURRENCY: '0' }, port, true));
    procs.push(await startProcess(mode.dist, 'worker.js', { ...redisEnv, WORKER_CONCURRENCY: String(workers) }, port, false));
  } else {
    const storage = mode.kind === 's3' ? s3!.env(prefix) : {};
    procs.push(await startProcess(mode.dist, 'server.js', { ...common, ...storage, WORKER_CONCURRENCY: String(workers) }, port, true));
  }
  const api = procs[0]!;
  const rss = rssSampler(api.child.pid!);
  const results = [];
  try {
    for (const item of photos) {
      await eventLoopP99(api.base); // resets the event-loop histogram window
      rss.reset();
      const limit = baseline(item.file, item.jobs);
      const storing = baseline(item.file, item.jobs, true);
      const service = await serviceRun(
        api.base,
        item.bytes,
        item.jobs,
        procs.map((proc) => proc.child.pid!),
      );
      results.push({
        workload: item.label,
        jobs: item.jobs,
        sharpJobsPerSecond: limit.jobsPerSecond,
        serviceJobsPerSecond: service.jobsPerSecond,
        ratio: service.jobsPerSecond / limit.jobsPerSecond,
        latencyMs: {
          upload: summary(service.lat.upload),
          process: summary(service.lat.process),
          status: summary(service.lat.status),
          download: summary(service.lat.download),
        },
        statusUnderLoadMs: service.statusUnderLoad,
        eventLoopP99Ms: await eventLoopP99(api.base),
        peakRssMiB: rss.peak(),
        cacheHitMs: await cacheHit(api.base, service.last.fileId),
        sharpConcurrency: limit.sharpConcurrency,
        cpuMsPerJob: service.cpuMsPerJob,
        sharpCpuMsPerJob: limit.cpuMsPerJob,
        /** sharp plus storing input and result (synced) and hashing the input: the floor for a service that keeps uploads. */
        sharpStoringJobsPerSecond: storing.jobsPerSecond,
        sharpStoringCpuMsPerJob: storing.cpuMsPerJob,
        ratioToStoring: service.jobsPerSecond / storing.jobsPerSecond,
        machineBusy: service.machineBusy,
      });
    }
    const sse = mode.sse ? await streamPhase(api.base, api.child.pid!, photos.find((item) => item.label === '2 MP')!.bytes) : undefined;
    const storm = await uploadStorm(api.base, photos[0]!.bytes, rss);
    return { mode: mode.name, results, storm, ...(sse ? { sse } : {}) };
  } finally {
    rss.stop();
    for (const proc of procs.reverse()) await stop(proc);
    if (mode.kind === 'redis') await deleteKeys(process.env.REDIS_URL!, prefix);
  }
}

/** The status-stream phase (scripts/bench-sse.ts) against this server: uploads are new variants of the 2 MP photo. */
function streamPhase(base: string, pid: number, jpeg: Buffer) {
  let uploads = 0;
  const headers = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };
  return statusWithStreams({
    base,
    apiPid: pid,
    repo,
    streams: sseStreams,
    jobs: sseJobs,
    rounds: roundOrder(sseRounds),
    roundTimeoutMs: 120_000,
    upload: async () => {
      const uploaded = await callJson<{ file_id?: string }>(
        `${base}/upload`,
        'POST',
        multipartBody(variant(jpeg, 2000 + uploads++)),
        headers,
      );
      if (!uploaded.file_id) throw new Error(`upload failed: ${JSON.stringify(uploaded)}`);
      return uploaded.file_id;
    },
  });
}

/** Removes the run's keys from Redis (the bench leaves nothing behind). */
async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url);
  await deleteKeysUnder(client, prefix);
  client.disconnect();
}

async function main(): Promise<void> {
  console.log(
    `bench: ${quick ? 'quick' : 'full'} run, ${concurrency} clients ${LONG_POLL ? 'long-polling /status?wait=30' : `polling every ${POLL_MS} ms`} and sharp at concurrency ${concurrency}, service WORKER_CONCURRENCY ${workers}, ${cpus().length} cores, jemalloc ${jemalloc ? 'preloaded' : 'not found'}`,
  );
  const photos = [];
  for (const workload of workloads) {
    const bytes = await photo(workload.width, workload.height);
    const file = join(work, `${workload.label.replace(' ', '')}.jpg`);
    writeFileSync(file, bytes);
    photos.push({ ...workload, file, bytes });
    console.log(`  input ${workload.label}: ${workload.width}×${workload.height} JPEG, ${(bytes.length / 1e6).toFixed(1)} MB`);
  }
  const dist = join(repo, 'dist');
  const kinds = (process.env.BENCH_MODES ?? (process.env.REDIS_URL ? 'embedded,s3,redis' : 'embedded,s3'))
    .split(',')
    .map((kind) => kind.trim());
  const modes: Mode[] = [];
  if (process.env.BENCH_COMPARE_DIST)
    modes.push({
      name: `embedded, build at ${process.env.BENCH_COMPARE_DIST}`,
      kind: 'embedded',
      dist: resolve(process.env.BENCH_COMPARE_DIST),
    });
  if (kinds.includes('embedded')) modes.push({ name: 'embedded', kind: 'embedded', dist, sse: sseKinds.includes('embedded') });
  if (kinds.includes('s3'))
    modes.push({ name: 'embedded, files in S3 (s3rver on loopback)', kind: 's3', dist, sse: sseKinds.includes('s3') });
  if (kinds.includes('redis') && process.env.REDIS_URL) modes.push({ name: 'redis', kind: 'redis', dist, sse: sseKinds.includes('redis') });
  const s3 = modes.some((mode) => mode.kind === 's3') ? await startS3() : undefined;
  const runs = [];
  try {
    for (const mode of modes) runs.push(await runMode(mode, photos, s3));
  } finally {
    await s3?.stop();
  }

  for (const run of runs) {
    console.log(`\n${run.mode} mode (service) vs sharp alone, same bytes, concurrency ${concurrency}`);
    console.log(
      'workload  sharp jobs/s  service jobs/s  ratio   upload p50/p99  process p99  status p50/p99  download p99  status p99 under load  event loop p99  peak RSS  cache hit p50',
    );
    for (const r of run.results) {
      console.log(
        `${r.workload.padEnd(8)}  ${fmt(r.sharpJobsPerSecond, 2).padStart(12)}  ${fmt(r.serviceJobsPerSecond, 2).padStart(14)}  ${fmt(r.ratio, 2).padStart(5)}   ` +
          `${fmt(r.latencyMs.upload.p50)}/${fmt(r.latencyMs.upload.p99)} ms`.padEnd(16) +
          `${fmt(r.latencyMs.process.p99)} ms`.padStart(11) +
          `  ${fmt(r.latencyMs.status.p50)}/${fmt(r.latencyMs.status.p99)} ms`.padStart(16) +
          `${fmt(r.latencyMs.download.p99)} ms`.padStart(14) +
          `${fmt(r.statusUnderLoadMs.p99)} ms`.padStart(23) +
          `${fmt(r.eventLoopP99Ms)} ms`.padStart(16) +
          `${fmt(r.peakRssMiB, 0)} MiB`.padStart(10) +
          `${fmt(r.cacheHitMs.p50, 2)} ms`.padStart(15),
      );
    }
    for (const r of run.results) {
      console.log(
        `${r.workload}: sharp + storing input and result + SHA-256 (no HTTP): ${fmt(r.sharpStoringJobsPerSecond, 2)} jobs/s, ${fmt(r.sharpStoringCpuMsPerJob)} ms CPU per job; service / that = ${fmt(r.ratioToStoring, 2)}`,
      );
    }
    for (const r of run.results)
      console.log(
        `${r.workload}: CPU per job: sharp alone ${fmt(r.sharpCpuMsPerJob)} ms; service processes ${fmt(r.cpuMsPerJob.service)} ms (main threads ${fmt(r.cpuMsPerJob.serviceMainThreads)} ms); bench client ${fmt(r.cpuMsPerJob.client)} ms; CPUs busy ${fmt(r.machineBusy * 100, 0)}%`,
      );
    console.log(
      `16 concurrent uploads of ${(run.storm.sizeBytes / 1e6).toFixed(1)} MB: statuses ${run.storm.statuses.join(',')}, peak RSS ${fmt(run.storm.peakRssMiB, 0)} MiB`,
    );
    if (run.sse) printStreamPhase(run.sse);
  }
  const machine = {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    vips: sharp.versions.vips,
    sharp: sharp.versions.sharp,
    jemalloc: Boolean(jemalloc),
  };
  const outDir = join(repo, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, `${new Date().toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
  writeFileSync(
    outFile,
    JSON.stringify(
      { date: new Date().toISOString(), quick, concurrency, workers, pollMs: LONG_POLL ? 'long-poll' : POLL_MS, machine, runs },
      null,
      2,
    ),
  );
  console.log(`\nwrote ${outFile}`);
}

function printStreamPhase(sse: Awaited<ReturnType<typeof statusWithStreams>>): void {
  console.log(
    `\nGET /status while ${sse.jobsPerRound} queued 2 MP jobs run per round, without and with ${sse.streams} SSE streams held (same server process, rounds alternating)`,
  );
  console.log(
    'round  streams  window  probes  status p50/p99  jobs/s  API RSS mean/max  heap used  streams held min/mean  events  first event p50/p99 (streams opened in the window)',
  );
  for (const r of sse.rounds) {
    console.log(
      `${String(r.round).padStart(5)}  ${(r.kind === 'with' ? String(sse.streams) : '0').padStart(7)}  ${`${fmt(r.windowSeconds)} s`.padStart(6)}  ${String(r.statusMs.n).padStart(6)}  ` +
        `${fmt(r.statusMs.p50)}/${fmt(r.statusMs.p99)} ms`.padStart(14) +
        `${fmt(r.jobsPerSecond)}`.padStart(8) +
        `${fmt(r.rssMiB.mean, 0)}/${fmt(r.rssMiB.max, 0)} MiB`.padStart(18) +
        `${fmt(r.heapUsedMiB)} MiB`.padStart(11) +
        (r.heldDuringWindow ? `${r.heldDuringWindow.min}/${fmt(r.heldDuringWindow.mean, 0)}` : '—').padStart(23) +
        (r.streams ? String(r.streams.events) : '—').padStart(8) +
        (r.streams ? `${fmt(r.streams.firstEventMs.inWindow.p50)}/${fmt(r.streams.firstEventMs.inWindow.p99)} ms` : '—').padStart(21) +
        (r.finishedInTime ? '' : '  (round timed out)'),
    );
  }
  const t = sse.streamTotals;
  const refused = Object.entries(t.refused).reduce((sum, [, n]) => sum + n, 0);
  console.log(
    `/status p99 with / without streams: ${fmt(sse.p99Ratio, 2)} (${fmt(sse.statusMs.with.p99)} / ${fmt(sse.statusMs.without.p99)} ms; p50 ${fmt(sse.statusMs.with.p50)} / ${fmt(sse.statusMs.without.p50)} ms, ratio ${fmt(sse.p50Ratio, 2)}; pair by pair ${sse.pairP99Ratios.map((ratio) => fmt(ratio, 2)).join(', ')})`,
  );
  const accepting = sse.statusWhileAcceptingMs;
  console.log(
    `/status while each batch was accepted (before the window; with streams, ${sse.streams} opening at once): p50/p99 ${fmt(accepting.with.p50)}/${fmt(accepting.with.p99)} ms with, ${fmt(accepting.without.p50)}/${fmt(accepting.without.p99)} ms without (${accepting.with.n} and ${accepting.without.n} probes)`,
  );
  console.log(
    `streams: ${t.opened} opened, ${t.events} events, ${refused} refused${refused ? ` (${JSON.stringify(t.refused)})` : ''}, ${t.errors} errors, ${t.endedWithoutFinal} ended without a final event, ${t.idsNotRising} ids not rising, ${t.comments} heartbeat comments; first event p50/p99 ${fmt(t.firstEventMs.inWindow.p50)}/${fmt(t.firstEventMs.inWindow.p99)} ms for the ${t.firstEventMs.inWindow.n} opened in the windows, ${fmt(t.firstEventMs.burst.p50)}/${fmt(t.firstEventMs.burst.p99)} ms for the ${t.firstEventMs.burst.n} opened at once as each batch was accepted`,
  );
  console.log(
    `API memory with / without streams: RSS ${fmt(sse.memory.rssMeanMiB.with, 0)} / ${fmt(sse.memory.rssMeanMiB.without, 0)} MiB (${fmt(sse.memory.rssKiBPerStream, 0)} KiB per stream), heap used ${fmt(sse.memory.heapUsedMiB.with)} / ${fmt(sse.memory.heapUsedMiB.without)} MiB (${fmt(sse.memory.heapKiBPerStream, 0)} KiB per stream); jobs/s ${fmt(sse.jobsPerSecond.with)} / ${fmt(sse.jobsPerSecond.without)}`,
  );
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => rmSync(work, { recursive: true, force: true }));
