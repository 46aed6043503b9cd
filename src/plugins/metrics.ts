// Prometheus metrics: one registry per app, fed by request hooks and the task events; GET /metrics unless METRICS_PORT moves it.
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { Type } from 'typebox'
import { errorResponses } from '../schemas/common.js'
import { TASK_STATUSES } from '../services/task-state.js'
import type { TaskEventListeners } from '../services/task-events.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's metrics (and the process's); other plugins may register their own metrics in it. */
    metrics: Registry
    /** What the metrics count of the task module's events (subscribed in plugins/task-effects.ts). */
    metricsListeners: TaskEventListeners
  }
}

export type MetricsPluginOptions = {
  /** Serve GET /metrics on this app (behind app.authenticate); false when METRICS_PORT serves it elsewhere. */
  expose: boolean
}

// Requests take ~1 ms (challenge, lookup) up to the create timeout (submit, 30 s by default).
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
// MiniMax answers in tens of milliseconds to tens of seconds.
const PROVIDER_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
// A durable SQLite commit is tens of microseconds (NORMAL) to a few milliseconds (FULL, fsync).
const DB_WRITE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5]

// Time in the submit queue: nothing (sent at once) to a day (QUEUE_MAX_WAIT_MS); 5 creates a minute makes minutes common.
const QUEUE_WAIT_BUCKETS = [0.1, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600]
// Event-loop stalls: a timer due every 100 ms records how late it fired. Buckets around MiniMax's 3 s challenge budget.
const LOOP_SAMPLE_MS = 100
const LOOP_DELAY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10]

// Every outcome a push can have, so each series exists (at 0) before the first push: rate() needs the zero.
const PUSH_OUTCOMES = ['applied', 'duplicate', 'out_of_order', 'conflict', 'unrecognised', 'refused'] as const
// Route label of requests that matched no route: the raw URL must never become a label (tokens, unbounded values).
const UNMATCHED_ROUTE = 'unmatched'
const CALLBACK_ROUTE_PREFIX = '/get_callback'

/** The histogram of challenge answer times (read by GET /v1/stats). */
export const CHALLENGE_DURATION_METRIC = 's2v_callback_challenge_duration_seconds'

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

// The process's own metrics (CPU, memory, event loop lag, GC) are collected once per process and shared by every
// app's registry: each collection starts an event-loop timer and a GC observer that are never stopped, and tests
// build many apps in one process.
let processMetrics: Registry | undefined
function sharedProcessMetrics (): Registry {
  if (!processMetrics) {
    processMetrics = new Registry()
    collectDefaultMetrics({ register: processMetrics })
  }
  return processMetrics
}

/** The Prometheus text of a registry, answered the same way by the app and by the METRICS_PORT server. */
export async function sendMetrics (registry: Registry, reply: FastifyReply): Promise<FastifyReply> {
  const text = await registry.metrics()
  return reply.type(PROMETHEUS_CONTENT_TYPE).send(text)
}

/** The /metrics route's schema, shared with the METRICS_PORT server. */
export const metricsRouteSchema = {
  summary: 'Prometheus metrics',
  description: 'Request latency per route, challenges, pushes by outcome, submits by outcome and MiniMax code, provider call and database ' +
    'write latency, tasks by status, process metrics; in Prometheus text format. Served on METRICS_PORT instead when that is set.',
  tags: ['operations'],
  response: {
    200: {
      description: 'Prometheus text exposition format 0.0.4',
      content: { 'text/plain': { schema: Type.String({ examples: ['s2v_callback_pushes_total{outcome="applied"} 42'] }) } }
    },
    ...errorResponses(401, 500)
  }
}

export default fp<MetricsPluginOptions>(async (app, options) => {
  const registry = Registry.merge([sharedProcessMetrics(), new Registry()])
  const registers = [registry]

  const requestDuration = new Histogram({
    name: 's2v_http_request_duration_seconds',
    help: 'HTTP request duration by route template, method and status code',
    labelNames: ['route', 'method', 'status_code'] as const,
    buckets: REQUEST_BUCKETS,
    registers
  })
  const challenges = new Counter({ name: 's2v_callback_challenges_total', help: 'Callback challenges answered', registers })
  // MiniMax fails the create when the echo takes over 3 s: the one latency the dashboard's overview shows on its own.
  const challengeDuration = new Histogram({
    name: CHALLENGE_DURATION_METRIC,
    help: 'Time to answer a callback challenge',
    buckets: REQUEST_BUCKETS,
    registers
  })
  const pushes = new Counter({ name: 's2v_callback_pushes_total', help: 'Status pushes by what they did', labelNames: ['outcome'] as const, registers })
  // One child per outcome, made (and shown at 0) up front: every push then counts without hashing its label.
  const pushesBy = new Map<string, ReturnType<typeof pushes.labels>>(PUSH_OUTCOMES.map((outcome) => [outcome, pushes.labels({ outcome })]))
  for (const child of pushesBy.values()) child.inc(0)
  const submits = new Counter({
    name: 's2v_submits_total',
    help: 'Submits by outcome (created, rejected, unknown) and MiniMax or our error code (empty when created)',
    labelNames: ['outcome', 'code'] as const,
    registers
  })
  const providerCalls = new Histogram({
    name: 's2v_provider_call_duration_seconds',
    help: 'Provider HTTP call duration by provider, operation and success',
    labelNames: ['provider', 'operation', 'ok'] as const,
    buckets: PROVIDER_BUCKETS,
    registers
  })
  const dbWrites = new Histogram({ name: 's2v_db_write_duration_seconds', help: 'Duration of one group commit of task updates, until durable (its fsync included)', buckets: DB_WRITE_BUCKETS, registers })

  // The submit queue: depth per caller and provider, time queued, creates sent, rate-limit refusals.
  const queueDepths = app.taskStore.queries
  // eslint-disable-next-line no-new -- registered in the registry, which owns it
  new Gauge({
    name: 's2v_queue_depth',
    help: 'Tasks waiting in the submit queue, by provider and caller',
    labelNames: ['provider', 'caller'] as const,
    registers,
    async collect () {
      const depths = await queueDepths.queueDepths()
      this.reset() // a caller whose queue emptied drops out instead of showing its last depth
      for (const { provider, caller, n } of depths) this.set({ provider, caller }, n)
    }
  })
  const queueWait = new Histogram({
    name: 's2v_queue_wait_seconds', help: 'Time a task spent queued before its create was sent (0 when sent at once)', labelNames: ['provider'] as const, buckets: QUEUE_WAIT_BUCKETS, registers
  })
  const creates = new Counter({ name: 's2v_provider_creates_total', help: 'Creates sent to a provider', labelNames: ['provider'] as const, registers })
  const rateLimited = new Counter({
    name: 's2v_provider_rate_limited_total', help: 'Creates the provider refused with a rate limit (the task went back to the queue), by code', labelNames: ['provider', 'code'] as const, registers
  })
  // prom-client's nodejs_eventloop_lag_* gauges (monitorEventLoopDelay) are reset at every scrape, so they show the
  // last interval to one scraper; this histogram is cumulative, so any stall, between any scrapes, can be alerted on.
  const loopDelay = new Histogram({
    name: 's2v_event_loop_delay_seconds',
    help: `How late a timer due every ${LOOP_SAMPLE_MS} ms fired, i.e. how long the event loop was blocked (a challenge waits as long)`,
    buckets: LOOP_DELAY_BUCKETS,
    registers
  })
  let due = performance.now() + LOOP_SAMPLE_MS
  const sampler = setInterval(() => {
    const now = performance.now()
    loopDelay.observe(Math.max(0, now - due) / 1000)
    due = now + LOOP_SAMPLE_MS
  }, LOOP_SAMPLE_MS)
  sampler.unref()
  app.addHook('onClose', async () => { clearInterval(sampler) })

  // Kept exact by triggers: a scrape reads four rows, whatever the table size.
  const tasks = app.taskStore.queries
  // eslint-disable-next-line no-new -- registered in the registry, which owns it
  new Gauge({
    name: 's2v_tasks',
    help: 'Tasks by status',
    labelNames: ['status'] as const,
    registers,
    async collect () {
      const counts = new Map((await tasks.countsByStatus()).map((row) => [row.status, row.n]))
      for (const status of TASK_STATUSES) this.set({ status }, counts.get(status) ?? 0)
    }
  })

  // One labelled child per route, method and status, found by one string key: prom-client would hash the three labels
  // on every observation. A callback hook, not an async one: no promise per request.
  const durationOf = new Map<string, ReturnType<typeof requestDuration.labels>>()
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE
    const key = `${route} ${request.method} ${reply.statusCode}`
    let duration = durationOf.get(key)
    if (!duration) {
      duration = requestDuration.labels({ route, method: request.method, status_code: String(reply.statusCode) })
      durationOf.set(key, duration)
    }
    duration.observe(reply.elapsedTime / 1000)
    if (reply.statusCode === 200 && route.startsWith(CALLBACK_ROUTE_PREFIX) && hasChallenge(request.body)) {
      challenges.inc()
      challengeDuration.observe(reply.elapsedTime / 1000)
    }
    done()
  })

  // Subscribed to the task module's events with every other effect of a change (plugins/task-effects.ts).
  const listeners: TaskEventListeners = {
    push: ({ outcome }) => { (pushesBy.get(outcome) ?? pushes.labels({ outcome })).inc() },
    submit: ({ outcome, code }) => submits.inc({ outcome, code: code ?? '' }),
    providerCall: ({ provider, operation, ok, ms, traceId }) => {
      providerCalls.observe({ provider, operation, ok: String(ok) }, ms / 1000)
      // The provider's trace id is what its support asks for; one line per call (provider calls are rate limited, so few).
      app.log.info({ provider, operation, ok, ms: Math.round(ms), trace_id: traceId }, 'provider call')
    },
    dbWrite: ({ ms }) => dbWrites.observe(ms / 1000),
    queueDispatch: ({ provider, waitedMs }) => {
      creates.inc({ provider })
      queueWait.observe({ provider }, Math.max(0, waitedMs) / 1000)
    },
    rateLimited: ({ provider, code }) => rateLimited.inc({ provider, code })
  }
  app.decorate('metrics', registry)
  app.decorate('metricsListeners', listeners)

  if (options.expose) {
    app.get('/metrics', { onRequest: app.authenticate, schema: metricsRouteSchema }, async (_request, reply) => sendMetrics(registry, reply))
  }
}, { name: 'metrics', dependencies: ['database', 'auth'] })

function hasChallenge (body: unknown): boolean {
  return typeof body === 'object' && body !== null && typeof (body as { challenge?: unknown }).challenge === 'string'
}
