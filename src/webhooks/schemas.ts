/**
 * @module
 * The webhook parts of the HTTP contract as zod-openapi schemas, for the route declarations to use: the
 * `notify_url` input and the `notification` a job's status shows. Kept here so the handlers' declarations
 * (and the OpenAPI document) say what this module does.
 */
import { z } from '@hono/zod-openapi';
import { MAX_NOTIFY_URL_LENGTH } from './notify-url.js';

export const NotifyUrlField = z
  .string()
  .max(MAX_NOTIFY_URL_LENGTH)
  .optional()
  .openapi({
    description:
      'Where the job\'s end is announced: a signed POST (Standard Webhooks) of `{ type: "job.completed" | "job.failed", timestamp, data: <this job\'s status> }`. ' +
      '`https` only (and `http` where WEBHOOK_ALLOW_HTTP=true); private, loopback and link-local addresses are refused unless WEBHOOK_ALLOWED_HOSTS allows them; ' +
      'refused with 400 `invalid_notify_url` (or when the deployment has no WEBHOOK_SECRETS).',
    example: 'https://example.com/hooks/images',
  });

export const NotificationSchema = z
  .object({
    webhook_id: z.string().openapi({ description: 'The `webhook-id` of every attempt: deduplicate by it' }),
    event: z.enum(['job.completed', 'job.failed']),
    status: z.enum(['pending', 'delivered', 'gone', 'failed']).openapi({ description: '`gone`: the receiver answered 410; `failed`: attempts or age ran out' }),
    attempts: z.number().int(),
    last_attempt_at: z.string().optional(),
    last_response: z.object({ status: z.number().int().optional(), error: z.string().optional() }).optional(),
    next_attempt_at: z.string().optional(),
    delivered_at: z.string().optional(),
  })
  .openapi('Notification');
