/**
 * @module
 * Standard Webhooks signing (standardwebhooks.com): `webhook-id`, `webhook-timestamp` (unix seconds) and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one signature per configured secret,
 * space-separated, so a receiver can rotate its secret without missing a delivery. Web Crypto only: this runs
 * wherever `crypto.subtle` does.
 */

export const SECRET_PREFIX = 'whsec_';
/** The specification asks for keys of 24 to 64 bytes. */
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;
export const MAX_SECRETS = 10;

/** A secret ready to sign with: its raw bytes and an HMAC key made from them once. */
export interface SigningSecret {
  bytes: Uint8Array;
  key: CryptoKey;
}

export type SecretParse = { ok: true; secrets: Uint8Array[] } | { ok: false; message: string };

/**
 * Reads `WEBHOOK_SECRETS`: comma-separated `whsec_<base64>` secrets of 24 to 64 bytes each. The message of a
 * refusal names the variable and the offending position, never the secret itself.
 * @example parseWebhookSecrets('whsec_' + btoa('k'.repeat(32))) // { ok: true, secrets: [Uint8Array(32)] }
 */
export function parseWebhookSecrets(text: string | undefined, variable = 'WEBHOOK_SECRETS'): SecretParse {
  const entries = (text ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length > MAX_SECRETS)
    return { ok: false, message: `${variable} holds ${entries.length} secrets; at most ${MAX_SECRETS} are allowed` };
  const secrets: Uint8Array[] = [];
  for (const [index, entry] of entries.entries()) {
    const where = `${variable} secret ${index + 1} of ${entries.length}`;
    if (!entry.startsWith(SECRET_PREFIX)) return { ok: false, message: `${where} must start with ${SECRET_PREFIX} followed by base64` };
    const bytes = decodeBase64(entry.slice(SECRET_PREFIX.length));
    if (!bytes) return { ok: false, message: `${where} is not valid base64 after ${SECRET_PREFIX}` };
    if (bytes.length < SECRET_MIN_BYTES || bytes.length > SECRET_MAX_BYTES) {
      return { ok: false, message: `${where} must decode to ${SECRET_MIN_BYTES} to ${SECRET_MAX_BYTES} bytes, got ${bytes.length}` };
    }
    secrets.push(bytes);
  }
  return { ok: true, secrets };
}

/** Makes the HMAC keys once (a key import per delivery would be wasted work). */
export async function signingSecrets(secrets: readonly Uint8Array[]): Promise<SigningSecret[]> {
  return Promise.all(
    secrets.map(async (bytes) => ({
      bytes,
      key: await crypto.subtle.importKey('raw', bytes as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']),
    })),
  );
}

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * The three Standard Webhooks headers for `body`, sent at `timestamp`. The id stays the same on every
 * attempt of one message (receivers deduplicate by it); the timestamp and signatures are of each attempt.
 * @example await signWebhook({ id: 'msg_1', timestamp: new Date(), body: '{}', secrets })
 */
export async function signWebhook({
  id,
  timestamp,
  body,
  secrets,
}: {
  id: string;
  timestamp: Date;
  body: string;
  secrets: readonly SigningSecret[];
}): Promise<SignedHeaders> {
  if (secrets.length === 0) throw new Error('signWebhook needs at least one secret');
  const seconds = String(Math.floor(timestamp.getTime() / 1000));
  const content = new TextEncoder().encode(`${id}.${seconds}.${body}`);
  const signatures = await Promise.all(
    secrets.map(async ({ key }) => `v1,${encodeBase64(new Uint8Array(await crypto.subtle.sign('HMAC', key, content)))}`),
  );
  return { 'webhook-id': id, 'webhook-timestamp': seconds, 'webhook-signature': signatures.join(' ') };
}

/**
 * The message id of a job's event: derived from the job and the event, so enqueueing it again (a worker that
 * died after the job ended, a restart) names the same message and is deduplicated, by the queue and by receivers.
 * @example webhookId('3f…', 'job.completed') // 'msg_3f…_completed'
 */
export function webhookId(processingId: string, type: `job.${string}`): string {
  return `msg_${processingId}_${type.slice('job.'.length)}`;
}

/** A new random secret in the `whsec_` form (for docs and tests: `node -e` one-liners use it). */
export function generateSecret(bytes = 32): string {
  return SECRET_PREFIX + encodeBase64(crypto.getRandomValues(new Uint8Array(bytes)));
}

function encodeBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function decodeBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 === 1) return undefined;
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}
