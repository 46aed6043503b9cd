// The limits every replica shares, built for the engine: the providers' create pace and poll budgets (sharedLimits)
// and the per-caller rate limits' store (rateLimitStore). SQLite: one process, so this process's memory, as fast as
// plain fields; PostgreSQL: the database, swept of ended rate-limit windows while the app runs.
import type { FastifyRateLimitStoreCtor, RateLimitPluginOptions } from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import { postgresRateLimitStore, sweepRateLimits } from '../db/postgres/rate-limit-store.js'
import { PostgresLimits } from '../db/postgres/shared-limits.js'
import { LogThrottle } from '../lib/log-throttle.js'
import { Ticker } from '../lib/ticker.js'
import { MemoryLimits, type SharedLimits } from '../services/shared-limits.js'

declare module 'fastify' {
  interface FastifyInstance {
    sharedLimits: SharedLimits
    /** The store @fastify/rate-limit counts in; null: its own in-memory store (one process). */
    rateLimitStore: FastifyRateLimitStoreCtor | null
  }
}

// Ended windows are deleted this often: a row per caller and route, so a minute's worth of callers at most waits.
const SWEEP_INTERVAL_MS = 60_000
// A database that is down fails every request's count: one warning a second says so without flooding the log.
const FAILED_COUNT_LOG_LINES_PER_SECOND = 1

/**
 * @fastify/rate-limit's options for this engine's store: per-route limits only (each route sets its own); on
 * PostgreSQL a count that fails lets the request through (skipOnError), the store having warned.
 */
export function rateLimitOptions (store: FastifyRateLimitStoreCtor | null): RateLimitPluginOptions {
  return store ? { global: false, store, skipOnError: true } : { global: false }
}

export default fp(async (app) => {
  const engine = app.engine
  if (engine.kind === 'sqlite') {
    app.decorate('sharedLimits', new MemoryLimits())
    app.decorate('rateLimitStore', null)
    return
  }
  const { pool } = engine
  app.decorate('sharedLimits', new PostgresLimits(pool))
  const throttle = new LogThrottle(FAILED_COUNT_LOG_LINES_PER_SECOND)
  app.decorate('rateLimitStore', postgresRateLimitStore({
    pool,
    // The request goes on uncounted (fail open, see README "Replicas"): a rate limit is fairness between callers, and
    // every route it guards either needs the database anyway (and answers that error itself) or must not fail with it.
    onError: (err) => {
      const admission = throttle.admit()
      if (admission.log) app.log.warn({ err, suppressed: admission.suppressed }, 'could not count a request against its rate limit (PostgreSQL); let through uncounted')
    }
  }))
  const sweeper = new Ticker(async () => { await sweepRateLimits(pool) }, SWEEP_INTERVAL_MS, (err) => {
    app.log.warn({ err }, 'sweeping ended rate-limit windows failed; trying again in a minute')
  })
  app.addHook('onReady', async () => { sweeper.start() })
  // preClose: the sweep in progress ends before the pool closes (the database plugin's onClose).
  app.addHook('preClose', async () => { await sweeper.stop() })
}, { name: 'shared-limits', dependencies: ['database'] })
