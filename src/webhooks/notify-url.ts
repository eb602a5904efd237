/**
 * @module
 * What a `notify_url` must be, before and after its host is resolved: `https` (or `http` where
 * `WEBHOOK_ALLOW_HTTP` allows it), no credentials, at most `MAX_NOTIFY_URL_LENGTH` characters, and a host
 * whose every address is outside the special-purpose ranges unless `WEBHOOK_ALLOWED_HOSTS` allows it. The
 * checks run on the host as WHATWG `URL` normalises it, so `http://2130706433/`, `http://0x7f.1/` and
 * `http://017700000001/` are all judged as the 127.0.0.1 they are. Resolving is the adapter's
 * (`src/adapters/notify-url-guard.ts`); this file is pure.
 */
import { AppError } from '../domain/errors.js';
import type { NotifyUrlDefaults } from '../ports.js';
import { addressAllowed, hostAllowed, parseIp, refusedRange, type AllowList, type IpBytes } from './addresses.js';

export const MAX_NOTIFY_URL_LENGTH = 2048;

export type NotifyUrlReason =
  'webhooks_not_configured' | 'malformed' | 'too_long' | 'scheme' | 'credentials' | 'refused_address' | 'unresolvable' | 'dns_unavailable';

export type NotifyUrlRefusal = { ok: false; reason: NotifyUrlReason; detail: string };

/** The refusal of every `notify_url` where no `WEBHOOK_SECRETS` are configured (nothing could sign the deliveries). */
export const WEBHOOKS_NOT_CONFIGURED: NotifyUrlRefusal = {
  ok: false,
  reason: 'webhooks_not_configured',
  detail: 'notify_url cannot be used: this deployment has no WEBHOOK_SECRETS to sign deliveries with',
};

/** A URL fit to be stored, with the host as it will be connected to. */
export interface ParsedNotifyUrl {
  ok: true;
  /** The normalised URL (no fragment): what is stored and posted to. */
  url: string;
  /** The host name as `URL` normalised it, without brackets or a trailing dot. */
  host: string;
  /** Set when the host is an IP address literal: nothing to resolve. */
  literal?: IpBytes;
  /** True when `WEBHOOK_ALLOWED_HOSTS` names the host: its addresses are not checked. */
  allowedByName: boolean;
}

export interface NotifyUrlRules {
  allowHttp: boolean;
  allowList: AllowList;
}

const refuse = (reason: NotifyUrlReason, detail: string): NotifyUrlRefusal => ({ ok: false, reason, detail });

/**
 * The checks that need no network: syntax, scheme, credentials, length, and an IP literal's range.
 * @example parseNotifyUrl('http://0x7f.1/', { allowHttp: true, allowList }) // refused: loopback
 */
export function parseNotifyUrl(text: string, { allowHttp, allowList }: NotifyUrlRules): ParsedNotifyUrl | NotifyUrlRefusal {
  if (text.length > MAX_NOTIFY_URL_LENGTH)
    return refuse('too_long', `notify_url must be at most ${MAX_NOTIFY_URL_LENGTH} characters, got ${text.length}`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return refuse('malformed', 'notify_url must be an absolute URL such as https://example.com/hooks/images');
  }
  const schemes = allowHttp ? 'https or http' : 'https (http is refused unless WEBHOOK_ALLOW_HTTP=true)';
  if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) {
    return refuse('scheme', `notify_url must use ${schemes}, got ${JSON.stringify(url.protocol.replace(/:$/, '').slice(0, 20))}`);
  }
  if (url.username || url.password)
    return refuse('credentials', 'notify_url must not carry a user name or password; deliveries are signed instead (webhook-signature)');
  url.hash = '';
  const host = url.hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  if (!host) return refuse('malformed', 'notify_url must name a host');
  const allowedByName = hostAllowed(allowList, host);
  const literal = parseIp(host);
  if (literal && !allowedByName) {
    const refusal = judgeAddress(literal, allowList, host);
    if (refusal) return refusal;
  }
  return { ok: true, url: url.href, host, literal, allowedByName };
}

/** The refusal for one address of `host`, or `undefined` when a webhook may go there. */
export function judgeAddress(address: IpBytes, allowList: AllowList, host: string): NotifyUrlRefusal | undefined {
  if (addressAllowed(allowList, address)) return undefined;
  const range = refusedRange(address);
  if (!range) return undefined;
  const shown = formatIp(address);
  const what = shown === host ? `its address ${shown}` : `${JSON.stringify(host)} resolves to ${shown}, which`;
  return refuse(
    'refused_address',
    `notify_url must reach a public address: ${what} is ${range}; WEBHOOK_ALLOWED_HOSTS can allow a host or range`,
  );
}

/** Canonical text of an address (IPv6 compressed), for messages. */
export function formatIp(address: IpBytes): string {
  if (address.length === 4) return address.join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((address[i * 2]! << 8) | address[i * 2 + 1]!).toString(16));
  let best = { start: -1, length: 0 };
  for (let start = 0; start < 8;) {
    let end = start;
    while (end < 8 && groups[end] === '0') end++;
    if (end - start > best.length && end - start > 1) best = { start, length: end - start };
    start = end === start ? start + 1 : end;
  }
  if (best.start < 0) return groups.join(':');
  return `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.length).join(':')}`;
}

/**
 * The 400 a handler answers for a refused `notify_url`: code `invalid_notify_url`, the reason in `detail`
 * and in `errors[0]` (path `notify_url`), and the machine-readable reason as `reason`.
 */
export function notifyUrlProblem(refusal: NotifyUrlRefusal, path = 'notify_url'): AppError {
  return new AppError(400, 'invalid_notify_url', refusal.detail, {
    errors: [{ path, message: refusal.detail }],
    extensions: { reason: refusal.reason },
  });
}

/** A deployment's default `notify_url` for one job, and the variable it comes from. */
export interface DefaultNotifyUrl {
  url: string;
  source: 'WEBHOOK_KEY_URLS' | 'WEBHOOK_DEFAULT_URL';
}

/**
 * The default for a job that names no `notify_url`: the caller's key's (`caller` is `key:<key-id>` when
 * API_KEYS is set), else the deployment's; `undefined` when neither is configured.
 * @example defaultNotifyUrl({ global: 'https://hooks.example/all', perKey: new Map() }, undefined) // WEBHOOK_DEFAULT_URL's
 */
export function defaultNotifyUrl(defaults: NotifyUrlDefaults | undefined, caller: string | undefined): DefaultNotifyUrl | undefined {
  const keyId = caller?.startsWith('key:') ? caller.slice(4) : undefined;
  const perKey = keyId === undefined ? undefined : defaults?.perKey.get(keyId);
  if (perKey !== undefined) return { url: perKey, source: 'WEBHOOK_KEY_URLS' };
  return defaults?.global === undefined ? undefined : { url: defaults.global, source: 'WEBHOOK_DEFAULT_URL' };
}

/** Seconds a client is told to wait after a refused default: long enough for an operator to be paged, not a retry storm. */
export const DEFAULT_REFUSED_RETRY_AFTER_SECONDS = 60;

/**
 * The answer when the deployment's default fails the guard. Not the client's 400: the client sent no URL, and
 * cannot mend the operator's; a 503 (`default_notify_url_refused`) with the reason but not the URL or its
 * addresses (they are the operator's, not the client's to see), and what the client can do meanwhile.
 */
export function defaultNotifyUrlProblem(refusal: NotifyUrlRefusal, source: DefaultNotifyUrl['source']): AppError {
  if (refusal.reason === 'dns_unavailable') {
    return new AppError(
      503,
      'dns_unavailable',
      `the host of this deployment's default notify_url (${source}) could not be looked up just now; retry shortly`,
      { headers: { 'Retry-After': '5' }, extensions: { reason: refusal.reason } },
    );
  }
  return new AppError(
    503,
    'default_notify_url_refused',
    `this deployment's default notify_url (${source}) is refused (${refusal.reason}), a fault of its configuration; until it is mended, send a notify_url of your own, or an empty notify_url for a job without a webhook`,
    { headers: { 'Retry-After': String(DEFAULT_REFUSED_RETRY_AFTER_SECONDS) }, extensions: { reason: refusal.reason } },
  );
}
