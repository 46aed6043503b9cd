// One transaction on one pooled connection: BEGIN, the work, COMMIT; ROLLBACK when the work throws; released always.
import type pg from 'pg'

/** COMMIT itself failed: the transaction may have committed (the connection dropped before the answer) or not. */
export class CommitError extends Error {
  constructor (cause: unknown) {
    super(`COMMIT failed, the transaction's outcome is unknown: ${(cause as Error | null)?.message ?? String(cause)}`, { cause })
    this.name = 'CommitError'
  }
}

export async function inTransaction<T> (pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  // The pool listens for errors only on idle connections: one that drops while we hold it would otherwise throw out of
  // the process. Its next query fails with the error, which is what the work sees.
  let lost: Error | undefined
  const onError = (err: Error) => { lost = err }
  client.on('error', onError)
  // A connection in an unknown state (a failed BEGIN, ROLLBACK or COMMIT) is thrown away, not handed to the next caller.
  let discard: Error | undefined
  try {
    try {
      await client.query('BEGIN')
    } catch (err) {
      discard = err as Error
      throw err
    }
    let result: T
    try {
      result = await work(client)
    } catch (err) {
      await client.query('ROLLBACK').catch((rollback: Error) => { discard = rollback })
      throw err
    }
    try {
      await client.query('COMMIT')
    } catch (err) {
      discard = err as Error
      throw new CommitError(err)
    }
    return result
  } finally {
    client.off('error', onError)
    client.release(discard ?? lost)
  }
}
