/**
 * The SSRF guard: a notify_url pointing at loopback, private or special ranges, in any spelling WHATWG URL
 * normalises (decimal, hex, octal, IPv6-mapped), or at a name that resolves there, is refused with a reason a
 * person can act on; WEBHOOK_ALLOWED_HOSTS lets a deployment allow its own. Real `localhost` resolution, and
 * an injected resolver for names that cannot exist offline.
 */
import { describe, expect, it } from 'vitest';
import { NotifyUrlGuard, type Resolve } from '../../src/adapters/notify-url-guard.js';
import { parseAllowList, parseIp, refusedRange } from '../../src/webhooks/addresses.js';
import { formatIp, notifyUrlProblem } from '../../src/webhooks/notify-url.js';
import { problemBody } from '../../src/problem.js';

const zone: Record<string, string[]> = {
  'internal.example': ['10.0.0.5'],
  'mixed.example': ['93.184.215.14', '192.168.1.1'],
  'metadata.example': ['169.254.169.254'],
  'v6-private.example': ['fd12:3456::1'],
  'public.example': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
  'hooks.internal': ['10.1.2.3'],
};
const fakeResolve: Resolve = async (host) => {
  const found = zone[host];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

const allow = (text = '') => {
  const parsed = parseAllowList(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.list;
};
const guard = (options: { allowHttp?: boolean; allowed?: string; resolve?: Resolve } = {}) =>
  new NotifyUrlGuard({
    enabled: true,
    allowHttp: options.allowHttp ?? true,
    allowList: allow(options.allowed),
    resolve: options.resolve ?? fakeResolve,
  });

describe('notify_url refusals', () => {
  it.each([
    ['http://127.0.0.1/hook', /its address 127\.0\.0\.1 is loopback \(127\.0\.0\.0\/8\)/],
    ['http://127.1.2.3:8080/', /loopback/],
    ['http://2130706433/', /127\.0\.0\.1 is loopback/],
    ['http://0x7f.1/', /127\.0\.0\.1 is loopback/],
    ['http://017700000001/', /127\.0\.0\.1 is loopback/],
    ['http://0x7f000001/', /127\.0\.0\.1 is loopback/],
    ['http://0177.0.0.1/', /127\.0\.0\.1 is loopback/],
    ['http://[::1]/', /its address ::1 is loopback \(::1\)/],
    ['http://[::ffff:127.0.0.1]/', /IPv4-mapped/],
    ['http://[::ffff:7f00:1]/', /IPv4-mapped/],
    ['http://[::ffff:8.8.8.8]/', /IPv4-mapped/],
    ['http://[64:ff9b::10.0.0.1]/', /NAT64 \(64:ff9b::\/96\) of an address that is private \(10\.0\.0\.0\/8\)/],
    ['http://[2002:c0a8:101::1]/', /6to4 \(2002::\/16\) of an address that is private \(192\.168\.0\.0\/16\)/],
    ['http://10.0.0.1/', /private \(10\.0\.0\.0\/8\)/],
    ['http://172.16.5.4/', /private \(172\.16\.0\.0\/12\)/],
    ['http://172.31.255.255/', /private \(172\.16\.0\.0\/12\)/],
    ['http://192.168.0.1/', /private \(192\.168\.0\.0\/16\)/],
    ['http://169.254.169.254/latest/meta-data/', /the cloud instance metadata address/],
    ['http://169.254.1.1/', /link-local \(169\.254\.0\.0\/16\)/],
    ['http://100.64.0.1/', /carrier-grade NAT/],
    ['http://0.0.0.0/', /"this network"/],
    ['http://0/', /"this network"/],
    ['http://224.0.0.1/', /multicast/],
    ['http://255.255.255.255/', /broadcast/],
    ['http://192.0.2.10/', /documentation/],
    ['http://198.51.100.1/', /documentation/],
    ['http://203.0.113.1/', /documentation/],
    ['http://[fe80::1]/', /link-local \(fe80::\/10\)/],
    ['http://[fc00::1]/', /unique local/],
    ['http://[fd00:ec2::254]/', /unique local/],
    ['http://[ff02::1]/', /multicast/],
    ['http://[2001:db8::1]/', /documentation/],
    ['http://[::]/', /unspecified/],
  ])('refuses %s', async (url, detail) => {
    const verdict = await guard().check(url);
    expect(verdict).toMatchObject({ ok: false, reason: 'refused_address' });
    if (!verdict.ok) expect(verdict.detail).toMatch(detail);
  });

  it.each([
    ['http://internal.example/hook', /"internal\.example" resolves to 10\.0\.0\.5, which is private/],
    ['https://metadata.example/', /resolves to 169\.254\.169\.254, which is the cloud instance metadata address/],
    ['https://mixed.example/', /resolves to 192\.168\.1\.1/],
    ['https://v6-private.example/', /resolves to fd12:3456::1, which is unique local/],
  ])('refuses %s: a name that resolves to a private address', async (url, detail) => {
    const verdict = await guard().check(url);
    expect(verdict).toMatchObject({ ok: false, reason: 'refused_address' });
    if (!verdict.ok) expect(verdict.detail).toMatch(detail);
  });

  it('refuses localhost, resolved by the system resolver', async () => {
    const verdict = await new NotifyUrlGuard({ enabled: true, allowHttp: true }).check('http://localhost:9/hook');
    expect(verdict).toMatchObject({ ok: false, reason: 'refused_address' });
    if (!verdict.ok) expect(verdict.detail).toMatch(/"localhost" resolves to (127\.0\.0\.1|::1), which is loopback/);
  });

  it.each([
    ['ftp://example.com/', 'scheme', /must use https or http, got "ftp"/],
    ['javascript:alert(1)', 'scheme', /got "javascript"/],
    ['file:///etc/passwd', 'scheme', /got "file"/],
    ['https://user:pw@public.example/', 'credentials', /must not carry a user name or password/],
    ['https://token@public.example/', 'credentials', /user name/],
    ['not a url', 'malformed', /must be an absolute URL/],
    ['/relative/path', 'malformed', /absolute URL/],
    ['https://nowhere.example/', 'unresolvable', /host "nowhere\.example" does not resolve \(ENOTFOUND\)/],
  ])('refuses %s (%s)', async (url, reason, detail) => {
    const verdict = await guard().check(url);
    expect(verdict).toMatchObject({ ok: false, reason });
    if (!verdict.ok) expect(verdict.detail).toMatch(detail);
  });

  it('tells a resolver that failed from a name that does not exist: dns_unavailable, for a 503 rather than a 400', async () => {
    const failing = (code: string) => () => Promise.reject(Object.assign(new Error(code), { code }));
    for (const code of ['EAI_AGAIN', 'ESERVFAIL', 'ETIMEOUT']) {
      const verdict = await guard({ resolve: failing(code) as unknown as Resolve }).check('https://public.example/');
      expect(verdict, code).toMatchObject({ ok: false, reason: 'dns_unavailable' });
      if (!verdict.ok) expect(verdict.detail).toContain(`could not be looked up just now (${code})`);
    }
    const missing = await guard({ resolve: failing('ENOTFOUND') as unknown as Resolve }).check('https://public.example/');
    expect(missing).toMatchObject({ ok: false, reason: 'unresolvable' });
  });

  it('refuses a URL over 2048 characters', async () => {
    const verdict = await guard().check(`https://public.example/${'a'.repeat(2100)}`);
    expect(verdict).toMatchObject({ ok: false, reason: 'too_long', detail: 'notify_url must be at most 2048 characters, got 2123' });
  });

  it('refuses http unless WEBHOOK_ALLOW_HTTP, saying so', async () => {
    const verdict = await guard({ allowHttp: false }).check('http://public.example/');
    expect(verdict).toMatchObject({ ok: false, reason: 'scheme' });
    if (!verdict.ok) expect(verdict.detail).toMatch(/must use https \(http is refused unless WEBHOOK_ALLOW_HTTP=true\), got "http"/);
    expect(await guard({ allowHttp: false }).check('https://public.example/')).toEqual({ ok: true, url: 'https://public.example/' });
  });

  it('refuses every URL when no WEBHOOK_SECRETS are configured', async () => {
    const verdict = await new NotifyUrlGuard({ enabled: false, allowHttp: true, resolve: fakeResolve }).check('https://public.example/');
    expect(verdict).toMatchObject({ ok: false, reason: 'webhooks_not_configured' });
    if (!verdict.ok) expect(verdict.detail).toMatch(/no WEBHOOK_SECRETS/);
  });

  it('becomes a 400 invalid_notify_url problem naming the field and the reason', async () => {
    const verdict = await guard().check('http://0x7f.1/');
    if (verdict.ok) throw new Error('accepted');
    const body = problemBody(notifyUrlProblem(verdict), 'req-1');
    expect(body).toMatchObject({
      status: 400,
      code: 'invalid_notify_url',
      type: '/problems/invalid_notify_url',
      reason: 'refused_address',
      errors: [{ path: 'notify_url' }],
    });
    expect(body.detail).toMatch(/127\.0\.0\.1 is loopback.*WEBHOOK_ALLOWED_HOSTS/);
  });
});

describe('notify_url acceptance', () => {
  it('accepts public hosts and normalises the URL (no fragment)', async () => {
    expect(await guard().check('https://PUBLIC.example/hooks?x=1#frag')).toEqual({ ok: true, url: 'https://public.example/hooks?x=1' });
    expect(await guard().check('https://93.184.215.14/')).toEqual({ ok: true, url: 'https://93.184.215.14/' });
    expect(await guard().check('https://[2606:4700::1111]/')).toEqual({ ok: true, url: 'https://[2606:4700::1111]/' });
    // NAT64 of a public address is how an IPv6-only network reaches it.
    expect((await guard().check('https://[64:ff9b::808:808]/')).ok).toBe(true);
  });

  it('allows what WEBHOOK_ALLOWED_HOSTS names: an address, a CIDR, a host name', async () => {
    expect((await guard({ allowed: '127.0.0.1' }).check('http://127.0.0.1:8080/')).ok).toBe(true);
    expect((await guard({ allowed: '127.0.0.1' }).check('http://127.0.0.2/')).ok).toBe(false);
    expect((await guard({ allowed: '10.0.0.0/8' }).check('https://internal.example/')).ok).toBe(true);
    expect((await guard({ allowed: 'hooks.internal' }).check('https://hooks.internal/')).ok).toBe(true);
    expect((await guard({ allowed: 'hooks.internal' }).check('https://internal.example/')).ok).toBe(false);
    expect((await guard({ allowed: '::1' }).check('http://[::1]:9/')).ok).toBe(true);
  });

  it('vets once and pins the address the connection goes to', async () => {
    let lookups = 0;
    const rebinding: Resolve = async () =>
      lookups++ === 0 ? [{ address: '93.184.215.14', family: 4 }] : [{ address: '127.0.0.1', family: 4 }];
    const target = await guard({ resolve: rebinding }).vet('https://rebind.example/');
    expect(target).toMatchObject({ ok: true, host: 'rebind.example', address: '93.184.215.14', family: 4 });
    expect(lookups).toBe(1);
  });
});

describe('address ranges', () => {
  it('parses and prints IPv6 canonically', () => {
    expect(formatIp(parseIp('2001:0db8:0000:0000:0000:ff00:0042:8329')!)).toBe('2001:db8::ff00:42:8329');
    expect(formatIp(parseIp('::ffff:127.0.0.1')!)).toBe('::ffff:7f00:1');
    expect(parseIp('1.2.3')).toBeUndefined();
    expect(parseIp('1:2:3:4:5:6:7:8:9')).toBeUndefined();
    expect(parseIp('01.2.3.4')).toBeUndefined();
  });

  it('leaves ordinary public addresses alone', () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '2a00:1450:4001::200e']) {
      expect(refusedRange(parseIp(address)!), address).toBeUndefined();
    }
  });
});
