/**
 * @module
 * A child process for the TLS test: one delivery attempt through the real guard and transport to `argv[2]`,
 * with `receiver.test` resolving to 127.0.0.1 (and allowed there); prints the attempt's result as JSON. Run it
 * with NODE_EXTRA_CA_CERTS naming the test's CA (Node reads that variable only at start).
 */
import { NotifyUrlGuard } from '../../src/adapters/notify-url-guard.js';
import { createWebhookTransport } from '../../src/adapters/webhook-transport.js';
import { parseAllowList } from '../../src/webhooks/addresses.js';

const allowed = parseAllowList('127.0.0.1');
if (!allowed.ok) throw new Error(allowed.message);
const guard = new NotifyUrlGuard({
  enabled: true,
  allowHttp: false,
  allowList: allowed.list,
  resolve: async (host) => (host === 'receiver.test' ? [{ address: '127.0.0.1', family: 4 }] : []),
});
const result = await createWebhookTransport(guard).post({
  url: process.argv[2]!,
  headers: { 'content-type': 'application/json' },
  body: '{}',
  timeoutMs: 5000,
});
console.log(JSON.stringify(result));
