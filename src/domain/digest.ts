/**
 * @module
 * Hashing with Web Crypto, so handlers and middleware stay portable (no `node:crypto`).
 */

/**
 * The SHA-256 of a string, as lower-case hex.
 * @example await sha256Hex('abc') // 'ba7816bf…'
 */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * An API key's id, from the hex SHA-256 of the key: its first 32 digits (`printf %s "$KEY" | sha256sum |
 * cut -c1-32`). What the service keeps and logs of a caller, and what WEBHOOK_KEY_URLS names; never the key.
 */
export const apiKeyId = (sha256: string): string => sha256.slice(0, 32);
