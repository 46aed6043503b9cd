// All SQL on notification deliveries, their attempts and gone URLs, on SQLite: statements prepared once. The row types
// are both engines' (the PostgreSQL repository returns the same rows).
import type { Db } from './database.js'

export const DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const
export type DeliveryState = typeof DELIVERY_STATES[number]

export type DeadReason = 'attempts_exhausted' | 'gone' | 'url_gone' | 'notify_url_not_allowed' | 'superseded'

export type DeliveryRow = {
  seq: number
  id: string
  task_seq: number
  /** The caller whose task it is about (copied from the task). */
  caller: string
  url: string
  status: string
  payload: string
  state: DeliveryState
  round_attempts: number
  next_attempt_at: string | null
  dead_reason: DeadReason | null
  created_at: string
  updated_at: string
  delivered_at: string | null
}

export type NewDelivery = Pick<DeliveryRow, 'id' | 'task_seq' | 'caller' | 'url' | 'status' | 'payload' | 'state' | 'next_attempt_at' | 'dead_reason' | 'created_at'>

/**
 * A message the outbox asks to write with a status change. Its state is decided by the insert, in SQL, from what the
 * change's transaction sees: a URL that answered 410 gets it dead (url_gone); behind a pending earlier message of the
 * task to the URL it is queued (next_attempt_at NULL); otherwise it is due at created_at.
 */
export type NewMessage = Pick<DeliveryRow, 'id' | 'task_seq' | 'caller' | 'url' | 'status' | 'payload' | 'created_at'>

export type AttemptRow = {
  seq: number
  delivery_seq: number
  at: string
  status_code: number | null
  latency_ms: number
  error: string | null
}

export type NewAttempt = Omit<AttemptRow, 'seq'>

/** A delivery with the public id of its task, for listings. */
export type DeliveryListRow = DeliveryRow & { task_public_id: string }

/** A failed delivery of a replayed range, and whether a later delivered one superseded it. */
export type RangeRow = DeliveryRow & { superseded: 0 | 1 | boolean }

export type DeliveryFilter = { state?: DeliveryState | undefined, taskSeq?: number | undefined, caller?: string | undefined, beforeSeq?: number | undefined, limit: number }

// In-order delivery: a delivery created while an earlier one of the same task to the same URL is pending is queued
// (next_attempt_at NULL) and released when that one is delivered or dead. The NOT EXISTS also holds back a pending
// delivery behind an earlier one an admin replayed.
const READY = `d.state = 'pending' AND d.next_attempt_at IS NOT NULL AND NOT EXISTS (
  SELECT 1 FROM notification_deliveries e WHERE e.task_seq = d.task_seq AND e.url = d.url AND e.seq < d.seq AND e.state = 'pending')`
// A later delivery of the same task to the same URL went out: sending this one now would go back in time.
const SUPERSEDED = `EXISTS (
  SELECT 1 FROM notification_deliveries l WHERE l.task_seq = d.task_seq AND l.url = d.url AND l.seq > d.seq AND l.state = 'delivered')`

// The insert of a NewMessage (see there): one statement, so the decision and the row are one atomic step.
const INSERT_MESSAGE = `
  WITH m AS (SELECT
    EXISTS (SELECT 1 FROM notification_gone_urls WHERE url = @url) AS gone,
    EXISTS (SELECT 1 FROM notification_deliveries WHERE task_seq = @task_seq AND url = @url AND state = 'pending') AS queued)
  INSERT INTO notification_deliveries (id, task_seq, caller, url, status, payload, state, next_attempt_at, dead_reason, created_at, updated_at)
  SELECT @id, @task_seq, @caller, @url, @status, @payload, CASE WHEN gone THEN 'failed' ELSE 'pending' END,
    CASE WHEN gone OR queued THEN NULL ELSE @created_at END, CASE WHEN gone THEN 'url_gone' END, @created_at, @created_at
  FROM m`

/** The outbox's insert, prepared once on db, for the task storage to run inside a status change's transaction. */
export function messageInserter (db: Db): (message: NewMessage) => void {
  const insert = db.prepare<NewMessage>(INSERT_MESSAGE)
  return (message) => { insert.run(message) }
}

export class DeliveriesRepository {
  readonly #insert
  readonly #insertMessage
  readonly #bySeq
  readonly #byId
  readonly #claimDue
  readonly #nextDue
  readonly #superseded
  readonly #releaseNext
  readonly #releaseOrphans
  readonly #releaseClaim
  readonly #insertAttempt
  readonly #attemptsOf
  readonly #saveDelivered
  readonly #saveRetry
  readonly #saveDead
  readonly #killPendingForUrl
  readonly #replay
  readonly #failedInRange
  readonly #isGone
  readonly #markGone
  readonly #clearGone
  readonly #listAll
  readonly #listByState
  readonly #listByTask
  readonly #listOfCaller
  readonly #listOfCallerByState
  readonly #failedOfCallerInRange

  constructor (readonly db: Db) {
    this.#insert = db.prepare<NewDelivery>(`
      INSERT INTO notification_deliveries (id, task_seq, caller, url, status, payload, state, next_attempt_at, dead_reason, created_at, updated_at)
      VALUES (@id, @task_seq, @caller, @url, @status, @payload, @state, @next_attempt_at, @dead_reason, @created_at, @created_at)`)
    this.#insertMessage = messageInserter(db)
    this.#bySeq = db.prepare<[number], DeliveryRow>('SELECT * FROM notification_deliveries WHERE seq = ?')
    this.#byId = db.prepare<[string], DeliveryListRow>(`
      SELECT d.*, t.id AS task_public_id FROM notification_deliveries d JOIN tasks t ON t.seq = d.task_seq WHERE d.id = ?`)
    // One process claims on the file (no replicas share SQLite): the pick and the move are one statement anyway.
    this.#claimDue = db.prepare<{ now: string, limit: number, until: string }, DeliveryRow>(`
      UPDATE notification_deliveries SET next_attempt_at = @until
      WHERE seq IN (SELECT d.seq FROM notification_deliveries d WHERE ${READY} AND d.next_attempt_at <= @now ORDER BY d.next_attempt_at, d.seq LIMIT @limit)
      RETURNING *`)
    this.#nextDue = db.prepare<[], { at: string }>(`SELECT d.next_attempt_at AS at FROM notification_deliveries d WHERE ${READY} ORDER BY d.next_attempt_at LIMIT 1`)
    this.#superseded = db.prepare<[number], { superseded: 0 | 1 }>(`SELECT ${SUPERSEDED} AS superseded FROM notification_deliveries d WHERE d.seq = ?`)
    this.#releaseNext = db.prepare<{ task_seq: number, url: string, at: string }>(`
      UPDATE notification_deliveries SET next_attempt_at = @at, updated_at = @at
      WHERE seq = (SELECT seq FROM notification_deliveries WHERE task_seq = @task_seq AND url = @url AND state = 'pending' ORDER BY seq LIMIT 1)
        AND next_attempt_at IS NULL`)
    this.#releaseOrphans = db.prepare<{ at: string }>(`
      UPDATE notification_deliveries AS d SET next_attempt_at = @at, updated_at = @at
      WHERE d.state = 'pending' AND d.next_attempt_at IS NULL AND NOT EXISTS (
        SELECT 1 FROM notification_deliveries e WHERE e.task_seq = d.task_seq AND e.url = d.url AND e.seq < d.seq AND e.state = 'pending')`)
    this.#releaseClaim = db.prepare<{ seq: number, until: string, at: string }>(`
      UPDATE notification_deliveries SET next_attempt_at = @at WHERE seq = @seq AND state = 'pending' AND next_attempt_at = @until`)
    this.#insertAttempt = db.prepare<NewAttempt>(`
      INSERT INTO notification_attempts (delivery_seq, at, status_code, latency_ms, error) VALUES (@delivery_seq, @at, @status_code, @latency_ms, @error)`)
    this.#attemptsOf = db.prepare<[number], AttemptRow>('SELECT * FROM notification_attempts WHERE delivery_seq = ? ORDER BY seq')
    // Unconditional: an attempt that went out while the delivery was being killed (a 410 elsewhere) still arrived.
    this.#saveDelivered = db.prepare<{ seq: number, round_attempts: number, at: string }>(`
      UPDATE notification_deliveries SET state = 'delivered', round_attempts = @round_attempts, next_attempt_at = NULL, dead_reason = NULL,
        delivered_at = @at, updated_at = @at WHERE seq = @seq`)
    this.#saveRetry = db.prepare<{ seq: number, round_attempts: number, next_attempt_at: string, at: string }>(`
      UPDATE notification_deliveries SET round_attempts = @round_attempts, next_attempt_at = @next_attempt_at, updated_at = @at
      WHERE seq = @seq AND state = 'pending'`)
    this.#saveDead = db.prepare<{ seq: number, round_attempts: number, dead_reason: DeadReason, at: string }>(`
      UPDATE notification_deliveries SET state = 'failed', round_attempts = @round_attempts, next_attempt_at = NULL, dead_reason = @dead_reason,
        updated_at = @at WHERE seq = @seq AND state = 'pending'`)
    this.#killPendingForUrl = db.prepare<{ url: string, at: string }>(`
      UPDATE notification_deliveries SET state = 'failed', next_attempt_at = NULL, dead_reason = 'url_gone', updated_at = @at
      WHERE url = @url AND state = 'pending'`)
    // Queued (next_attempt_at NULL) behind an earlier pending delivery of the task to the URL, else due now.
    this.#replay = db.prepare<{ seq: number, at: string }>(`
      UPDATE notification_deliveries AS d SET state = 'pending', round_attempts = 0, dead_reason = NULL, updated_at = @at,
        next_attempt_at = CASE WHEN EXISTS (
          SELECT 1 FROM notification_deliveries e WHERE e.task_seq = d.task_seq AND e.url = d.url AND e.seq < d.seq AND e.state = 'pending') THEN NULL ELSE @at END
      WHERE d.seq = @seq AND d.state <> 'pending'`)
    this.#failedInRange = db.prepare<{ since: string, until: string }, RangeRow>(`
      SELECT d.*, ${SUPERSEDED} AS superseded FROM notification_deliveries d
      WHERE d.state = 'failed' AND d.created_at >= @since AND d.created_at < @until ORDER BY d.seq`)
    this.#isGone = db.prepare<[string], { url: string }>('SELECT url FROM notification_gone_urls WHERE url = ?')
    this.#markGone = db.prepare<{ url: string, at: string }>('INSERT OR REPLACE INTO notification_gone_urls (url, at) VALUES (@url, @at)')
    this.#clearGone = db.prepare<[string]>('DELETE FROM notification_gone_urls WHERE url = ?')
    const listed = 'SELECT d.*, t.id AS task_public_id FROM notification_deliveries d JOIN tasks t ON t.seq = d.task_seq'
    this.#listAll = db.prepare<{ before: number, limit: number }, DeliveryListRow>(`${listed} WHERE d.seq < @before ORDER BY d.seq DESC LIMIT @limit`)
    this.#listByState = db.prepare<{ state: string, before: number, limit: number }, DeliveryListRow>(
      `${listed} WHERE d.state = @state AND d.seq < @before ORDER BY d.seq DESC LIMIT @limit`)
    // A task has a handful of deliveries: the state filter is applied to those.
    this.#listByTask = db.prepare<{ task_seq: number, state: string | null, before: number, limit: number }, DeliveryListRow>(
      `${listed} WHERE d.task_seq = @task_seq AND (@state IS NULL OR d.state = @state) AND d.seq < @before ORDER BY d.seq DESC LIMIT @limit`)
    this.#listOfCaller = db.prepare<{ caller: string, before: number, limit: number }, DeliveryListRow>(
      `${listed} WHERE d.caller = @caller AND d.seq < @before ORDER BY d.seq DESC LIMIT @limit`)
    this.#listOfCallerByState = db.prepare<{ caller: string, state: string, before: number, limit: number }, DeliveryListRow>(
      `${listed} WHERE d.caller = @caller AND d.state = @state AND d.seq < @before ORDER BY d.seq DESC LIMIT @limit`)
    this.#failedOfCallerInRange = db.prepare<{ caller: string, since: string, until: string }, RangeRow>(`
      SELECT d.*, ${SUPERSEDED} AS superseded FROM notification_deliveries d
      WHERE d.caller = @caller AND d.state = 'failed' AND d.created_at >= @since AND d.created_at < @until ORDER BY d.seq`)
  }

  /** Runs fn in one transaction (synchronous: no await inside). */
  transaction<T> (fn: () => T): T {
    return this.db.transaction(fn)()
  }

  /** A row exactly as given, its state and schedule included (tests and fixtures; the outbox writes NewMessages). */
  insert (delivery: NewDelivery): void { this.#insert.run(delivery) }
  insertMessage (message: NewMessage): void { this.#insertMessage(message) }
  bySeq (seq: number): DeliveryRow | undefined { return this.#bySeq.get(seq) }
  byId (id: string): DeliveryListRow | undefined { return this.#byId.get(id) }

  /** Up to `limit` ready deliveries due at `now`, soonest first, moved to `until` (the lease's end): the rows as claimed. */
  claimDue (now: string, limit: number, until: string): DeliveryRow[] {
    return this.#claimDue.all({ now, limit, until }).sort(bySeq)
  }

  /** When the soonest ready delivery is due (claimed ones: when their lease ends), or undefined when none is pending. */
  nextDueAt (): string | undefined { return this.#nextDue.get()?.at }
  superseded (seq: number): boolean { return this.#superseded.get(seq)?.superseded === 1 }

  /** After a delivery left pending: the next queued one of the same task and URL is due now. */
  releaseNext (taskSeq: number, url: string, at: string): void { this.#releaseNext.run({ task_seq: taskSeq, url, at }) }

  /** Queued deliveries with nothing pending before them (a safety net at start); returns how many. */
  releaseOrphans (at: string): number { return this.#releaseOrphans.run({ at }).changes }

  /** An abandoned claim (the lease ending at `until`) is due again at `at`, unless someone else moved it meanwhile. */
  releaseClaim (seq: number, until: string, at: string): void { this.#releaseClaim.run({ seq, until, at }) }

  insertAttempt (attempt: NewAttempt): void { this.#insertAttempt.run(attempt) }
  attemptsOf (deliverySeq: number): AttemptRow[] { return this.#attemptsOf.all(deliverySeq) }

  saveDelivered (seq: number, roundAttempts: number, at: string): void { this.#saveDelivered.run({ seq, round_attempts: roundAttempts, at }) }
  saveRetry (seq: number, roundAttempts: number, nextAttemptAt: string, at: string): void {
    this.#saveRetry.run({ seq, round_attempts: roundAttempts, next_attempt_at: nextAttemptAt, at })
  }

  saveDead (seq: number, roundAttempts: number, reason: DeadReason, at: string): void {
    this.#saveDead.run({ seq, round_attempts: roundAttempts, dead_reason: reason, at })
  }

  /** Kills every pending delivery to a URL that answered 410; returns how many. */
  killPendingForUrl (url: string, at: string): number { return this.#killPendingForUrl.run({ url, at }).changes }

  /** Makes a delivered or failed delivery pending again with a fresh schedule (queued behind an earlier pending one). */
  replay (seq: number, at: string): boolean { return this.#replay.run({ seq, at }).changes === 1 }
  /** Failed deliveries created in [since, until), oldest first; only `caller`'s when given. */
  failedInRange (since: string, until: string, caller?: string): RangeRow[] {
    return caller === undefined ? this.#failedInRange.all({ since, until }) : this.#failedOfCallerInRange.all({ caller, since, until })
  }

  isGone (url: string): boolean { return this.#isGone.get(url) !== undefined }
  markGone (url: string, at: string): void { this.#markGone.run({ url, at }) }
  clearGone (url: string): void { this.#clearGone.run(url) }

  /** Newest first. A task's (whose visibility the caller checked), else `caller`'s when given, else everyone's. */
  list ({ state, taskSeq, caller, beforeSeq = Number.MAX_SAFE_INTEGER, limit }: DeliveryFilter): DeliveryListRow[] {
    if (taskSeq !== undefined) return this.#listByTask.all({ task_seq: taskSeq, state: state ?? null, before: beforeSeq, limit })
    if (caller !== undefined) {
      return state !== undefined ? this.#listOfCallerByState.all({ caller, state, before: beforeSeq, limit }) : this.#listOfCaller.all({ caller, before: beforeSeq, limit })
    }
    if (state !== undefined) return this.#listByState.all({ state, before: beforeSeq, limit })
    return this.#listAll.all({ before: beforeSeq, limit })
  }
}

const bySeq = (a: DeliveryRow, b: DeliveryRow): number => a.seq - b.seq
