// GET /v1/stats: the dashboard overview's numbers (tasks now and over 24 h, budgets, deliveries, challenge latency).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { StatsRepository } from '../db/stats-repository.js'
import { PostgresStatsRepository } from '../db/postgres/stats-repository.js'
import { CHALLENGE_DURATION_METRIC } from '../plugins/metrics.js'
import { errorResponses } from '../schemas/common.js'
import { Stats } from '../schemas/stats.js'
import { overview } from '../services/stats.js'
import { callerKey } from './rate-limit-keys.js'
import { callerScope } from '../services/visibility.js'

export type StatsRouteOptions = { rateLimit: number }

// Every open dashboard asks every 10 s: one computation per scope per interval however many are open (the 24-hour
// queries read every task of the day; bench/overview.ts measures them).
const CACHE_MS = 5_000

const statsRoute: FastifyPluginAsyncTypebox<StatsRouteOptions> = async (app, options) => {
  const sources = {
    repo: app.engine.kind === 'sqlite' ? new StatsRepository(app.engine.db) : new PostgresStatsRepository(app.engine.pool),
    budgets: () => app.reconciler.budgets(),
    registry: app.metrics,
    challengeMetric: CHALLENGE_DURATION_METRIC
  }

  const cache = new Map<string, { at: number, stats: Promise<Stats> }>()

  app.get('/v1/stats', {
    onRequest: app.authenticate,
    config: { rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'Overview numbers',
      description: 'Tasks by status now; tasks per hour over the last 24 h by outcome, success rate, median and p95 time from submit to success; ' +
        'the queue depth (when there is a queue), the provider call budget in use, deliveries failing, and the challenge answer latency ' +
        'from this process\'s histogram. A caller who is not an operator gets its own tasks\' numbers (scope: caller). Computed at most every 5 s per scope (generated_at says when).',
      tags: ['dashboard'],
      response: { 200: Stats, ...errorResponses(401, 429, 500) }
    }
  }, async (request) => {
    const scope = callerScope(request)
    const key = scope ?? '\u0000all' // no caller name holds a NUL
    const cached = cache.get(key)
    if (cached && cached.at > Date.now() - CACHE_MS) return await cached.stats
    const stats = overview(sources, scope)
    cache.set(key, { at: Date.now(), stats })
    // Entries of callers who stopped asking are dropped, so the map stays as small as the set of active viewers.
    for (const [k, entry] of cache) if (entry.at <= Date.now() - CACHE_MS) cache.delete(k)
    stats.catch(() => cache.delete(key))
    return await stats
  })
}

export default statsRoute
