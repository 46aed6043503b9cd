// All SQL on notification deliveries, their attempts and gone URLs, on PostgreSQL: the statements of
// ../deliveries-repository.ts, named (./statements.ts), on a pool or a transaction's client.
import { namedStatements, type Queryable } from './statements.js'
import type { AttemptRow, DeadReason, DeliveryFilter, DeliveryListRow, DeliveryRow, NewAttempt, NewMessage, RangeRow } from '../deliveries-repository.js'

// In-order delivery, as on SQLite: pending, not queued, nothing earlier pending for the task and URL.
const READY = `d.state = 'pending' AND d.next_attempt_at IS NOT NULL AND NOT EXISTS (
  SELECT 1 FROM notification_deliveries e WHERE e.task_seq = d.task_seq AND e.url = d.url AND e.seq < d.seq AND e.state = 'pending')`
const SUPERSEDED = `EXISTS (
  SELECT 1 FROM notification_deliveries l WHERE l.task_seq = d.task_seq AND l.url = d.url AND l.seq > d.seq AND l.state = 'delivered')`
const LISTED = 'SELECT d.*, t.id AS task_public_id FROM notification_deliveries d JOIN tasks t ON t.seq = d.task_seq'

const statements = {
  // See NewMessage. Run in the status change's transaction, which holds the task's row lock: the change before it
  // (and its messages) committed first, so the "earlier pending" it checks is there to be seen.
  insertMessage: `
    WITH m AS (SELECT
      EXISTS (SELECT 1 FROM notification_gone_urls WHERE url = $4::text) AS gone,
      EXISTS (SELECT 1 FROM notification_deliveries WHERE task_seq = $2::bigint AND url = $4::text AND state = 'pending') AS queued)
    INSERT INTO notification_deliveries (id, task_seq, caller, url, status, payload, state, next_attempt_at, dead_reason, created_at, updated_at)
    SELECT $1::text, $2::bigint, $3::text, $4::text, $5::text, $6::text, CASE WHEN gone THEN 'failed' ELSE 'pending' END,
      CASE WHEN gone OR queued THEN NULL ELSE $7::text END, CASE WHEN gone THEN 'url_gone' END, $7::text, $7::text
    FROM m`,
  bySeqForUpdate: 'SELECT * FROM notification_deliveries WHERE seq = $1 FOR UPDATE',
  byId: `${LISTED} WHERE d.id = $1`,
  // Work for one replica only, as tasks' claimDuePolls: the due rows are locked as they are picked and moved to the
  // lease's end ($3) in the same statement; rows another transaction holds are skipped, and a row whose claim
  // committed after this statement's snapshot is checked again once locked (READ COMMITTED) and dropped, its
  // next_attempt_at being past $1 by then. RETURNING has no order: the rows come back soonest due first.
  claimDue: `
    WITH due AS (
      SELECT d.seq, d.next_attempt_at AS due_at FROM notification_deliveries d
      WHERE ${READY} AND d.next_attempt_at <= $1
      ORDER BY d.next_attempt_at, d.seq LIMIT $2
      FOR UPDATE OF d SKIP LOCKED
    ), claimed AS (
      UPDATE notification_deliveries SET next_attempt_at = $3 FROM due WHERE notification_deliveries.seq = due.seq RETURNING notification_deliveries.*
    )
    SELECT claimed.* FROM claimed JOIN due USING (seq) ORDER BY due.due_at, claimed.seq`,
  nextDue: `SELECT d.next_attempt_at AS at FROM notification_deliveries d WHERE ${READY} ORDER BY d.next_attempt_at LIMIT 1`,
  superseded: `SELECT ${SUPERSEDED} AS superseded FROM notification_deliveries d WHERE d.seq = $1`,
  releaseNext: `
    UPDATE notification_deliveries SET next_attempt_at = $3, updated_at = $3
    WHERE seq = (SELECT seq FROM notification_deliveries WHERE task_seq = $1 AND url = $2 AND state = 'pending' ORDER BY seq LIMIT 1)
      AND next_attempt_at IS NULL`,
  releaseOrphans: `
    UPDATE notification_deliveries AS d SET next_attempt_at = $1, updated_at = $1
    WHERE d.state = 'pending' AND d.next_attempt_at IS NULL AND NOT EXISTS (
      SELECT 1 FROM notification_deliveries e WHERE e.task_seq = d.task_seq AND e.url = d.url AND e.seq < d.seq AND e.state = 'pending')`,
  releaseClaim: "UPDATE notification_deliveries SET next_attempt_at = $3 WHERE seq = $1 AND state = 'pending' AND next_attempt_at = $2",
  insertAttempt: 'INSERT INTO notification_attempts (delivery_seq, at, status_code, latency_ms, error) VALUES ($1, $2, $3, $4, $5)',
  attemptsOf: 'SELECT * FROM notification_attempts WHERE delivery_seq = $1 ORDER BY seq',
  // Unconditional: an attempt that went out while the delivery was being killed (a 410 elsewhere) still arrived.
  saveDelivered: `
    UPDATE notification_deliveries SET state = 'delivered', round_attempts = $2, next_attempt_at = NULL, dead_reason = NULL, delivered_at = $3, updated_at = $3
    WHERE seq = $1`,
  saveRetry: "UPDATE notification_deliveries SET round_attempts = $2, next_attempt_at = $3, updated_at = $4 WHERE seq = $1 AND state = 'pending'",
  saveDead: `
    UPDATE notification_deliveries SET state = 'failed', round_attempts = $2, next_attempt_at = NULL, dead_reason = $3, updated_at = $4
    WHERE seq = $1 AND state = 'pending'`,
  killPendingForUrl: `
    UPDATE notification_deliveries SET state = 'failed', next_attempt_at = NULL, dead_reason = 'url_gone', updated_at = $2
    WHERE url = $1 AND state = 'pending'`,
  replay: `
    UPDATE notification_deliveries AS d SET state = 'pending', round_attempts = 0, dead_reason = NULL, updated_at = $2::text,
      next_attempt_at = CASE WHEN EXISTS (
        SELECT 1 FROM notification_deliveries e WHERE e.task_seq = d.task_seq AND e.url = d.url AND e.seq < d.seq AND e.state = 'pending') THEN NULL ELSE $2::text END
    WHERE d.seq = $1 AND d.state <> 'pending'`,
  failedInRange: `
    SELECT d.*, ${SUPERSEDED} AS superseded FROM notification_deliveries d
    WHERE d.state = 'failed' AND d.created_at >= $1 AND d.created_at < $2 ORDER BY d.seq`,
  failedOfCallerInRange: `
    SELECT d.*, ${SUPERSEDED} AS superseded FROM notification_deliveries d
    WHERE d.caller = $3 AND d.state = 'failed' AND d.created_at >= $1 AND d.created_at < $2 ORDER BY d.seq`,
  isGone: 'SELECT url FROM notification_gone_urls WHERE url = $1',
  // SQLite's INSERT OR REPLACE: the newest 410 is the one kept.
  markGone: 'INSERT INTO notification_gone_urls (url, at) VALUES ($1, $2) ON CONFLICT (url) DO UPDATE SET at = EXCLUDED.at',
  clearGone: 'DELETE FROM notification_gone_urls WHERE url = $1',
  listAll: `${LISTED} WHERE d.seq < $1 ORDER BY d.seq DESC LIMIT $2`,
  listByState: `${LISTED} WHERE d.state = $1 AND d.seq < $2 ORDER BY d.seq DESC LIMIT $3`,
  // A task has a handful of deliveries: the state filter is applied to those.
  listByTask: `${LISTED} WHERE d.task_seq = $1 AND ($2::text IS NULL OR d.state = $2::text) AND d.seq < $3 ORDER BY d.seq DESC LIMIT $4`,
  listOfCaller: `${LISTED} WHERE d.caller = $1 AND d.seq < $2 ORDER BY d.seq DESC LIMIT $3`,
  listOfCallerByState: `${LISTED} WHERE d.caller = $1 AND d.state = $2 AND d.seq < $3 ORDER BY d.seq DESC LIMIT $4`
} as const

const { rows, changes } = namedStatements('deliveries', statements)

/** The outbox's insert, for the task storage to run on its status change's client. */
export async function insertMessage (db: Queryable, m: NewMessage): Promise<void> {
  await changes(db, 'insertMessage', [m.id, m.task_seq, m.caller, m.url, m.status, m.payload, m.created_at])
}

export class PostgresDeliveriesRepository {
  /** The row, locked until the transaction ends; only inside one. */
  async bySeqForUpdate (db: Queryable, seq: number): Promise<DeliveryRow | undefined> { return (await rows<DeliveryRow>(db, 'bySeqForUpdate', [seq]))[0] }
  async byId (db: Queryable, id: string): Promise<DeliveryListRow | undefined> { return (await rows<DeliveryListRow>(db, 'byId', [id]))[0] }
  /** Up to `limit` ready deliveries due at `now`, soonest first, moved to `until` (the lease's end): the rows as claimed. */
  claimDue (db: Queryable, now: string, limit: number, until: string): Promise<DeliveryRow[]> { return rows<DeliveryRow>(db, 'claimDue', [now, limit, until]) }
  async nextDueAt (db: Queryable): Promise<string | undefined> { return (await rows<{ at: string }>(db, 'nextDue', []))[0]?.at }
  async superseded (db: Queryable, seq: number): Promise<boolean> { return (await rows<{ superseded: boolean }>(db, 'superseded', [seq]))[0]?.superseded === true }
  async releaseNext (db: Queryable, taskSeq: number, url: string, at: string): Promise<void> { await changes(db, 'releaseNext', [taskSeq, url, at]) }
  releaseOrphans (db: Queryable, at: string): Promise<number> { return changes(db, 'releaseOrphans', [at]) }
  async releaseClaim (db: Queryable, seq: number, until: string, at: string): Promise<void> { await changes(db, 'releaseClaim', [seq, until, at]) }

  async insertAttempt (db: Queryable, a: NewAttempt): Promise<void> {
    await changes(db, 'insertAttempt', [a.delivery_seq, a.at, a.status_code, a.latency_ms, a.error])
  }

  attemptsOf (db: Queryable, deliverySeq: number): Promise<AttemptRow[]> { return rows<AttemptRow>(db, 'attemptsOf', [deliverySeq]) }
  async saveDelivered (db: Queryable, seq: number, roundAttempts: number, at: string): Promise<void> { await changes(db, 'saveDelivered', [seq, roundAttempts, at]) }
  async saveRetry (db: Queryable, seq: number, roundAttempts: number, nextAttemptAt: string, at: string): Promise<void> {
    await changes(db, 'saveRetry', [seq, roundAttempts, nextAttemptAt, at])
  }

  async saveDead (db: Queryable, seq: number, roundAttempts: number, reason: DeadReason, at: string): Promise<void> {
    await changes(db, 'saveDead', [seq, roundAttempts, reason, at])
  }

  killPendingForUrl (db: Queryable, url: string, at: string): Promise<number> { return changes(db, 'killPendingForUrl', [url, at]) }
  async replay (db: Queryable, seq: number, at: string): Promise<boolean> { return await changes(db, 'replay', [seq, at]) === 1 }
  failedInRange (db: Queryable, since: string, until: string, caller?: string): Promise<RangeRow[]> {
    return caller === undefined ? rows<RangeRow>(db, 'failedInRange', [since, until]) : rows<RangeRow>(db, 'failedOfCallerInRange', [since, until, caller])
  }

  async isGone (db: Queryable, url: string): Promise<boolean> { return (await rows(db, 'isGone', [url])).length > 0 }
  async markGone (db: Queryable, url: string, at: string): Promise<void> { await changes(db, 'markGone', [url, at]) }
  async clearGone (db: Queryable, url: string): Promise<void> { await changes(db, 'clearGone', [url]) }

  /** Newest first, as ../deliveries-repository.ts lists. */
  list (db: Queryable, { state, taskSeq, caller, beforeSeq = Number.MAX_SAFE_INTEGER, limit }: DeliveryFilter): Promise<DeliveryListRow[]> {
    if (taskSeq !== undefined) return rows<DeliveryListRow>(db, 'listByTask', [taskSeq, state ?? null, beforeSeq, limit])
    if (caller !== undefined) {
      return state !== undefined ? rows<DeliveryListRow>(db, 'listOfCallerByState', [caller, state, beforeSeq, limit]) : rows<DeliveryListRow>(db, 'listOfCaller', [caller, beforeSeq, limit])
    }
    if (state !== undefined) return rows<DeliveryListRow>(db, 'listByState', [state, beforeSeq, limit])
    return rows<DeliveryListRow>(db, 'listAll', [beforeSeq, limit])
  }
}
