/**
 * The client's address from the peer and `X-Forwarded-For`, as `TRUST_PROXY` says to read it, with the
 * header taken from plain `Request`s (several headers are joined by commas, as Node's server joins them).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressNetwork, clientAddress, MAX_FORWARDED_CHARS, parseIpAddress } from '../../src/client-address.js';
import { loadConfig } from '../../src/config.js';

const forwarded = (...values: string[]) => {
  const headers = new Headers();
  for (const value of values) headers.append('x-forwarded-for', value);
  return new Request('http://service.test/list', { headers }).headers.get('x-forwarded-for') ?? undefined;
};
const alb = '10.0.1.5';

describe('clientAddress', () => {
  it('TRUST_PROXY=0: the peer, whatever the header says', () => {
    expect(clientAddress({ forwardedFor: forwarded('203.0.113.7'), peer: alb, trustedHops: 0 })).toBe(alb);
    expect(clientAddress({ forwardedFor: undefined, peer: '::ffff:127.0.0.1', trustedHops: 0 })).toBe('127.0.0.1');
    expect(clientAddress({ forwardedFor: undefined, peer: undefined, trustedHops: 0 })).toBeUndefined();
  });

  it('TRUST_PROXY=1 (the ALB): the rightmost entry, which the ALB appended; what the client sent is to its left', () => {
    expect(clientAddress({ forwardedFor: forwarded('203.0.113.7'), peer: alb, trustedHops: 1 })).toBe('203.0.113.7');
    expect(clientAddress({ forwardedFor: forwarded('1.1.1.1, 6.6.6.6', '203.0.113.7'), peer: alb, trustedHops: 1 })).toBe('203.0.113.7');
    expect(clientAddress({ forwardedFor: forwarded('evil', '203.0.113.7:51234'), peer: alb, trustedHops: 1 })).toBe('203.0.113.7');
    expect(clientAddress({ forwardedFor: forwarded('[2001:DB8::7]:443'), peer: alb, trustedHops: 1 })).toBe('2001:db8::7');
  });

  it('TRUST_PROXY=2: the second entry from the right', () => {
    expect(clientAddress({ forwardedFor: forwarded('6.6.6.6, 198.51.100.1, 130.176.0.9'), peer: alb, trustedHops: 2 })).toBe(
      '198.51.100.1',
    );
  });

  it('fewer entries than TRUST_PROXY: the leftmost (the request came through fewer proxies); none: the peer', () => {
    expect(clientAddress({ forwardedFor: forwarded('198.51.100.1'), peer: alb, trustedHops: 3 })).toBe('198.51.100.1');
    expect(clientAddress({ forwardedFor: undefined, peer: alb, trustedHops: 1 })).toBe(alb);
    expect(clientAddress({ forwardedFor: '', peer: alb, trustedHops: 1 })).toBe(alb);
  });

  it('an entry that is not an IP address stops the walk: the last believed address is kept', () => {
    expect(clientAddress({ forwardedFor: 'unknown', peer: alb, trustedHops: 1 })).toBe(alb);
    expect(clientAddress({ forwardedFor: '198.51.100.1, ', peer: alb, trustedHops: 1 })).toBe(alb);
    expect(clientAddress({ forwardedFor: '6.6.6.6, bogus, 130.176.0.9', peer: alb, trustedHops: 2 })).toBe('130.176.0.9');
    expect(clientAddress({ forwardedFor: '6.6.6.6, host.example, 130.176.0.9', peer: alb, trustedHops: 3 })).toBe('130.176.0.9');
  });

  it('reads only the right end of a huge header', () => {
    const huge = `${'9.9.9.9, '.repeat(100_000)}203.0.113.7`;
    expect(clientAddress({ forwardedFor: huge, peer: alb, trustedHops: 1 })).toBe('203.0.113.7');
    // A cut entry is not read: the leftmost entry wholly inside the window is.
    const cut = `${'1'.repeat(MAX_FORWARDED_CHARS)}, 203.0.113.7`;
    expect(clientAddress({ forwardedFor: cut, peer: alb, trustedHops: 5 })).toBe('203.0.113.7');
  });

  it('whatever the header, the answer is the peer or an IP address in canonical form (property)', () => {
    const entry = fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 20 }));
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 12 }), fc.integer({ min: 0, max: 10 }), (entries, hops) => {
        const address = clientAddress({ forwardedFor: entries.join(','), peer: alb, trustedHops: hops });
        expect(address === alb || (address !== undefined && parseIpAddress(address) === address)).toBe(true);
      }),
    );
  });

  it('a header of valid entries, at least TRUST_PROXY of them: the entry that many from the right (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.ipV4(), fc.ipV6()), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 10 }),
        (entries, hops) => {
          fc.pre(hops <= entries.length);
          const address = clientAddress({ forwardedFor: entries.join(', '), peer: alb, trustedHops: hops });
          expect(address).toBe(parseIpAddress(entries[entries.length - hops]!));
        },
      ),
    );
  });
});

describe('parseIpAddress', () => {
  it('accepts the forms proxies write and gives a canonical one', () => {
    const cases: Array<[string, string]> = [
      ['192.0.2.1', '192.0.2.1'],
      [' 192.0.2.1:8080 ', '192.0.2.1'],
      ['0.0.0.0', '0.0.0.0'],
      ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
      ['[2001:db8::1]', '2001:db8::1'],
      ['[2001:db8::1]:443', '2001:db8::1'],
      ['::1', '::1'],
      ['::', '::'],
      ['::ffff:192.0.2.1', '192.0.2.1'],
      ['::ffff:c000:201', '192.0.2.1'],
      ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
      ['2001:db8:0:1:0:0:1:1', '2001:db8:0:1::1:1'],
      ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ];
    for (const [text, canonical] of cases) expect(parseIpAddress(text), text).toBe(canonical);
  });

  it('refuses everything else', () => {
    for (const text of [
      '',
      'unknown',
      'localhost',
      '256.1.1.1',
      '1.2.3',
      '01.2.3.4',
      '1.2.3.4.5',
      '1.2.3.4:',
      '1.2.3.4:123456',
      '2001:db8::1::2',
      '2001:db8:1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7',
      'fe80::1%eth0',
      '[::1',
      '::1]',
      'gggg::1',
      '12345::1',
      '::ffff:1.2.3',
      ':1:2:3:4:5:6:7',
      '2001:db8::1:8080x',
    ]) {
      expect(parseIpAddress(text), text).toBeUndefined();
    }
  });
});

describe('addressNetwork', () => {
  it('IPv4 counts alone, IPv6 by its /64', () => {
    expect(addressNetwork('192.0.2.1')).toBe('192.0.2.1');
    expect(addressNetwork('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressNetwork('2001:db8:1:2::ffff')).toBe('2001:db8:1:2::/64');
    expect(addressNetwork('::1')).toBe('::/64');
  });
});

describe('TRUST_PROXY', () => {
  it('is a hop count from 0 (the default: trust no proxy) to 10; anything else stops start-up naming it', () => {
    expect(loadConfig({}).TRUST_PROXY).toBe(0);
    expect(loadConfig({ TRUST_PROXY: '1' }).TRUST_PROXY).toBe(1);
    for (const value of ['true', '-1', '11', '1.5'])
      expect(() => loadConfig({ TRUST_PROXY: value }), value).toThrow(/TRUST_PROXY must be an integer from 0 to 10/);
  });
});
