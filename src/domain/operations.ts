/**
 * @module
 * The processing request: the seven operations, their bounds and defaults, the output options, and the
 * two request forms (the seed's query form and the JSON pipeline) parsed into one normalised `Pipeline`.
 * The zod schemas here are also what `/openapi.json` documents.
 */
import { z } from '@hono/zod-openapi';
import { cut, ECHO_CHARS, invalidRequest, type FieldError } from './errors.js';
import { MAX_NOTIFY_URL_LENGTH } from '../webhooks/notify-url.js';
import { OUTPUT_FORMATS } from './formats.js';

export const MAX_OUTPUT_DIMENSION = 8192;
export const MAX_OPERATIONS = 10;
export const DEFAULT_QUALITY = 80;
export const FIT_MODES = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
export const OPERATION_NAMES = ['resize', 'blur', 'sharpen', 'grayscale', 'sepia', 'brightness', 'contrast'] as const;

/**
 * How a rejected value is quoted back to the client: short, printable ASCII, never a whole hostile payload.
 * It never throws and costs little whatever the value (a 60 KB string, a list nested 10 000 deep): it
 * looks at most 2 levels and 3 members deep.
 * @example quote({ a: [1, 2, 3, 4] }) // '{"a":[1,2,3,...]}'
 */
export function quote(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = preview(value, 2);
  } catch {
    // Nothing parsed from a request throws here; a value with a throwing getter would.
    text = typeof value;
  }
  return cut(text.replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

const PREVIEW_MEMBERS = 3;

function preview(value: unknown, depth: number): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, ECHO_CHARS));
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (typeof value !== 'object') return typeof value;
  const list = Array.isArray(value);
  const members: string[] = [];
  let more = false;
  if (depth > 0) {
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      if (members.length === PREVIEW_MEMBERS) {
        more = true;
        break;
      }
      const member = preview((value as Record<string, unknown>)[key], depth - 1);
      members.push(list ? member : `${JSON.stringify(key.slice(0, ECHO_CHARS))}:${member}`);
    }
  } else {
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      more = true;
      break;
    }
  }
  const inner = [...members, ...(more ? ['...'] : [])].join(',');
  return list ? `[${inner}]` : `{${inner}}`;
}

/** A client's key as an error names it: plain names as they are, anything else quoted (and cut). */
export function keyName(key: string): string {
  return /^[\w-]{1,40}$/.test(key) ? key : quote(key);
}

/** `width, height and 3 more`: a few names, counted past that. */
function someKeys(keys: readonly string[]): string {
  const named = keys.slice(0, PREVIEW_MEMBERS).map(keyName).join(', ');
  return keys.length > PREVIEW_MEMBERS ? `${named} and ${keys.length - PREVIEW_MEMBERS} more` : named;
}

type Issue = { input?: unknown };
const messageFor = (field: string, allowed: string) => (iss: Issue) => `${field} must be ${allowed}, got ${quote(iss.input)}`;

function integerIn(field: string, min: number, max: number) {
  const error = messageFor(field, `an integer from ${min} to ${max}`);
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

function numberIn(field: string, min: number, max: number) {
  const error = messageFor(field, `a number from ${min} to ${max}`);
  return z.number({ error }).min(min, { error }).max(max, { error });
}

const flag = (field: string) => z.boolean({ error: messageFor(field, 'true or false') });

function oneOf<const T extends readonly [string, ...string[]]>(field: string, values: T) {
  return z.enum(values, { error: messageFor(field, `one of ${values.join(', ')}`) });
}

function operation<const N extends string, S extends z.ZodRawShape>(name: N, shape: S, description: string) {
  const allowed = Object.keys(shape);
  return z
    .strictObject(
      { operation: z.literal(name), ...shape },
      {
        error: (iss) =>
          iss.code === 'unrecognized_keys'
            ? `${someKeys(iss.keys)} ${iss.keys.length > 1 ? 'are not parameters' : 'is not a parameter'} of ${name}` +
              ` (${allowed.length ? `it takes ${allowed.join(', ')}` : 'it takes none'})`
            : undefined,
      },
    )
    .openapi(`${name[0]!.toUpperCase()}${name.slice(1)}Operation`, { description });
}

const intensity = (name: string, min: number, max: number, fallback: number, meaning: string) =>
  numberIn('intensity', min, max)
    .default(fallback)
    .openapi({ description: `${meaning}, ${min}–${max} (default ${fallback}) for ${name}` });

export const ResizeOperation = operation(
  'resize',
  {
    width: integerIn('width', 1, MAX_OUTPUT_DIMENSION)
      .optional()
      .openapi({ description: `1–${MAX_OUTPUT_DIMENSION}` }),
    height: integerIn('height', 1, MAX_OUTPUT_DIMENSION)
      .optional()
      .openapi({ description: `1–${MAX_OUTPUT_DIMENSION}` }),
    fit: oneOf('fit', FIT_MODES).optional().openapi({ description: 'how both sides are honoured (default cover); ignored with one side' }),
    without_enlargement: flag('without_enlargement').default(false),
  },
  'Lanczos resize; one side alone keeps the aspect ratio',
).refine((op) => op.width !== undefined || op.height !== undefined, {
  path: ['width'],
  error: 'resize needs width or height (or both), integers from 1 to 8192',
});
export const BlurOperation = operation('blur', { intensity: intensity('blur', 0.3, 100, 2, 'Gaussian sigma') }, 'Gaussian blur');
export const SharpenOperation = operation('sharpen', { intensity: intensity('sharpen', 0.3, 10, 1, 'sigma') }, 'Unsharp mask');
export const GrayscaleOperation = operation('grayscale', {}, 'Luminance only');
export const SepiaOperation = operation(
  'sepia',
  { intensity: intensity('sepia', 0, 1, 1, 'blend') },
  'Sepia tone blended with the original',
);
export const BrightnessOperation = operation(
  'brightness',
  { intensity: intensity('brightness', 0, 10, 1.2, 'factor') },
  'Multiplies lightness; 1 is unchanged',
);
export const ContrastOperation = operation(
  'contrast',
  { intensity: intensity('contrast', 0, 10, 1.2, 'factor') },
  'Scales around mid-grey; 1 is unchanged',
);

export const Operation = z.discriminatedUnion(
  'operation',
  [ResizeOperation, BlurOperation, SharpenOperation, GrayscaleOperation, SepiaOperation, BrightnessOperation, ContrastOperation],
  {
    error: (iss) => {
      const input = iss.input as { operation?: unknown } | undefined;
      if (typeof input !== 'object' || input === null || Array.isArray(input))
        return `each operation must be an object like {"operation": "blur"}, got ${quote(input)}`;
      return `operation must be one of ${OPERATION_NAMES.join(', ')}, got ${quote(input.operation)}`;
    },
  },
);
export type Operation = z.output<typeof Operation>;

export const OutputFormatField = oneOf('format', OUTPUT_FORMATS);
export const QualityField = integerIn('quality', 1, 100);

export const NotifyUrlField = z
  .string({ error: (iss) => `notify_url must be an https URL of at most ${MAX_NOTIFY_URL_LENGTH} characters, got ${quote(iss.input)}` })
  .max(MAX_NOTIFY_URL_LENGTH, {
    error: (iss) => `notify_url must be at most ${MAX_NOTIFY_URL_LENGTH} characters, got ${(iss.input as string).length}`,
  })
  .nullable()
  .optional()
  .openapi({
    description:
      'Where the job\'s end is announced: a signed POST (Standard Webhooks) of `{ type: "job.completed" | "job.failed", timestamp, data: <this job\'s status> }`. ' +
      '`https` only (and `http` where WEBHOOK_ALLOW_HTTP=true); private, loopback and link-local addresses are refused unless WEBHOOK_ALLOWED_HOSTS allows them; ' +
      'refused with 400 `invalid_notify_url` (or when the deployment has no WEBHOOK_SECRETS). ' +
      "Absent: the deployment's default, if it has one (the API key's, WEBHOOK_KEY_URLS, else WEBHOOK_DEFAULT_URL; a default that fails the guard is a 503 `default_notify_url_refused`). " +
      '`null` or `""`: no webhook for this job, whatever the default.',
    example: 'https://example.com/hooks/images',
  });

export const PipelineRequest = z
  .strictObject(
    {
      operations: z
        .array(Operation, { error: (iss) => `operations must be a list of 1 to ${MAX_OPERATIONS} operations, got ${quote(iss.input)}` })
        .min(1, { error: `operations must hold 1 to ${MAX_OPERATIONS} operations, got none` })
        .max(MAX_OPERATIONS, {
          error: (iss) => `operations must hold 1 to ${MAX_OPERATIONS} operations, got ${(iss.input as unknown[]).length}`,
        }),
      format: OutputFormatField.optional().openapi({ description: "default: the input's format where it can be written (BMP gives PNG)" }),
      quality: QualityField.default(DEFAULT_QUALITY).openapi({ description: 'lossy formats only, 1–100' }),
      keep_metadata: flag('keep_metadata').default(false),
      notify_url: NotifyUrlField,
    },
    {
      error: (iss) => {
        if (iss.code === 'unrecognized_keys')
          return `${someKeys(iss.keys)}: not ${iss.keys.length > 1 ? 'fields' : 'a field'} of the request (it takes operations, format, quality, keep_metadata, notify_url)`;
        return `the body must be a JSON object like {"operations": [{"operation": "blur"}]}, got ${quote(iss.input)}`;
      },
    },
  )
  .openapi('PipelineRequest');
export type PipelineRequest = z.output<typeof PipelineRequest>;

/** A request reduced to its meaning: defaults filled in, nothing that cannot change the result. */
export interface Pipeline {
  operations: Operation[];
  format?: (typeof OUTPUT_FORMATS)[number];
  quality: number;
  keep_metadata: boolean;
  /**
   * Where the job's end is to be announced (vetted by the handler; it does not change the result): absent, the
   * deployment's default; `null` (sent as `null` or `""`), no webhook at all.
   */
  notify_url?: string | null;
}

/** Reduces a parsed request to its meaning (the cache key is taken from this). */
export function normalisePipeline(request: PipelineRequest): Pipeline {
  const operations = request.operations.map((op): Operation => {
    if (op.operation !== 'resize') return op;
    const both = op.width !== undefined && op.height !== undefined;
    const { fit, ...rest } = op;
    return both ? { ...rest, fit: fit ?? 'cover' } : rest;
  });
  return {
    operations,
    format: request.format,
    quality: request.quality,
    keep_metadata: request.keep_metadata,
    // `""` and `null` are one request (no webhook), so they share an Idempotency-Key's fingerprint.
    ...(request.notify_url === undefined ? {} : { notify_url: request.notify_url || null }),
  };
}

/** One `FieldError` per zod issue, paths joined with dots (`operations.1.intensity`), each key named as `keyName` does. */
export function fieldErrorsOf(error: z.ZodError, stripPrefix?: string): FieldError[] {
  return error.issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    let path = [...issue.path, ...keys.slice(0, 1)].map((part) => (typeof part === 'string' ? keyName(part) : String(part))).join('.');
    if (stripPrefix && path.startsWith(stripPrefix)) path = path.slice(stripPrefix.length);
    return { path: path || 'body', message: issue.message };
  });
}

/**
 * The field errors of a rejected query string. A parameter given more than once reaches the schema as a
 * list (which zod would call "expected string, received array"); it is named as given more than once.
 */
export function queryFieldErrors(error: z.ZodError, queries: Readonly<Record<string, readonly string[]>>): FieldError[] {
  return fieldErrorsOf(error).map((fieldError, index) => {
    const key = error.issues[index]!.path[0];
    const times = typeof key === 'string' && Object.hasOwn(queries, key) ? queries[key]!.length : 1;
    if (times < 2) return fieldError;
    return { path: keyName(key as string), message: `${keyName(key as string)} was given ${times} times; it must be given once` };
  });
}

const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** Text that reads as a finite number becomes that number; anything else (`1e400`, 400 digits) stays text. */
function numeric(text: string | undefined): number | string | undefined {
  const value = text !== undefined && NUMBER_TEXT.test(text.trim()) ? Number(text) : NaN;
  return Number.isFinite(value) ? value : text;
}
const BOOLEAN_TEXT: Record<string, boolean> = { true: true, false: false, '1': true, '0': false };
const boolean = (text: string | undefined) =>
  text !== undefined && text.toLowerCase() in BOOLEAN_TEXT ? BOOLEAN_TEXT[text.toLowerCase()] : text;

/**
 * Parses the seed's query form: one `operation` plus its parameters and the output options.
 * Text that is not a number stays text, so the error quotes what the client sent.
 * @example parsePipelineQuery({ operation: 'resize', width: '200', height: '150' })
 */
export function parsePipelineQuery(query: Record<string, string | undefined>): Pipeline {
  const { format, quality, keep_metadata, notify_url, operation: name, ...params } = query;
  if (name === undefined || name === '') {
    throw invalidRequest([
      { path: 'operation', message: `operation is required: one of ${OPERATION_NAMES.join(', ')} (or send a JSON body with "operations")` },
    ]);
  }
  // Own properties even for a key like `__proto__`, so the schema refuses it instead of never seeing it.
  const op: Record<string, unknown> = Object.fromEntries([
    ['operation', name],
    ...Object.entries(params).map(([key, value]) => [key, key === 'without_enlargement' ? boolean(value) : numeric(value)]),
  ]);
  const body: Record<string, unknown> = { operations: [op] };
  if (format !== undefined) body.format = format;
  if (quality !== undefined) body.quality = numeric(quality);
  if (keep_metadata !== undefined) body.keep_metadata = boolean(keep_metadata);
  if (notify_url !== undefined) body.notify_url = notify_url;
  const parsed = PipelineRequest.safeParse(body);
  if (!parsed.success) throw invalidRequest(fieldErrorsOf(parsed.error, 'operations.0.'));
  return normalisePipeline(parsed.data);
}

/**
 * Checks a parsed JSON body against `PipelineRequest` (anything JSON can hold: `null`, a number, a list).
 * @example parsePipelineJson({ operations: [{ operation: 'blur', intensity: 3 }], format: 'png' })
 */
export function parsePipelineJson(body: unknown): Pipeline {
  const parsed = PipelineRequest.safeParse(body);
  if (!parsed.success) throw invalidRequest(fieldErrorsOf(parsed.error));
  return normalisePipeline(parsed.data);
}

export interface Size {
  width: number;
  height: number;
}

type Resize = Extract<Operation, { operation: 'resize' }>;

/** The size a resize gives (as sharp computes it, to the pixel or a little above: it is used as a bound). */
function resized(from: Size, op: Resize): Size {
  const { width: W, height: H } = from;
  let width = op.width ?? Math.max(1, Math.round((W * op.height!) / H));
  let height = op.height ?? Math.max(1, Math.round((H * op.width!) / W));
  if (op.width !== undefined && op.height !== undefined && (op.fit === 'inside' || op.fit === 'outside')) {
    const scale = (op.fit === 'inside' ? Math.min : Math.max)(op.width / W, op.height / H);
    width = Math.max(1, Math.round(W * scale));
    height = Math.max(1, Math.round(H * scale));
  }
  if (op.without_enlargement && (width > W || height > H)) return { width: Math.min(width, W), height: Math.min(height, H) };
  return { width, height };
}

/**
 * The size of the result of `operations` on an image of size `input`, known before any work is done, so a
 * pipeline that would enlarge a tiny image past the pixel limit is refused up front.
 * @example outputSize({ width: 1, height: 1000 }, [{ operation: 'resize', width: 8192, without_enlargement: false }])
 * // { width: 8192, height: 8192000 }
 */
export function outputSize(input: Size, operations: Operation[]): Size {
  return operations.reduce((size, op) => (op.operation === 'resize' ? resized(size, op) : size), input);
}
