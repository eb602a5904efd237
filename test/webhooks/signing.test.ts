/**
 * Our signatures verify with the Standard Webhooks reference library (not with our own code), each of
 * several secrets signs, and a bad `WEBHOOK_SECRETS` stops start-up naming the variable.
 */
import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { ConfigError, loadConfig } from '../../src/config.js';
import { generateSecret, parseWebhookSecrets, signingSecrets, signWebhook, webhookId } from '../../src/webhooks/signing.js';

describe('Standard Webhooks signing', () => {
  it('signs so that the reference library verifies it, and every configured secret does', async () => {
    const [first, second] = [generateSecret(), generateSecret(24)];
    const parsed = parseWebhookSecrets(`${first}, ${second}`);
    if (!parsed.ok) throw new Error(parsed.message);
    const body = JSON.stringify({ type: 'job.completed', data: { processing_id: 'p', emoji: 'ünïcødé ✓' } });
    const headers = await signWebhook({
      id: 'msg_p_completed',
      timestamp: new Date(),
      body,
      secrets: await signingSecrets(parsed.secrets),
    });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=* v1,[A-Za-z0-9+/]+=*$/);
    // Each receiver knows one secret (rotation: the old and the new one are both accepted while both sign).
    for (const secret of [first, second]) expect(new Webhook(secret).verify(body, { ...headers })).toMatchObject({ type: 'job.completed' });
    expect(() => new Webhook(generateSecret()).verify(body, { ...headers })).toThrow(/No matching signature/);
    expect(() => new Webhook(first).verify(`${body} `, { ...headers })).toThrow(/No matching signature/);
  });

  it('puts the attempt time in webhook-timestamp (unix seconds): a stale one is refused by receivers', async () => {
    const secret = generateSecret();
    const parsed = parseWebhookSecrets(secret);
    if (!parsed.ok) throw new Error(parsed.message);
    const old = new Date(Date.now() - 10 * 60_000);
    const headers = await signWebhook({ id: 'msg_x', timestamp: old, body: '{}', secrets: await signingSecrets(parsed.secrets) });
    expect(headers['webhook-timestamp']).toBe(String(Math.floor(old.getTime() / 1000)));
    expect(() => new Webhook(secret).verify('{}', { ...headers })).toThrow(/too old/);
  });

  it('derives the message id from the job and the event, so a re-enqueue names the same message', () => {
    expect(webhookId('0b0e7c1e-1111-4222-8333-944445555666', 'job.completed')).toBe('msg_0b0e7c1e-1111-4222-8333-944445555666_completed');
    expect(webhookId('a', 'job.failed')).not.toBe(webhookId('a', 'job.completed'));
  });

  it.each([
    ['secret1234567890abcdefghijklmnop', /WEBHOOK_SECRETS secret 1 of 1 must start with whsec_/],
    ['whsec_not*base64', /WEBHOOK_SECRETS secret 1 of 1 is not valid base64/],
    [`whsec_${btoa('short')}`, /must decode to 24 to 64 bytes, got 5/],
    [`${generateSecret()},whsec_${btoa('x'.repeat(65))}`, /secret 2 of 2 must decode to 24 to 64 bytes, got 65/],
    [Array.from({ length: 11 }, () => generateSecret()).join(','), /holds 11 secrets; at most 10/],
  ])('refuses WEBHOOK_SECRETS=%s at start-up, naming the variable', (value, message) => {
    expect(() => loadConfig({ WEBHOOK_SECRETS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ WEBHOOK_SECRETS: value })).toThrow(message);
  });

  it('never echoes a secret in a configuration error', () => {
    const leaked = `whsec_${btoa('y'.repeat(70))}`;
    try {
      loadConfig({ WEBHOOK_SECRETS: leaked });
      throw new Error('accepted');
    } catch (error) {
      expect(String(error)).not.toContain(leaked.slice(6, 30));
    }
  });
});

describe('webhook configuration', () => {
  it('has the specification schedule and bounded defaults', () => {
    const config = loadConfig({});
    expect(config.WEBHOOK_SECRETS).toEqual([]);
    expect(config.WEBHOOK_RETRY_SCHEDULE).toEqual([5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(config).toMatchObject({
      WEBHOOK_TIMEOUT_SECONDS: 15,
      WEBHOOK_MAX_ATTEMPTS: 8,
      WEBHOOK_MAX_AGE_SECONDS: 108_000,
      WEBHOOK_ALLOW_HTTP: false,
      WEBHOOK_CONCURRENCY: 16,
    });
    // The whole schedule fits in the default age.
    expect(config.WEBHOOK_RETRY_SCHEDULE.reduce((a, b) => a + b, 0)).toBeLessThan(config.WEBHOOK_MAX_AGE_SECONDS * 1000);
  });

  it('takes a schedule in (fractional) seconds, and refuses bad values naming the variable', () => {
    expect(loadConfig({ WEBHOOK_RETRY_SCHEDULE: '0.1, 0.25,2' }).WEBHOOK_RETRY_SCHEDULE).toEqual([100, 250, 2000]);
    expect(() => loadConfig({ WEBHOOK_RETRY_SCHEDULE: '5,-1' })).toThrow(
      /WEBHOOK_RETRY_SCHEDULE must be 1 to 50 comma-separated numbers of seconds from 0 to 86400/,
    );
    expect(() => loadConfig({ WEBHOOK_TIMEOUT_SECONDS: '0' })).toThrow(/WEBHOOK_TIMEOUT_SECONDS must be an integer from 1 to 60/);
    expect(() => loadConfig({ WEBHOOK_MAX_ATTEMPTS: '51' })).toThrow(/WEBHOOK_MAX_ATTEMPTS must be an integer from 1 to 50/);
    expect(() => loadConfig({ WEBHOOK_ALLOW_HTTP: 'yes' })).toThrow(/WEBHOOK_ALLOW_HTTP must be true or false/);
    expect(() => loadConfig({ WEBHOOK_ALLOWED_HOSTS: '10.0.0.0/33' })).toThrow(
      /WEBHOOK_ALLOWED_HOSTS must be a comma-separated list of host names, IP addresses and CIDRs/,
    );
    expect(() => loadConfig({ WEBHOOK_ALLOWED_HOSTS: 'http://x' })).toThrow(/WEBHOOK_ALLOWED_HOSTS/);
    const allowed = loadConfig({ WEBHOOK_ALLOWED_HOSTS: '127.0.0.1, Hooks.Internal., fd00::/8' }).WEBHOOK_ALLOWED_HOSTS;
    expect([...allowed.hosts]).toEqual(['hooks.internal']);
    expect(allowed.cidrs.map((c) => c.bits)).toEqual([32, 8]);
  });
});
