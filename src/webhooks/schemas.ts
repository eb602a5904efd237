/**
 * @module
 * The webhook part of a job's status as a zod-openapi schema: the `notification` `GET /status` shows (the
 * `notify_url` input is `NotifyUrlField`, in the pipeline's schema, src/domain/operations.ts).
 */
import { z } from '@hono/zod-openapi';

export const NotificationSchema = z
  .object({
    webhook_id: z.string().openapi({ description: 'The `webhook-id` of every attempt: deduplicate by it' }),
    event: z.enum(['job.completed', 'job.failed']),
    status: z
      .enum(['pending', 'delivered', 'gone', 'failed'])
      .openapi({ description: '`gone`: the receiver answered 410; `failed`: attempts or age ran out' }),
    attempts: z.number().int(),
    last_attempt_at: z.string().optional(),
    last_response: z.object({ status: z.number().int().optional(), error: z.string().optional() }).optional(),
    next_attempt_at: z.string().optional(),
    delivered_at: z.string().optional(),
  })
  .openapi('Notification');
