/**
 * @module
 * The configuration, parsed once from the environment with zod. Nothing else reads `process.env`.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { apiKeyId } from './domain/digest.js';
import { EXTENSION_FORMATS } from './domain/formats.js';
import { LOG_LEVELS } from './log.js';
import { parseAllowList } from './webhooks/addresses.js';
import { SPEC_RETRY_DELAYS_SECONDS } from './webhooks/delivery.js';
import { parseNotifyUrl } from './webhooks/notify-url.js';
import { parseWebhookSecrets } from './webhooks/signing.js';

const integer = (name: string, min: number, fallback: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text.trim() === '') return fallback;
      const value = Number(text);
      if (!/^\s*\d+\s*$/.test(text) || value < min || value > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}` });
        return z.NEVER;
      }
      return value;
    });

/** The fallback of a variable whose default is derived from others (below, once all are read). */
const UNSET = -1;

const boolean = (name: string, fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((value) => value?.trim().toLowerCase() || String(fallback))
    .refine((value) => value === 'true' || value === 'false', { message: `${name} must be true or false` })
    .transform((value) => value === 'true');

/** Seconds, fractions allowed (tests shrink the webhook schedule to tenths), as milliseconds. */
const secondsList = (name: string, fallback: readonly number[], max: number) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (!value?.trim()) return fallback.map((seconds) => seconds * 1000);
      const items = value.split(',').map((item) => item.trim());
      if (items.length > 50 || !items.every((item) => /^\d{1,6}(\.\d{1,3})?$/.test(item) && Number(item) <= max)) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be 1 to 50 comma-separated numbers of seconds from 0 to ${max}, got ${JSON.stringify(value.slice(0, 100))}`,
        });
        return z.NEVER;
      }
      return items.map((item) => Math.round(Number(item) * 1000));
    });

const text = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((value) => (value?.trim() ? value.trim() : fallback));

const schema = z
  .object({
    PORT: integer('PORT', 1, 8000, 65535),
    HOST: text('0.0.0.0'),
    REDIS_URL: z
      .string()
      .optional()
      .transform((value) => value?.trim() || undefined)
      .refine((value) => value === undefined || /^rediss?:\/\/.+/.test(value), {
        message: 'REDIS_URL must be a redis:// or rediss:// URL',
      }),
    STORAGE_URL: z
      .string()
      .optional()
      .transform((value, ctx) => {
        const url = value?.trim();
        if (!url) return undefined;
        const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
        const prefix = (match?.[2] ?? '').replace(/^\/+|\/+$/g, '');
        if (!match || !/^[A-Za-z0-9!_.*'()/-]{0,512}$/.test(prefix) || prefix.split('/').some((part) => part === '.' || part === '..')) {
          ctx.addIssue({
            code: 'custom',
            message: `STORAGE_URL must be s3://bucket or s3://bucket/prefix (a bucket name of 3 to 63 lowercase letters, digits, dots and dashes), got ${JSON.stringify(url.slice(0, 100))}`,
          });
          return z.NEVER;
        }
        return { kind: 's3' as const, bucket: match[1]!, prefix: prefix ? `${prefix}/` : '' };
      }),
    S3_ENDPOINT: z
      .string()
      .optional()
      .transform((value) => value?.trim() || undefined)
      .refine((value) => value === undefined || /^https?:\/\/[^\s/]+(\/\S*)?$/.test(value), {
        message: 'S3_ENDPOINT must be an http:// or https:// URL',
      }),
    S3_FORCE_PATH_STYLE: z
      .string()
      .optional()
      .transform((value) => value?.trim().toLowerCase() || 'false')
      .refine((value) => value === 'true' || value === 'false', { message: 'S3_FORCE_PATH_STYLE must be true or false' })
      .transform((value) => value === 'true'),
    AWS_REGION: z
      .string()
      .optional()
      .transform((value) => value?.trim() || undefined),
    AWS_DEFAULT_REGION: z
      .string()
      .optional()
      .transform((value) => value?.trim() || undefined),
    INSTANCE_ID: z
      .string()
      .optional()
      .transform((value) => value?.trim() || undefined)
      .refine((value) => value === undefined || /^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/.test(value), {
        message: 'INSTANCE_ID must be 1 to 101 letters, digits, dots, dashes or underscores, starting with a letter or digit',
      }),
    UPLOAD_DIR: text('uploads'),
    PROCESSED_DIR: text('processed'),
    STATE_DIR: text('state'),
    MAX_FILE_SIZE: integer('MAX_FILE_SIZE', 1, 10_485_760),
    ALLOWED_EXTENSIONS: z
      .string()
      .optional()
      .transform((value, ctx) => {
        const list = (value?.trim() ? value : 'jpg,jpeg,png,gif,bmp,tiff,tif,webp')
          .split(',')
          .map((ext) => ext.trim().toLowerCase().replace(/^\./, ''))
          .filter(Boolean);
        const unknown = list.filter((ext) => !(ext in EXTENSION_FORMATS));
        if (unknown.length || list.length === 0) {
          ctx.addIssue({
            code: 'custom',
            message: `ALLOWED_EXTENSIONS must be a comma-separated list of ${Object.keys(EXTENSION_FORMATS).join(', ')}; got ${JSON.stringify(value)}`,
          });
          return z.NEVER;
        }
        return [...new Set(list)];
      }),
    MAX_INPUT_PIXELS: integer('MAX_INPUT_PIXELS', 1, 50_000_000),
    WORKER_CONCURRENCY: integer('WORKER_CONCURRENCY', 0, availableParallelism(), 64),
    MEMORY_BUDGET_MB: integer('MEMORY_BUDGET_MB', 128, 1024, 1_048_576),
    JOB_TIMEOUT_SECONDS: integer('JOB_TIMEOUT_SECONDS', 1, 60, 3600),
    RETENTION_SECONDS: integer('RETENTION_SECONDS', 1, 7 * 24 * 3600),
    REDIS_KEY_PREFIX: z
      .string()
      .optional()
      .transform((value) => value?.trim() || 'imgsvc')
      .refine((value) => /^[A-Za-z0-9_.-]{1,64}$/.test(value), {
        message: 'REDIS_KEY_PREFIX must be 1 to 64 letters, digits, dots, dashes or underscores',
      }),
    WORKER_LOCK_SECONDS: integer('WORKER_LOCK_SECONDS', 1, 30, 600),
    SHUTDOWN_TIMEOUT_SECONDS: integer('SHUTDOWN_TIMEOUT_SECONDS', 0, 25, 600),
    MAX_QUEUE_DEPTH: integer('MAX_QUEUE_DEPTH', 1, 1000),
    HEADERS_TIMEOUT_SECONDS: integer('HEADERS_TIMEOUT_SECONDS', 1, 15, 300),
    UPLOAD_IDLE_TIMEOUT_SECONDS: integer('UPLOAD_IDLE_TIMEOUT_SECONDS', 1, 30, 600),
    UPLOAD_TIMEOUT_SECONDS: integer('UPLOAD_TIMEOUT_SECONDS', 1, 120, 3600),
    KEEP_ALIVE_TIMEOUT_SECONDS: integer('KEEP_ALIVE_TIMEOUT_SECONDS', 1, 65, 3600),
    MAX_CONCURRENT_UPLOADS: integer('MAX_CONCURRENT_UPLOADS', 1, 32, 10_000),
    MAX_CONNECTIONS: integer('MAX_CONNECTIONS', 1, 1024, 1_000_000),
    WORKER_ABSENT_SECONDS: integer('WORKER_ABSENT_SECONDS', 1, 30, 3600),
    API_KEYS: z
      .string()
      .optional()
      .transform((value) =>
        (value ?? '')
          .split(',')
          .map((key) => key.trim())
          .filter(Boolean),
      )
      .refine((keys) => keys.every((key) => /^[\x21-\x7e]{16,256}$/.test(key)), {
        message: 'API_KEYS must be a comma-separated list of keys of 16 to 256 visible ASCII characters',
      }),
    RATE_LIMIT_PER_MINUTE: integer('RATE_LIMIT_PER_MINUTE', 0, 0, 1_000_000),
    TRUST_PROXY: integer('TRUST_PROXY', 0, 0, 10),
    WEBHOOK_SECRETS: z
      .string()
      .optional()
      .transform((value, ctx) => {
        const parsed = parseWebhookSecrets(value);
        if (parsed.ok) return parsed.secrets;
        ctx.addIssue({ code: 'custom', message: parsed.message });
        return z.NEVER;
      }),
    WEBHOOK_ALLOW_HTTP: boolean('WEBHOOK_ALLOW_HTTP', false),
    WEBHOOK_ALLOWED_HOSTS: z
      .string()
      .optional()
      .transform((value, ctx) => {
        const parsed = parseAllowList(value);
        if (parsed.ok) return parsed.list;
        ctx.addIssue({ code: 'custom', message: parsed.message });
        return z.NEVER;
      }),
    WEBHOOK_TIMEOUT_SECONDS: integer('WEBHOOK_TIMEOUT_SECONDS', 1, 15, 60),
    WEBHOOK_MAX_ATTEMPTS: integer('WEBHOOK_MAX_ATTEMPTS', 1, 8, 50),
    // The specification's whole schedule (about 27.6 h) fits in the default.
    WEBHOOK_MAX_AGE_SECONDS: integer('WEBHOOK_MAX_AGE_SECONDS', 1, 30 * 3600, 7 * 24 * 3600),
    WEBHOOK_RETRY_SCHEDULE: secondsList('WEBHOOK_RETRY_SCHEDULE', SPEC_RETRY_DELAYS_SECONDS, 86_400),
    WEBHOOK_CONCURRENCY: integer('WEBHOOK_CONCURRENCY', 1, 16, 256),
    // The defaults' URLs are judged by the pure notify_url rules at the end (they need WEBHOOK_ALLOW_HTTP and
    // WEBHOOK_ALLOWED_HOSTS); their hosts are resolved per request, as a request's own URL is.
    WEBHOOK_DEFAULT_URL: z
      .string()
      .optional()
      .transform((value) => value?.trim() || undefined),
    WEBHOOK_KEY_URLS: z
      .string()
      .optional()
      .transform((value, ctx) => {
        const urls = new Map<string, string>();
        const items = (value ?? '')
          .split(',')
          .map((entry) => entry.trim())
          .filter(Boolean);
        for (const [index, item] of items.entries()) {
          const match = /^([0-9A-Fa-f]{32})\s*=\s*(\S+)$/.exec(item);
          const keyId = match?.[1]!.toLowerCase();
          if (!match || urls.has(keyId!)) {
            ctx.addIssue({
              code: 'custom',
              message: match
                ? `WEBHOOK_KEY_URLS names key-id ${keyId} twice`
                : // Not quoted: an API key pasted where its id belongs would be printed.
                  `WEBHOOK_KEY_URLS must be a comma-separated list of <key-id>=<url>, a key-id being 32 hex digits (printf %s "$KEY" | sha256sum | cut -c1-32); entry ${index + 1} of ${items.length} is not`,
            });
            return z.NEVER;
          }
          urls.set(keyId!, match[2]!);
        }
        return urls as ReadonlyMap<string, string>;
      }),
    // Status streams (Server-Sent Events on GET /status): each holds a connection, so their total stays under
    // MAX_CONNECTIONS (unset: three quarters of it), and one client cannot take them all.
    SSE_MAX_STREAMS: integer('SSE_MAX_STREAMS', 0, UNSET, 1_000_000),
    SSE_MAX_STREAMS_PER_CLIENT: integer('SSE_MAX_STREAMS_PER_CLIENT', 1, 256, 1_000_000),
    SSE_HEARTBEAT_SECONDS: integer('SSE_HEARTBEAT_SECONDS', 1, 15, 300),
    SSE_MAX_SECONDS: integer('SSE_MAX_SECONDS', 1, 3600, 86_400),
    LOG_LEVEL: z
      .string()
      .optional()
      .transform((value) => value?.trim().toLowerCase() || 'info')
      .refine((value) => (LOG_LEVELS as readonly string[]).includes(value), {
        message: `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`,
      }),
  })
  .refine((config) => config.WORKER_CONCURRENCY > 0 || config.REDIS_URL !== undefined, {
    message: 'WORKER_CONCURRENCY=0 needs REDIS_URL: without Redis there is no separate worker to do the work',
  })
  .refine((config) => config.SSE_MAX_STREAMS < config.MAX_CONNECTIONS, {
    message: 'SSE_MAX_STREAMS must be below MAX_CONNECTIONS: each stream holds a connection, and other requests need some too',
  })
  .refine((config) => !config.STORAGE_URL || config.S3_ENDPOINT || config.AWS_REGION || config.AWS_DEFAULT_REGION, {
    message: 'STORAGE_URL=s3://... needs AWS_REGION (or S3_ENDPOINT for an S3-compatible server)',
  })
  .superRefine((config, ctx) => {
    for (const message of defaultNotifyUrlProblems(config)) ctx.addIssue({ code: 'custom', message });
  })
  .transform((config) =>
    config.SSE_MAX_STREAMS === UNSET ? { ...config, SSE_MAX_STREAMS: Math.floor((config.MAX_CONNECTIONS * 3) / 4) } : config,
  );

/**
 * What is wrong with `WEBHOOK_DEFAULT_URL` and `WEBHOOK_KEY_URLS`: no secret to sign with, no API key for a
 * key-id, or a URL the pure `notify_url` rules refuse (a message never quotes a URL: its query may hold a token).
 */
function defaultNotifyUrlProblems(config: {
  WEBHOOK_DEFAULT_URL?: string;
  WEBHOOK_KEY_URLS: ReadonlyMap<string, string>;
  WEBHOOK_SECRETS: readonly unknown[];
  WEBHOOK_ALLOW_HTTP: boolean;
  WEBHOOK_ALLOWED_HOSTS: Parameters<typeof parseNotifyUrl>[1]['allowList'];
  API_KEYS: readonly string[];
}): string[] {
  const problems: string[] = [];
  const rules = { allowHttp: config.WEBHOOK_ALLOW_HTTP, allowList: config.WEBHOOK_ALLOWED_HOSTS };
  const judge = (name: string, url: string) => {
    const parsed = parseNotifyUrl(url, rules);
    if (!parsed.ok) problems.push(parsed.detail.replace(/^notify_url('s)?\b/, name));
  };
  for (const name of ['WEBHOOK_DEFAULT_URL', 'WEBHOOK_KEY_URLS'] as const) {
    const set = name === 'WEBHOOK_DEFAULT_URL' ? config.WEBHOOK_DEFAULT_URL !== undefined : config.WEBHOOK_KEY_URLS.size > 0;
    if (set && config.WEBHOOK_SECRETS.length === 0)
      problems.push(`${name} needs WEBHOOK_SECRETS: without a secret no webhook can be signed`);
  }
  if (config.WEBHOOK_DEFAULT_URL !== undefined) judge('WEBHOOK_DEFAULT_URL', config.WEBHOOK_DEFAULT_URL);
  if (config.WEBHOOK_KEY_URLS.size > 0 && config.API_KEYS.length === 0) {
    problems.push('WEBHOOK_KEY_URLS needs API_KEYS: its key-ids name API keys');
    return problems;
  }
  const keyIds = new Set(config.API_KEYS.map((key) => apiKeyId(createHash('sha256').update(key).digest('hex'))));
  for (const [keyId, url] of config.WEBHOOK_KEY_URLS) {
    if (!keyIds.has(keyId)) {
      problems.push(
        `WEBHOOK_KEY_URLS names key-id ${keyId}, which is no key of API_KEYS (a key's id is printf %s "$KEY" | sha256sum | cut -c1-32)`,
      );
    }
    judge(`WEBHOOK_KEY_URLS's URL for ${keyId}`, url);
  }
  return problems;
}

export type Config = z.output<typeof schema>;

/** A configuration that cannot start the service; `message` is the one line to print. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the environment into a `Config`, or throws a `ConfigError` naming the variable.
 * @example loadConfig({ PORT: '8080' }).PORT // 8080
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(`invalid configuration: ${parsed.error.issues.map((issue) => issue.message).join('; ')}`);
  }
  return parsed.data;
}
