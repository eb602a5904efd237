/**
 * @module
 * `GET /list`: the uploads, newest first, a page at a time with an opaque cursor.
 */
import { createRoute, z, type RouteHandler } from '@hono/zod-openapi';
import { badRequest } from '../src/domain/errors.js';
import { publicFile, type ListCursor } from '../src/domain/jobs.js';
import { quote } from '../src/domain/operations.js';
import type { AppDeps } from '../src/ports.js';
import { type AppEnv, problemResponse, REQUEST_ID_HEADER, routeErrors, UploadedFile } from './schemas.js';

export const MAX_LIMIT = 100;
export const DEFAULT_LIMIT = 20;

/** `limit` and `cursor`, as every paged route takes them (`what`: what a page holds). */
export function pageQuery(what: string) {
  return z.object({
    // Text at run time (parseLimit names the bad value); an integer in the document.
    limit: z
      .string()
      .optional()
      .openapi({
        type: 'integer',
        minimum: 1,
        maximum: MAX_LIMIT,
        default: DEFAULT_LIMIT,
        example: DEFAULT_LIMIT,
        description: `${what} per page, 1–${MAX_LIMIT} (default ${DEFAULT_LIMIT})`,
      }),
    cursor: z
      .string()
      .optional()
      .openapi({ description: 'The next_cursor of the previous page; absent or empty: the first page', example: '' }),
  });
}

export const listRoute = createRoute({
  method: 'get',
  path: '/list',
  operationId: 'listUploads',
  summary: 'List uploads',
  description: 'The uploads, newest first, a page at a time.',
  tags: ['images'],
  request: {
    query: pageQuery('Uploads'),
  },
  responses: {
    200: {
      description: 'A page of uploads',
      headers: REQUEST_ID_HEADER,
      content: {
        'application/json': {
          schema: z.object({
            items: z.array(UploadedFile.omit({ content_type: true, sha256: true })),
            total: z.number().int(),
            next_cursor: z.string().nullable(),
          }),
        },
      },
    },
    400: problemResponse(400, 'Bad limit (invalid_limit) or cursor (invalid_cursor)'),
    ...routeErrors,
  },
});

export function listHandler({ jobs }: Pick<AppDeps, 'jobs'>): RouteHandler<typeof listRoute, AppEnv> {
  return async function list(c) {
    const query = c.req.valid('query');
    const limit = parseLimit(query.limit);
    // An empty cursor is the first page, as no cursor is (a form or a generated example sends `cursor=`).
    const after = query.cursor === undefined || query.cursor === '' ? undefined : decodeCursor(query.cursor);
    const page = await jobs.listFiles(limit, after);
    const last = page.items.at(-1);
    return c.json(
      { items: page.items.map(publicFile), total: page.total, next_cursor: page.hasMore && last ? encodeCursor(last) : null },
      200,
    );
  };
}

export function parseLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LIMIT;
  const value = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (!(value >= 1 && value <= MAX_LIMIT))
    throw badRequest('invalid_limit', `limit must be an integer from 1 to ${MAX_LIMIT}, got ${quote(text)}`);
  return value;
}

/** An opaque cursor from a record's two sort keys (its time and its id), URL-safe base64 of JSON. */
export function encodePair(time: string, id: string): string {
  return btoa(JSON.stringify([time, id]))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}

/** The two sort keys of a cursor `encodePair` made; anything else is a 400 naming the route it came from. */
export function decodePair(text: string, route: string): [time: string, id: string] {
  try {
    const parsed: unknown = JSON.parse(atob(text.replace(/-/g, '+').replace(/_/g, '/')));
    if (Array.isArray(parsed) && parsed.length === 2 && parsed.every((part) => typeof part === 'string'))
      return [parsed[0] as string, parsed[1] as string];
  } catch {
    // fall through to the error below
  }
  throw badRequest('invalid_cursor', `cursor must be the next_cursor of a previous ${route} page`);
}

const encodeCursor = ({ uploaded_at, file_id }: ListCursor) => encodePair(uploaded_at, file_id);

function decodeCursor(text: string): ListCursor {
  const [uploaded_at, file_id] = decodePair(text, '/list');
  return { uploaded_at, file_id };
}
