// All SQL behind GET /v1/stats on PostgreSQL: the statements of ../stats-repository.ts, named so each connection
// prepares them once, with the same answers.
import type pg from 'pg'
import type { StatsReads } from '../../services/stats.js'
import type { CountRow, DeliveryCounts, HourRow } from '../stats-repository.js'
import { PostgresTasksRepository } from './tasks-repository.js'

// As SQLite's: the hour is the first 13 characters of the ISO text ("2026-12-01T08"), so no date function runs per row.
const HOURS = 'SELECT substr(created_at, 1, 13) AS hour, status, count(*) AS n FROM tasks WHERE created_at >= $1'
// SQLite's julianday difference, exactly: both times end in Z, so the cast to timestamptz reads them as UTC whatever
// the session's TimeZone, and the interval's epoch is exact to the microsecond (our times carry milliseconds).
const DURATIONS = `
  SELECT round(extract(epoch FROM (e.at::timestamptz - t.created_at::timestamptz)) * 1000)::bigint AS ms
  FROM tasks t JOIN task_events e ON e.seq = (
    SELECT min(seq) FROM task_events WHERE task_seq = t.seq AND status = 'success' AND outcome = 'applied')
  WHERE t.created_at >= $1 AND t.status = 'success'`
const DELIVERIES = `
  SELECT count(*) FILTER (WHERE d.state = 'failed') AS dead,
         count(*) FILTER (WHERE d.state = 'pending' AND d.round_attempts > 0) AS retrying,
         count(*) FILTER (WHERE d.state = 'pending') AS pending
  FROM notification_deliveries d`

const statements = {
  countsOf: 'SELECT status, count(*) AS n FROM tasks WHERE caller = $1 GROUP BY status',
  hours: `${HOURS} GROUP BY hour, status`,
  hoursOf: `${HOURS} AND caller = $2 GROUP BY hour, status`,
  durations: DURATIONS,
  durationsOf: `${DURATIONS} AND t.caller = $2`,
  deliveries: DELIVERIES,
  deliveriesOf: `${DELIVERIES} WHERE d.caller = $1`
} as const

export class PostgresStatsRepository implements StatsReads {
  // Everyone's counts are the task module's (task_counts, kept by triggers): one statement for both.
  readonly #tasks = new PostgresTasksRepository()

  constructor (private readonly pool: pg.Pool) {}

  async counts (caller?: string): Promise<CountRow[]> {
    return caller === undefined ? await this.#tasks.countsByStatus(this.pool) : await this.#rows<CountRow>('countsOf', [caller])
  }

  async hours (since: string, caller?: string): Promise<HourRow[]> {
    return caller === undefined ? await this.#rows<HourRow>('hours', [since]) : await this.#rows<HourRow>('hoursOf', [since, caller])
  }

  async successDurations (since: string, caller?: string): Promise<number[]> {
    const rows = caller === undefined ? await this.#rows<{ ms: number }>('durations', [since]) : await this.#rows<{ ms: number }>('durationsOf', [since, caller])
    return rows.map((row) => row.ms)
  }

  async deliveries (caller?: string): Promise<DeliveryCounts> {
    return (caller === undefined ? await this.#rows<DeliveryCounts>('deliveries', []) : await this.#rows<DeliveryCounts>('deliveriesOf', [caller]))[0]!
  }

  async #rows<R extends pg.QueryResultRow> (name: keyof typeof statements, values: unknown[]): Promise<R[]> {
    return (await this.pool.query<R>({ name: `stats.${name}`, text: statements[name], values })).rows
  }
}
