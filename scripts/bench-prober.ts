/**
 * `npm run bench`'s /status prober, in a process of its own so that the bench client's own work (sending
 * uploads) does not show up as server latency: asks `url` every 25 ms until SIGTERM, then prints the
 * latencies (ms) as one JSON line. node:http on one kept-alive connection, like the bench's clients: fetch
 * would cost the shared CPU several times more per request.
 *
 * With `--timed` after the URL each latency comes as `[epoch ms at the request's start, latency ms]`, so
 * one prober can serve several measured windows (the status-stream phase, scripts/bench-sse.ts).
 */
import { Agent, get } from 'node:http';

const url = process.argv[2]!;
const timed = process.argv[3] === '--timed';
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const latencies: Array<number | [number, number]> = [];
let running = true;
process.on('SIGTERM', () => (running = false));

const ask = () =>
  new Promise<void>((resolve, reject) => {
    get(url, { agent }, (response) => {
      response.resume();
      response.on('end', resolve);
      response.on('error', reject);
    }).on('error', reject);
  });

while (running) {
  const at = Date.now();
  const started = performance.now();
  await ask();
  const latency = performance.now() - started;
  latencies.push(timed ? [at, latency] : latency);
  await new Promise((resolve) => setTimeout(resolve, 25));
}
console.log(JSON.stringify(latencies));
