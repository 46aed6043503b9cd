// What a PostgreSQL error means for the write that met it: another session's lock (try again later), or a lost server.

// SQLSTATEs of a write that met another session's locks or ran out of time waiting for them. The same write, or any
// other, fails alike until that session is done, so each is an answer of "busy, try again" (503 with Retry-After),
// never one update's fault:
// - 40001 serialization_failure, 40P01 deadlock_detected: the server aborted our transaction to let another one on;
// - 55P03 lock_not_available: a lock_timeout (or NOWAIT) ran out;
// - 57014 query_canceled: the pool's statement_timeout (pool.ts) ran out, in our statements almost always a lock wait.
const BUSY_CODES = new Set(['40001', '40P01', '55P03', '57014'])

// The server went away or will not take work (connection exceptions, shutdowns, too many connections): nothing can be
// written until it is back, whatever is written.
const UNAVAILABLE_CLASSES = ['08', '53', '57P']
// node-postgres' own words when the socket closed under a query (it gives them no SQLSTATE).
const LOST_CONNECTION = /Connection terminated|not queryable|timeout exceeded when trying to connect/i
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND'])

const codeOf = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** True for another session's lock, a deadlock or serialization failure, or a statement that ran out of time. */
export function isPostgresBusy (err: unknown): boolean {
  const code = codeOf(err)
  return code !== undefined && BUSY_CODES.has(code)
}

/** True when the server cannot be reached or refuses work: every write fails alike until it is back. */
export function isPostgresUnavailable (err: unknown): boolean {
  const code = codeOf(err)
  if (code !== undefined && (NETWORK_CODES.has(code) || (code.length === 5 && UNAVAILABLE_CLASSES.some((prefix) => code.startsWith(prefix))))) return true
  return err instanceof Error && code === undefined && LOST_CONNECTION.test(err.message)
}
