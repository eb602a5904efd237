/**
 * `npm run bench`'s /status prober, in a process of its own so that the bench client's own work (sending
 * uploads) does not show up as server latency: asks `url` every 25 ms until SIGTERM, then prints the
 * latencies (ms) as one JSON line.
 */
const url = process.argv[2]!;
const latencies: number[] = [];
let running = true;
process.on('SIGTERM', () => (running = false));
while (running) {
  const started = performance.now();
  await (await fetch(url)).arrayBuffer();
  latencies.push(performance.now() - started);
  await new Promise((resolve) => setTimeout(resolve, 25));
}
console.log(JSON.stringify(latencies));
