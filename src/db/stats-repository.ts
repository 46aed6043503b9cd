// All SQL behind GET /v1/stats (the dashboard overview) on SQLite: reads only, statements prepared once.
import type { Db } from './database.js'
import type { StatsReads } from '../services/stats.js'

export type HourRow = { hour: string, status: string, n: number }
export type CountRow = { status: string, n: number }

export class StatsRepository implements StatsReads {
  readonly #counts
  readonly #countsOf
  readonly #hours
  readonly #hoursOf
  readonly #durations
  readonly #durationsOf
  readonly #deliveries
  readonly #deliveriesOf

  constructor (db: Db) {
    // Kept exact by triggers: four rows whatever the table size.
    this.#counts = db.prepare<[], CountRow>('SELECT status, n FROM task_counts')
    this.#countsOf = db.prepare<[string], CountRow>('SELECT status, count(*) AS n FROM tasks WHERE caller = ? GROUP BY status')
    // The hour is the first 13 characters of an ISO time ("2026-12-01T08"), so no date functions run per row.
    const hours = 'SELECT substr(created_at, 1, 13) AS hour, status, count(*) AS n FROM tasks WHERE created_at >= ?'
    this.#hours = db.prepare<[string], HourRow>(`${hours} GROUP BY hour, status`)
    this.#hoursOf = db.prepare<[string, string], HourRow>(`${hours} AND caller = ? GROUP BY hour, status`)
    // Submit to success: the first applied success event of each task created in the window, in milliseconds.
    const durations = `
      SELECT CAST(round((julianday(e.at) - julianday(t.created_at)) * 86400000) AS INTEGER) AS ms
      FROM tasks t JOIN task_events e ON e.seq = (
        SELECT min(seq) FROM task_events WHERE task_seq = t.seq AND status = 'success' AND outcome = 'applied')
      WHERE t.created_at >= ? AND t.status = 'success'`
    this.#durations = db.prepare<[string], { ms: number }>(durations).pluck()
    this.#durationsOf = db.prepare<[string, string], { ms: number }>(`${durations} AND t.caller = ?`).pluck()
    const deliveries = `
      SELECT count(*) FILTER (WHERE d.state = 'failed') AS dead,
             count(*) FILTER (WHERE d.state = 'pending' AND d.round_attempts > 0) AS retrying,
             count(*) FILTER (WHERE d.state = 'pending') AS pending
      FROM notification_deliveries d`
    this.#deliveries = db.prepare<[], DeliveryCounts>(deliveries)
    this.#deliveriesOf = db.prepare<[string], DeliveryCounts>(`${deliveries} WHERE d.caller = ?`)
  }

  /** Tasks by status now; `caller` limits them to one caller's. */
  async counts (caller?: string): Promise<CountRow[]> { return caller === undefined ? this.#counts.all() : this.#countsOf.all(caller) }

  /** Tasks created since `since` (ISO), by creation hour and current status. */
  async hours (since: string, caller?: string): Promise<HourRow[]> { return caller === undefined ? this.#hours.all(since) : this.#hoursOf.all(since, caller) }

  /** Milliseconds from submit to success of each successful task created since `since`, unordered. */
  async successDurations (since: string, caller?: string): Promise<number[]> {
    return (caller === undefined ? this.#durations.all(since) : this.#durationsOf.all(since, caller)) as unknown as number[]
  }

  async deliveries (caller?: string): Promise<DeliveryCounts> { return (caller === undefined ? this.#deliveries.get() : this.#deliveriesOf.get(caller))! }
}

export type DeliveryCounts = { dead: number, retrying: number, pending: number }
