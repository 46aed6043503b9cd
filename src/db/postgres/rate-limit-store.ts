// @fastify/rate-limit's store on PostgreSQL: every replica counts a caller's requests in the same row, so a caller
// gets the route's limit once, not once per replica. One statement per request; windows that ended are swept.
import type { FastifyRateLimitOptions, FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type pg from 'pg'
import { namedStatements } from './statements.js'

const { rows, changes } = namedStatements('rate-limit', {
  // A fixed window per key, as the plugin's own in-memory store counts: the first request opens it for timeWindow
  // ($2, ms), the next ones count in it, the first after its end opens a new one, all in this one statement on the
  // server's clock. Two replicas counting one key at once queue on its row: neither count is lost.
  hit: `
    INSERT INTO rate_limit_hits AS r (key, hits, window_ends) VALUES ($1, 1, now() + make_interval(secs => $2::float8 / 1000))
    ON CONFLICT (key) DO UPDATE SET
      hits = CASE WHEN r.window_ends <= now() THEN 1 ELSE r.hits + 1 END,
      window_ends = CASE WHEN r.window_ends <= now() THEN excluded.window_ends ELSE r.window_ends END
    RETURNING hits, GREATEST(0, extract(epoch FROM (window_ends - now())) * 1000)::float8 AS ttl`,
  // Keys whose window ended: the next request opens a fresh window anyway, so the row only takes room. SKIP LOCKED:
  // a row being counted right now is left for the next sweep, never waited for.
  sweep: `
    DELETE FROM rate_limit_hits WHERE key IN (
      SELECT key FROM rate_limit_hits WHERE window_ends < now() ORDER BY window_ends LIMIT $1 FOR UPDATE SKIP LOCKED)`
})

// Rows deleted per sweep statement: short enough never to hold the table for long, repeated while there are more.
const SWEEP_BATCH = 5000
// The most batches one sweep deletes: a flood of distinct addresses is cleared over a few sweeps, never in one long one.
const SWEEP_MAX_BATCHES = 20

// What the plugin hands a store and its children (its merged options) beyond what its types say.
type StoreParams = { continueExceeding?: boolean, exponentialBackoff?: boolean, routeInfo?: { method?: unknown, url?: unknown } }

export type RateLimitStoreOptions = {
  pool: pg.Pool
  /** A count failed (the database is down or slow): the plugin then lets the request through (skipOnError). */
  onError: (err: unknown) => void
}

/** The store class @fastify/rate-limit instantiates (it takes a constructor), bound to this pool. */
export function postgresRateLimitStore ({ pool, onError }: RateLimitStoreOptions): FastifyRateLimitStoreCtor {
  class PostgresRateLimitStore implements FastifyRateLimitStore {
    readonly #prefix: string

    constructor (options: FastifyRateLimitOptions, prefix = '') {
      // Refused when registered rather than counted wrong: neither is used by our routes, and both change how a window
      // is extended, which this statement does not do.
      const { continueExceeding, exponentialBackoff } = options as StoreParams
      if (continueExceeding === true || exponentialBackoff === true) {
        throw new Error('the PostgreSQL rate-limit store counts fixed windows: continueExceeding and exponentialBackoff are not supported')
      }
      this.#prefix = prefix
    }

    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number): void {
      rows<{ hits: number, ttl: number }>(pool, 'hit', [this.#prefix + key, timeWindow]).then(
        ([row]) => { callback(null, { current: row!.hits, ttl: row!.ttl }) },
        (err: Error) => {
          onError(err)
          callback(err)
        })
    }

    /** Each route counts apart (its method and URL prefix the key), as the plugin's own stores do. */
    child (routeOptions: FastifyRateLimitOptions): FastifyRateLimitStore {
      const route = (routeOptions as StoreParams).routeInfo ?? {}
      return new PostgresRateLimitStore(routeOptions, `${this.#prefix}${String(route.method)}${String(route.url)}-`)
    }
  }
  return PostgresRateLimitStore
}

/** Deletes the windows that ended; returns how many. */
export async function sweepRateLimits (pool: pg.Pool): Promise<number> {
  let deleted = 0
  for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
    const swept = await changes(pool, 'sweep', [SWEEP_BATCH])
    deleted += swept
    if (swept < SWEEP_BATCH) break
  }
  return deleted
}
