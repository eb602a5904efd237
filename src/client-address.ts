/**
 * @module
 * Who is calling, by address: the connection's peer, or with `TRUST_PROXY` = N > 0 the address N entries from
 * the right of `X-Forwarded-For` (each trusted proxy appends the address it received the request from; the
 * AWS ALB is one hop). Pure functions over strings, no Node imports, so any runtime and any test can use them.
 *
 * The walk from the right stops early, and keeps the last address it believed, when an entry is not an IP
 * address (a proxy in the chain is not what `TRUST_PROXY` says, so nothing further left is believed) or when
 * the header has fewer entries than N (the leftmost entry is then the client: it came through fewer
 * proxies). With no usable entry at all the peer's address is the answer. Only the last
 * `MAX_FORWARDED_CHARS` characters of the header are read: the trusted entries are at its right end.
 */

/** Enough for 10 hops of the longest form (`[v6]:port`, 47 characters) and their separators. */
export const MAX_FORWARDED_CHARS = 1024;

export interface AddressSources {
  /** The `X-Forwarded-For` header as received (several headers joined by commas), if any. */
  forwardedFor?: string | undefined;
  /** The connection's peer address, as the runtime reports it. */
  peer?: string | undefined;
  /** `TRUST_PROXY`: how many proxies in front of this service append to `X-Forwarded-For`. */
  trustedHops: number;
}

/**
 * The client's address in canonical form (IPv4 dotted, IPv6 compressed lowercase), or `undefined` when
 * neither the peer nor a believed header entry is an IP address.
 * @example clientAddress({ forwardedFor: '6.6.6.6, 203.0.113.7', peer: '10.0.1.5', trustedHops: 1 }) // '203.0.113.7'
 */
export function clientAddress({ forwardedFor, peer, trustedHops }: AddressSources): string | undefined {
  let address = peer === undefined ? undefined : parseIpAddress(peer);
  if (trustedHops <= 0 || !forwardedFor) return address;
  const cut = forwardedFor.length > MAX_FORWARDED_CHARS;
  const entries = (cut ? forwardedFor.slice(-MAX_FORWARDED_CHARS) : forwardedFor).split(',');
  if (cut) entries.shift(); // cut in the middle of an entry
  for (let hop = 0; hop < trustedHops && entries.length > 0; hop++) {
    const entry = parseIpAddress(entries.pop()!);
    if (entry === undefined) break;
    address = entry;
  }
  return address;
}

/**
 * What a rate limit counts per address: an IPv4 address itself, an IPv6 address's /64 (one host can use
 * any address of its /64, so counting single IPv6 addresses would limit nobody).
 * @example addressNetwork('2001:db8:1:2:3:4:5:6') // '2001:db8:1:2::/64'
 */
export function addressNetwork(address: string): string {
  const groups = ipv6Groups(address);
  return groups ? `${formatIpv6([...groups.slice(0, 4), 0, 0, 0, 0])}/64` : address;
}

/**
 * An IP address in canonical form, from the forms proxies and runtimes write: `1.2.3.4`, `1.2.3.4:5678`,
 * `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`; IPv4-mapped IPv6 (`::ffff:1.2.3.4`) gives the IPv4
 * address. Anything else (host names, zone ids, `unknown`, leading zeros in IPv4) is `undefined`.
 * @example parseIpAddress(' [2001:DB8:0::1]:443 ') // '2001:db8::1'
 */
export function parseIpAddress(text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed.length === 0 || trimmed.length > 64) return undefined;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(trimmed);
  const v4 = bracketed ? undefined : /^(\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?$/.exec(trimmed);
  if (v4) return ipv4(v4[1]!);
  const groups = ipv6Groups(bracketed ? bracketed[1]! : trimmed);
  if (!groups) return undefined;
  const mapped = groups.slice(0, 6).every((group, index) => group === (index === 5 ? 0xffff : 0));
  return mapped ? [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.') : formatIpv6(groups);
}

function ipv4(text: string): string | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9]\d{0,2})$/.test(part) && Number(part) <= 255)) return undefined;
  return parts.map(Number).join('.');
}

/** The eight 16-bit groups of an IPv6 address (with `::` and an IPv4 tail), or `undefined`. */
function ipv6Groups(text: string): number[] | undefined {
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(text)) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (half: string, last: boolean): number[] | undefined => {
    if (half === '') return [];
    const groups: number[] = [];
    const parts = half.split(':');
    for (const [index, part] of parts.entries()) {
      if (last && index === parts.length - 1 && part.includes('.')) {
        const tail = ipv4(part);
        if (!tail) return undefined;
        const [a, b, c, d] = tail.split('.').map(Number) as [number, number, number, number];
        groups.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(part)) {
        groups.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const head = parse(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? parse(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  return missing >= 1 ? [...head, ...new Array<number>(missing).fill(0), ...tail] : undefined;
}

/** RFC 5952: lowercase, no leading zeros, the longest run of two or more zero groups as `::`. */
function formatIpv6(groups: number[]): string {
  let best = { start: -1, length: 1 };
  for (let start = 0; start < 8;) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > best.length) best = { start, length: end - start };
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}
