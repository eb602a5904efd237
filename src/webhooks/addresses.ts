/**
 * @module
 * Which IP addresses a webhook may be sent to: the IANA special-purpose ranges a server-side request must
 * never reach (private, loopback, link-local and the cloud metadata address, CGNAT, multicast, documentation,
 * ...), the IPv6 forms that carry an IPv4 address inside (mapped, NAT64, 6to4), and CIDR allow lists. Pure
 * code over address text as `URL` and the resolver give it.
 */

/** An address as 4 or 16 bytes. */
export type IpBytes = Uint8Array;

/**
 * Parses canonical IPv4 (dotted quad) or IPv6 text (with or without brackets, `::`, an IPv4 tail, a zone),
 * as WHATWG `URL` and `dns.lookup` produce them; `undefined` when it is neither.
 * @example parseIp('::ffff:7f00:1') // 16 bytes
 */
export function parseIp(text: string): IpBytes | undefined {
  const host = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  return host.includes(':') ? parseIpv6(host) : parseIpv4(host);
}

function parseIpv4(text: string): IpBytes | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9]\d{0,2})$/.test(part) && Number(part) <= 255)) return undefined;
  return Uint8Array.from(parts.map(Number));
}

function parseIpv6(text: string): IpBytes | undefined {
  const host = text.replace(/%.*$/, '');
  const halves = host.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === '') return [];
    const out: number[] = [];
    const pieces = half.split(':');
    for (const [index, piece] of pieces.entries()) {
      if (index === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIpv4(piece);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) out.push(parseInt(piece, 16));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, index) => {
    bytes[index * 2] = group >> 8;
    bytes[index * 2 + 1] = group & 0xff;
  });
  return bytes;
}

export interface Cidr {
  base: IpBytes;
  bits: number;
}

/**
 * Parses `10.0.0.0/8`, `fc00::/7`, or a bare address (all its bits).
 * @example parseCidr('127.0.0.1') // { base: [127,0,0,1], bits: 32 }
 */
export function parseCidr(text: string): Cidr | undefined {
  const [address, prefix, extra] = text.split('/');
  if (extra !== undefined || address === undefined) return undefined;
  const base = parseIp(address);
  if (!base) return undefined;
  const max = base.length * 8;
  if (prefix === undefined) return { base, bits: max };
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return undefined;
  return { base, bits: Number(prefix) };
}

export function inCidr(address: IpBytes, { base, bits }: Cidr): boolean {
  if (address.length !== base.length) return false;
  for (let bit = 0; bit < bits; bit += 8) {
    const take = Math.min(8, bits - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((address[bit / 8]! & mask) !== (base[bit / 8]! & mask)) return false;
  }
  return true;
}

const range = (cidr: string, name: string) => ({ cidr: parseCidr(cidr)!, name });

const IPV4_REFUSED = [
  range('0.0.0.0/8', '"this network" (0.0.0.0/8)'),
  range('10.0.0.0/8', 'private (10.0.0.0/8)'),
  range('100.64.0.0/10', 'carrier-grade NAT shared space (100.64.0.0/10)'),
  range('127.0.0.0/8', 'loopback (127.0.0.0/8)'),
  range('169.254.169.254/32', 'the cloud instance metadata address (169.254.169.254)'),
  range('169.254.0.0/16', 'link-local (169.254.0.0/16)'),
  range('172.16.0.0/12', 'private (172.16.0.0/12)'),
  range('192.0.0.0/24', 'IETF protocol assignments (192.0.0.0/24)'),
  range('192.0.2.0/24', 'documentation (192.0.2.0/24)'),
  range('192.88.99.0/24', '6to4 relay anycast (192.88.99.0/24)'),
  range('192.168.0.0/16', 'private (192.168.0.0/16)'),
  range('198.18.0.0/15', 'benchmarking (198.18.0.0/15)'),
  range('198.51.100.0/24', 'documentation (198.51.100.0/24)'),
  range('203.0.113.0/24', 'documentation (203.0.113.0/24)'),
  range('224.0.0.0/4', 'multicast (224.0.0.0/4)'),
  range('255.255.255.255/32', 'broadcast (255.255.255.255)'),
  range('240.0.0.0/4', 'reserved (240.0.0.0/4)'),
];

const IPV6_REFUSED = [
  range('::/128', 'unspecified (::)'),
  range('::1/128', 'loopback (::1)'),
  range('::ffff:0:0/96', 'IPv4-mapped (::ffff:0:0/96)'),
  range('64:ff9b:1::/48', 'local-use NAT64 (64:ff9b:1::/48)'),
  range('100::/64', 'discard-only (100::/64)'),
  range('2001:db8::/32', 'documentation (2001:db8::/32)'),
  range('2001::/23', 'IETF protocol assignments (2001::/23, Teredo among them)'),
  range('3fff::/20', 'documentation (3fff::/20)'),
  range('fc00::/7', 'unique local (fc00::/7)'),
  range('fe80::/10', 'link-local (fe80::/10)'),
  range('fec0::/10', 'site-local (fec0::/10)'),
  range('ff00::/8', 'multicast (ff00::/8)'),
  range('::/8', 'reserved (::/8)'),
];

/** IPv6 prefixes that carry an IPv4 address: it is judged as the IPv4 address it reaches. */
const NAT64 = parseCidr('64:ff9b::/96')!;
const SIX_TO_FOUR = parseCidr('2002::/16')!;
const GLOBAL_UNICAST = parseCidr('2000::/3')!;

/**
 * Why a webhook may not go to this address (a phrase naming the range), or `undefined` when it may.
 * IPv4-mapped IPv6 is refused whatever it maps to: the IPv4 address itself is the way to name it.
 * @example refusedRange(parseIp('10.1.2.3')!) // 'private (10.0.0.0/8)'
 */
export function refusedRange(address: IpBytes): string | undefined {
  if (address.length === 4) return IPV4_REFUSED.find(({ cidr }) => inCidr(address, cidr))?.name;
  if (inCidr(address, NAT64)) {
    const inner = refusedRange(address.slice(12));
    return inner && `NAT64 (64:ff9b::/96) of an address that is ${inner}`;
  }
  if (inCidr(address, SIX_TO_FOUR)) {
    const inner = refusedRange(address.slice(2, 6));
    return inner && `6to4 (2002::/16) of an address that is ${inner}`;
  }
  const named = IPV6_REFUSED.find(({ cidr }) => inCidr(address, cidr))?.name;
  if (named) return named;
  return inCidr(address, GLOBAL_UNICAST) ? undefined : 'not global unicast (outside 2000::/3)';
}

/** `WEBHOOK_ALLOWED_HOSTS`: host names (exact, case-insensitive) and CIDRs exempt from the range check. */
export interface AllowList {
  hosts: ReadonlySet<string>;
  cidrs: readonly Cidr[];
}

export const EMPTY_ALLOW_LIST: AllowList = { hosts: new Set(), cidrs: [] };

/**
 * Parses the comma-separated list; an entry that is neither a host name nor an address or CIDR is an error.
 * @example parseAllowList('127.0.0.1, hooks.internal, 10.0.0.0/8')
 */
export function parseAllowList(
  text: string | undefined,
  variable = 'WEBHOOK_ALLOWED_HOSTS',
): { ok: true; list: AllowList } | { ok: false; message: string } {
  const hosts = new Set<string>();
  const cidrs: Cidr[] = [];
  for (const entry of (text ?? '')
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter(Boolean)) {
    const cidr = parseCidr(entry);
    if (cidr) cidrs.push(cidr);
    else if (/^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/.test(entry))
      hosts.add(entry.replace(/\.$/, ''));
    else
      return {
        ok: false,
        message: `${variable} must be a comma-separated list of host names, IP addresses and CIDRs (10.0.0.0/8, fd00::/8); got ${JSON.stringify(entry.slice(0, 100))}`,
      };
  }
  return { ok: true, list: { hosts, cidrs } };
}

export const hostAllowed = (list: AllowList, host: string) => list.hosts.has(host.toLowerCase().replace(/\.$/, ''));
export const addressAllowed = (list: AllowList, address: IpBytes) => list.cidrs.some((cidr) => inCidr(address, cidr));
