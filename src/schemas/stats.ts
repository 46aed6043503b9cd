// GET /v1/stats: the numbers of the dashboard's overview, for anyone who wants them without Prometheus.
import { Type, type Static } from 'typebox'
import { Nullable } from './common.js'

const Ms = (description: string) => Nullable(Type.Integer({ description }))

export const HourBucket = Type.Object({
  hour: Type.String({ format: 'date-time', description: 'Start of the hour (UTC)' }),
  success: Type.Integer({ description: 'Tasks created in this hour that succeeded' }),
  failed: Type.Integer({ description: 'Tasks created in this hour that failed' }),
  running: Type.Integer({ description: 'Tasks created in this hour that are not finished yet' })
}, { description: 'Tasks created in one hour, by outcome' })

export const Stats = Type.Object({
  generated_at: Type.String({ format: 'date-time' }),
  scope: Type.Enum(['all', 'caller'], { description: 'all: every caller\'s tasks (an operator, or an open deployment); caller: only yours' }),
  tasks: Type.Object({
    by_status: Type.Record(Type.String(), Type.Integer(), { description: 'Tasks by status now (every status has a key, 0 when none)' }),
    total: Type.Integer()
  }),
  last_24h: Type.Object({
    hours: Type.Array(HourBucket, { description: '24 hours, oldest first, the current hour last' }),
    created: Type.Integer({ description: 'Tasks created in the last 24 hours' }),
    succeeded: Type.Integer(),
    failed: Type.Integer(),
    success_rate: Nullable(Type.Number({ minimum: 0, maximum: 1, description: 'succeeded / (succeeded + failed); null when none finished' })),
    submit_to_success: Type.Object({
      count: Type.Integer({ description: 'Successful tasks measured' }),
      median_ms: Ms('Median time from the submit to the success event; null when none'),
      p95_ms: Ms('95th percentile of the same')
    })
  }, { description: 'Tasks created in the last 24 hours (by creation time)' }),
  queue: Nullable(Type.Object({
    depth: Type.Integer({ description: 'Tasks waiting in our submit queue' })
  }, { description: 'The submit queue; null on a service without one' })),
  providers: Type.Array(Type.Object({
    provider: Type.String(),
    per_minute: Type.Integer({ description: 'Calls the reconciler may make per minute (MINIMAX_POLL_BUDGET, MODELLIX_POLL_BUDGET)' }),
    used: Type.Integer({ description: 'Spent in the last 60 s' })
  }), { description: 'The provider call budget in use, per configured provider' }),
  deliveries: Type.Object({
    dead: Type.Integer({ description: 'Failed deliveries (no more attempts until replayed)' }),
    retrying: Type.Integer({ description: 'Pending deliveries that failed at least once' }),
    pending: Type.Integer({ description: 'Every pending delivery' })
  }, { description: 'Notification deliveries' }),
  challenge: Type.Object({
    count: Type.Integer({ description: 'Challenges answered since this process started' }),
    mean_ms: Nullable(Type.Number()),
    p50_ms: Nullable(Type.Number({ description: 'Estimated from the histogram buckets, as Prometheus\'s histogram_quantile does' })),
    p95_ms: Nullable(Type.Number()),
    over_1s: Type.Integer({ description: 'Answers slower than 1 s (MiniMax gives up at 3 s)' })
  }, { description: 'Callback challenge answer latency, from s2v_callback_challenge_duration_seconds (this process)' })
}, {
  description: 'The overview: tasks now, the last 24 hours, budgets, deliveries, challenge latency',
  examples: [{
    generated_at: '2026-12-01T09:00:00.000Z',
    scope: 'all',
    tasks: { by_status: { submitting: 0, processing: 2, success: 40, failed: 3 }, total: 45 },
    last_24h: {
      hours: [{ hour: '2026-12-01T08:00:00.000Z', success: 5, failed: 1, running: 2 }],
      created: 8,
      succeeded: 5,
      failed: 1,
      success_rate: 0.833,
      submit_to_success: { count: 5, median_ms: 94000, p95_ms: 181000 }
    },
    queue: null,
    providers: [{ provider: 'minimax', per_minute: 10, used: 1 }],
    deliveries: { dead: 1, retrying: 0, pending: 0 },
    challenge: { count: 8, mean_ms: 0.7, p50_ms: 0.6, p95_ms: 1.1, over_1s: 0 }
  }]
})
export type Stats = Static<typeof Stats>
