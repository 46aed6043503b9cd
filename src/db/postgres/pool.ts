// Opens the connection pool to PostgreSQL (node-postgres), with the limits a replica of this service runs with.
import type pg from 'pg'
import { pgDriver } from './driver.js'

// Connections per replica. A push holds one for a single short transaction, so a few serve hundreds of pushes a second;
// several replicas share the server's max_connections (100 by default), and 10 each leaves room for four and psql.
export const DEFAULT_POOL_MAX = 10
// Longest a statement may run. Our statements are index look-ups and single-row writes that take milliseconds; one that
// runs for seconds is stuck (a lock held by someone else), and the push waiting on it must fail while MiniMax still
// listens rather than hold a connection for good. Migrations lift it for their own session (migrate.ts).
export const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000
// Longest wait for a new connection (TCP, TLS, authentication) or for a free one in a busy pool: a database that does
// not answer in this long is down for our purposes, and the caller gets an error instead of a hang.
export const DEFAULT_CONNECTION_TIMEOUT_MS = 5000
// An idle connection is closed after this long, so a quiet replica does not hold its share of max_connections.
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000
// Shown in pg_stat_activity and the server's logs, so an operator sees which sessions are ours.
export const APPLICATION_NAME = 's2v-callback'

export type PoolOptions = {
  /**
   * An idle connection failed (the server restarted, the network dropped it). The pool has already discarded it;
   * without a listener node-postgres would throw the error out of the process.
   */
  onError: (err: Error) => void
  max?: number
  statementTimeoutMs?: number
  connectionTimeoutMs?: number
  idleTimeoutMs?: number
}

const URL_PATTERN = /^postgres(?:ql)?:\/\//i

/** True for the URLs that select PostgreSQL (postgres://... and postgresql://..., as libpq accepts them). */
export function isPostgresUrl (url: string): boolean {
  return URL_PATTERN.test(url)
}

// BIGINT (int8) arrives as a string by default, since a JavaScript number cannot hold every 64-bit value. Our BIGINTs
// (seq, byte sizes, count(*)) stay far below 2^53, so they are read as numbers, the same values better-sqlite3 returns;
// one that does not fit fails the query instead of being rounded.
function parseBigint (text: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value)) throw new RangeError(`BIGINT ${text} does not fit a JavaScript number`)
  return value
}

export function openPool (url: string, options: PoolOptions): pg.Pool {
  if (!isPostgresUrl(url)) throw new Error('a PostgreSQL URL starts with postgres:// or postgresql://')
  const driver = pgDriver()
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === driver.types.builtins.INT8 && format !== 'binary' ? parseBigint : driver.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser
  }
  const pool = new driver.Pool({
    connectionString: url,
    max: options.max ?? DEFAULT_POOL_MAX,
    statement_timeout: options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
    idleTimeoutMillis: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    application_name: APPLICATION_NAME,
    types
  })
  pool.on('error', options.onError)
  return pool
}
