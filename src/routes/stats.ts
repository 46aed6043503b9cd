// GET /v1/stats: the dashboard overview's numbers (tasks now and over 24 h, budgets, deliveries, challenge latency).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { StatsRepository } from '../db/stats-repository.js'
import { CHALLENGE_DURATION_METRIC } from '../plugins/metrics.js'
import { errorResponses } from '../schemas/common.js'
import { Stats } from '../schemas/stats.js'
import { overview } from '../services/stats.js'
import { callerKey } from './rate-limit-keys.js'
import { callerScope } from '../services/visibility.js'

export type StatsRouteOptions = { rateLimit: number }

const statsRoute: FastifyPluginAsyncTypebox<StatsRouteOptions> = async (app, options) => {
  const sources = {
    repo: new StatsRepository(app.db),
    budgets: () => app.reconciler.budgets(),
    registry: app.metrics,
    challengeMetric: CHALLENGE_DURATION_METRIC
  }

  app.get('/v1/stats', {
    onRequest: app.authenticate,
    config: { rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'Overview numbers',
      description: 'Tasks by status now; tasks per hour over the last 24 h by outcome, success rate, median and p95 time from submit to success; ' +
        'the queue depth (when there is a queue), the provider call budget in use, deliveries failing, and the challenge answer latency ' +
        'from this process\'s histogram. A caller who is not an operator gets its own tasks\' numbers (scope: caller).',
      tags: ['dashboard'],
      response: { 200: Stats, ...errorResponses(401, 429, 500) }
    }
  }, async (request) => await overview(sources, callerScope(request)))
}

export default statsRoute
