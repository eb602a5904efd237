/**
 * `npm run bench`'s /status prober, in a process of its own so that the bench client's own work (sending
 * uploads) does not show up as server latency: asks `url` every 25 ms until SIGTERM, then prints the
 * latencies (ms) as one JSON line. node:http on one kept-alive connection, like the bench's clients: fetch
 * would cost the shared CPU several times more per request.
 */
import { Agent, get } from 'node:http';

const url = process.argv[2]!;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const latencies: number[] = [];
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
  const started = performance.now();
  await ask();
  latencies.push(performance.now() - started);
  await new Promise((resolve) => setTimeout(resolve, 25));
}
console.log(JSON.stringify(latencies));
