/**
 * @module
 * The SSRF guard for webhooks, with Node's resolver: a `notify_url` is parsed (`src/webhooks/notify-url.ts`),
 * its host resolved once, and every address it resolves to judged; the transport then connects to the address
 * vetted here and nowhere else, so a name that resolves elsewhere a moment later (DNS rebinding) changes nothing.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { NotifyUrlPolicy } from '../ports.js';
import { EMPTY_ALLOW_LIST, parseIp, type AllowList } from '../webhooks/addresses.js';
import { formatIp, judgeAddress, parseNotifyUrl, WEBHOOKS_NOT_CONFIGURED, type NotifyUrlRefusal } from '../webhooks/notify-url.js';

/** Resolver answers that mean the name has no address (any other failure is the resolver's own). */
const NO_SUCH_NAME: ReadonlySet<string> = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME', 'NXDOMAIN']);

/** Resolves a host name to all its addresses (tests inject one that answers what they need). */
export type Resolve = (host: string) => Promise<Array<{ address: string; family: number }>>;

export const systemResolve: Resolve = (host) => dnsLookup(host, { all: true, verbatim: true });

/** Where a delivery connects: the URL as stored, and the one address it goes to. */
export interface VettedTarget {
  ok: true;
  url: URL;
  /** The host name (for `Host` and TLS SNI); equal to `address` for an IP literal. */
  host: string;
  address: string;
  family: 4 | 6;
}

export interface NotifyUrlGuardOptions {
  /** False without `WEBHOOK_SECRETS`: every URL is refused, saying so. */
  enabled: boolean;
  allowHttp: boolean;
  allowList?: AllowList;
  resolve?: Resolve;
  resolveTimeoutMs?: number;
}

export class NotifyUrlGuard implements NotifyUrlPolicy {
  private readonly rules: { allowHttp: boolean; allowList: AllowList };
  private readonly resolveHost: Resolve;

  constructor(private readonly options: NotifyUrlGuardOptions) {
    this.rules = { allowHttp: options.allowHttp, allowList: options.allowList ?? EMPTY_ALLOW_LIST };
    this.resolveHost = options.resolve ?? systemResolve;
  }

  async check(text: string): Promise<{ ok: true; url: string } | NotifyUrlRefusal> {
    const target = await this.vet(text);
    return target.ok ? { ok: true, url: target.url.href } : target;
  }

  /**
   * The address to connect to for `text`, or why not. The host is resolved once; one refused address
   * refuses the URL (a receiver has no reason to publish a private address beside its public one).
   */
  async vet(text: string): Promise<VettedTarget | NotifyUrlRefusal> {
    if (!this.options.enabled) return WEBHOOKS_NOT_CONFIGURED;
    const parsed = parseNotifyUrl(text, this.rules);
    if (!parsed.ok) return parsed;
    const url = new URL(parsed.url);
    if (parsed.literal) return { ok: true, url, host: parsed.host, address: parsed.host, family: parsed.literal.length === 4 ? 4 : 6 };
    let found: Array<{ address: string; family: number }>;
    try {
      found = await this.resolveWithin(parsed.host);
    } catch (error) {
      const code = (error as { code?: string }).code;
      // A name that does not exist is the client's to fix; a resolver that timed out or failed is ours.
      if (!code || !NO_SUCH_NAME.has(code)) {
        return {
          ok: false,
          reason: 'dns_unavailable',
          detail: `notify_url's host ${JSON.stringify(parsed.host.slice(0, 100))} could not be looked up just now${code ? ` (${code})` : ''}; retry shortly`,
        };
      }
      return {
        ok: false,
        reason: 'unresolvable',
        detail: `notify_url's host ${JSON.stringify(parsed.host.slice(0, 100))} does not resolve${code ? ` (${code})` : ''}`,
      };
    }
    const addresses = found.map((entry) => parseIp(entry.address)).filter((address) => address !== undefined);
    if (addresses.length === 0)
      return { ok: false, reason: 'unresolvable', detail: `notify_url's host ${JSON.stringify(parsed.host.slice(0, 100))} has no address` };
    if (!parsed.allowedByName) {
      for (const address of addresses) {
        const refusal = judgeAddress(address, this.rules.allowList, parsed.host);
        if (refusal) return refusal;
      }
    }
    const first = addresses[0]!;
    return { ok: true, url, host: parsed.host, address: formatIp(first), family: first.length === 4 ? 4 : 6 };
  }

  private resolveWithin(host: string): Promise<Array<{ address: string; family: number }>> {
    const timeoutMs = this.options.resolveTimeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(Object.assign(new Error('DNS timeout'), { code: 'ETIMEOUT' })), timeoutMs);
      this.resolveHost(host)
        .then(resolve, reject)
        .finally(() => clearTimeout(timer));
    });
  }
}
