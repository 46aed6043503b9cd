// The limits every replica shares, on PostgreSQL: one row per key (shared_limits), locked FOR UPDATE, changed by the
// step and written back in one short transaction, on the database's clock (one clock for every replica).
import type pg from 'pg'
import stringify from 'safe-stable-stringify'
import type { LimitStep, SharedLimits } from '../../services/shared-limits.js'
import { namedStatements } from './statements.js'
import { inTransaction } from './transaction.js'

// The clock is the server's: replicas' clocks may be apart by more than the pacing's margins, the server's is one.
// clock_timestamp(), not now(): now() is the transaction's start, which a wait for the row lock would leave behind.
const NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::float8'

const { rows, changes } = namedStatements('limits', {
  lock: `SELECT state, ${NOW_MS} AS now FROM shared_limits WHERE key = $1 FOR UPDATE`,
  // The first step on a key makes its row; two replicas making it at once both go on to lock the one that exists.
  create: "INSERT INTO shared_limits (key, state) VALUES ($1, 'null') ON CONFLICT (key) DO NOTHING",
  save: 'UPDATE shared_limits SET state = $2 WHERE key = $1',
  read: `SELECT (SELECT state FROM shared_limits WHERE key = $1) AS state, ${NOW_MS} AS now`
})

type Row = { state: unknown, now: number }

export class PostgresLimits implements SharedLimits {
  constructor (private readonly pool: pg.Pool) {}

  async change<S, R> (key: string, step: LimitStep<S, R>): Promise<R> {
    return await inTransaction(this.pool, async (client) => {
      let [row] = await rows<Row>(client, 'lock', [key])
      if (!row) {
        await changes(client, 'create', [key])
        ;[row] = await rows<Row>(client, 'lock', [key])
      }
      // A step that changed nothing (a slot found taken, a budget found spent) writes nothing. Compared with sorted keys
      // (jsonb gives them back in an order of its own), and taken before the step, which owns the state and may change
      // it in place.
      const before = stringify(row!.state)
      const { state, result } = step((row!.state ?? undefined) as S | undefined, row!.now)
      const text = stringify(state)
      if (text !== before) await changes(client, 'save', [key, text])
      return result
    })
  }

  async read<S> (key: string): Promise<{ state: S | undefined, now: number }> {
    const [row] = await rows<Row>(this.pool, 'read', [key])
    return { state: (row!.state ?? undefined) as S | undefined, now: row!.now }
  }
}
