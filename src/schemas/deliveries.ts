// Notification deliveries (the outbox and its dead letters), their attempts, replays, and the signing secret.
import { Type, type Static } from 'typebox'
import { DELIVERY_STATES } from '../db/deliveries-repository.js'
import { Nullable } from './common.js'
import { MAX_PAGE } from './tasks.js'

export const DeliveryStateSchema = Type.Enum([...DELIVERY_STATES], { description: 'pending (being tried), delivered, or failed (dead: no more attempts)' })

export const DeliveryAttempt = Type.Object({
  at: Type.String({ format: 'date-time', description: 'When the attempt ended' }),
  status_code: Nullable(Type.Integer({ description: 'The consumer\'s HTTP status; null when none came (refused, timeout, reset, refused address)' })),
  latency_ms: Type.Integer({ description: 'How long the attempt took' }),
  error: Nullable(Type.String({ description: 'What went wrong; null on a 2xx' }))
}, { description: 'One attempt to deliver' })

export const Delivery = Type.Object({
  id: Type.String({ description: 'The message id, sent as the webhook-id header (the same on every attempt and replay)' }),
  task: Type.String({ description: 'Our id of the task the message is about' }),
  url: Type.String({ description: 'Where it goes: the task\'s notify_url or NOTIFY_URL' }),
  status: Type.String({ description: 'The task status the message announces' }),
  state: DeliveryStateSchema,
  next_attempt_at: Nullable(Type.String({ format: 'date-time', description: 'While pending: not before this time; null while it waits for an earlier message of the same task to the same URL' })),
  dead_reason: Nullable(Type.String({
    description: 'Why it is failed: attempts_exhausted, gone (the URL answered 410), url_gone (an earlier 410 from that URL), notify_url_not_allowed (SSRF guard), superseded (a later status was delivered first)'
  })),
  created_at: Type.String({ format: 'date-time', description: 'When the status changed' }),
  updated_at: Type.String({ format: 'date-time' }),
  delivered_at: Nullable(Type.String({ format: 'date-time' })),
  attempts: Type.Array(DeliveryAttempt, { description: 'Every attempt, oldest first (replays included)' })
}, {
  description: 'One signed message to one URL about one status change',
  examples: [{
    id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    task: '64570eb2-57f9-4981-9f29-f0496a7692de',
    url: 'https://hooks.example.com/s2v',
    status: 'success',
    state: 'failed',
    next_attempt_at: null,
    dead_reason: 'attempts_exhausted',
    created_at: '2026-11-21T08:25:30.802Z',
    updated_at: '2026-11-22T12:31:02.113Z',
    delivered_at: null,
    attempts: [{ at: '2026-11-21T08:25:30.950Z', status_code: 503, latency_ms: 41, error: 'HTTP 503: down for maintenance' }]
  }]
})
export type Delivery = Static<typeof Delivery>

export const DeliveryParams = Type.Object({
  id: Type.String({ pattern: '^msg_[A-Za-z0-9_-]{1,64}$', description: 'The delivery\'s id (msg_...)' })
})

export const DeliveryListQuery = Type.Object({
  state: Type.Optional(DeliveryStateSchema),
  task: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Only this task\'s deliveries (our id or MiniMax\'s task_id)' })),
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 20, description: 'Deliveries per page' }),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' }))
}, { additionalProperties: false })

export const DeliveryPage = Type.Object({
  items: Type.Array(Delivery, { description: 'Newest first' }),
  next_cursor: Nullable(Type.String({ description: 'Pass as cursor for the next page; null on the last page' }))
}, { description: 'A page of deliveries' })

export const BulkRetryBody = Type.Object({
  since: Type.String({ format: 'date-time', description: 'Replay failed deliveries created at or after this time' }),
  until: Type.Optional(Type.String({ format: 'date-time', description: 'and before this time (default: now)' }))
}, { additionalProperties: false, examples: [{ since: '2026-11-21T00:00:00Z', until: '2026-11-22T00:00:00Z' }] })

export const BulkRetryAnswer = Type.Object({
  retried: Type.Integer({ description: 'Failed deliveries made pending again, oldest first' }),
  skipped: Type.Integer({ description: 'Failed deliveries left alone because a later status of their task was already delivered to their URL' })
}, { description: 'What the bulk replay did' })

export const SigningSecretAnswer = Type.Object({
  caller: Type.String({ description: 'Whose secrets these are: the caller that asked' }),
  secrets: Type.Array(Type.String({ description: 'whsec_...' }), {
    description: 'Every secret that signs the messages to your tasks\' notify_url now, newest first; any one verifies a message'
  }),
  keys: Type.Array(Type.Object({
    secret: Type.String({ description: 'whsec_...' }),
    created_at: Type.String({ format: 'date-time', description: 'When it was generated' }),
    expires_at: Nullable(Type.String({ format: 'date-time', description: 'When it stops signing (24 h after it was rotated out); null for the current one' }))
  }), { description: 'The same secrets, newest first, with their lifetimes' }),
  operator: Type.Optional(Type.Object({
    source: Type.Enum(['config', 'generated'], { description: 'NOTIFY_SECRET, or generated on first start and kept in the database' }),
    secrets: Type.Array(Type.String({ description: 'whsec_...' }), { description: 'They sign NOTIFY_URL\'s messages; NOTIFY_SECRET\'s also sign every task\'s' })
  }, { description: 'Admins only: the operator\'s secrets' }))
}, {
  description: 'The Standard Webhooks secrets that sign your notifications',
  examples: [{
    caller: 'team-a',
    secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD'],
    keys: [
      { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', created_at: '2026-11-21T08:00:00.000Z', expires_at: null },
      { secret: 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD', created_at: '2026-10-02T10:00:00.000Z', expires_at: '2026-11-22T08:00:00.000Z' }
    ]
  }]
})
export type SigningSecretAnswer = Static<typeof SigningSecretAnswer>
