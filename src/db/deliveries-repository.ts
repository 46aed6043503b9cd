// All SQL on notification deliveries, their attempts and gone URLs: statements prepared once.
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

export type DeliveryFilter = { state?: DeliveryState | undefined, taskSeq?: number | undefined, caller?: string | undefined, beforeSeq?: number | undefined, limit: number }

// In-order delivery: a delivery created while an earlier one of the same task to the same URL is pending is queued
// (next_attempt_at NULL) and released when that one is delivered or dead. The NOT EXISTS also holds back a pending
// delivery behind an earlier one an admin replayed.
const READY = `d.state = 'pending' AND d.next_attempt_at IS NOT NULL AND NOT EXISTS (
  SELECT 1 FROM notification_deliveries e WHERE e.task_seq = d.task_seq AND e.url = d.url AND e.seq < d.seq AND e.state = 'pending')`
// A later delivery of the same task to the same URL went out: sending this one now would go back in time.
const SUPERSEDED = `EXISTS (
  SELECT 1 FROM notification_deliveries l WHERE l.task_seq = d.task_seq AND l.url = d.url AND l.seq > d.seq AND l.state = 'delivered')`

export class DeliveriesRepository {
  readonly #insert
  readonly #bySeq
  readonly #byId
  readonly #ready
  readonly #superseded
  readonly #pendingBefore
  readonly #releaseNext
  readonly #releaseOrphans
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
    this.#bySeq = db.prepare<[number], DeliveryRow>('SELECT * FROM notification_deliveries WHERE seq = ?')
    this.#byId = db.prepare<[string], DeliveryListRow>(`
      SELECT d.*, t.id AS task_public_id FROM notification_deliveries d JOIN tasks t ON t.seq = d.task_seq WHERE d.id = ?`)
    this.#ready = db.prepare<[number], DeliveryRow>(`SELECT d.* FROM notification_deliveries d WHERE ${READY} ORDER BY d.next_attempt_at, d.seq LIMIT ?`)
    this.#superseded = db.prepare<[number], { superseded: 0 | 1 }>(`SELECT ${SUPERSEDED} AS superseded FROM notification_deliveries d WHERE d.seq = ?`)
    this.#pendingBefore = db.prepare<{ task_seq: number, url: string, seq: number }, { seq: number }>(`
      SELECT seq FROM notification_deliveries WHERE task_seq = @task_seq AND url = @url AND seq < @seq AND state = 'pending' LIMIT 1`)
    this.#releaseNext = db.prepare<{ task_seq: number, url: string, at: string }>(`
      UPDATE notification_deliveries SET next_attempt_at = @at, updated_at = @at
      WHERE seq = (SELECT seq FROM notification_deliveries WHERE task_seq = @task_seq AND url = @url AND state = 'pending' ORDER BY seq LIMIT 1)
        AND next_attempt_at IS NULL`)
    this.#releaseOrphans = db.prepare<{ at: string }>(`
      UPDATE notification_deliveries AS d SET next_attempt_at = @at, updated_at = @at
      WHERE d.state = 'pending' AND d.next_attempt_at IS NULL AND NOT EXISTS (
        SELECT 1 FROM notification_deliveries e WHERE e.task_seq = d.task_seq AND e.url = d.url AND e.seq < d.seq AND e.state = 'pending')`)
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
    this.#replay = db.prepare<{ seq: number, next_attempt_at: string | null, at: string }>(`
      UPDATE notification_deliveries SET state = 'pending', round_attempts = 0, next_attempt_at = @next_attempt_at, dead_reason = NULL, updated_at = @at
      WHERE seq = @seq AND state <> 'pending'`)
    this.#failedInRange = db.prepare<{ since: string, until: string }, DeliveryRow & { superseded: 0 | 1 }>(`
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
    this.#failedOfCallerInRange = db.prepare<{ caller: string, since: string, until: string }, DeliveryRow & { superseded: 0 | 1 }>(`
      SELECT d.*, ${SUPERSEDED} AS superseded FROM notification_deliveries d
      WHERE d.caller = @caller AND d.state = 'failed' AND d.created_at >= @since AND d.created_at < @until ORDER BY d.seq`)
  }

  /** Runs fn in one transaction (synchronous: no await inside). */
  transaction<T> (fn: () => T): T {
    return this.db.transaction(fn)()
  }

  insert (delivery: NewDelivery): void { this.#insert.run(delivery) }
  bySeq (seq: number): DeliveryRow | undefined { return this.#bySeq.get(seq) }
  byId (id: string): DeliveryListRow | undefined { return this.#byId.get(id) }

  /** Pending deliveries not waiting behind an earlier one, soonest first (due or not). */
  ready (limit: number): DeliveryRow[] { return this.#ready.all(limit) }
  superseded (seq: number): boolean { return this.#superseded.get(seq)?.superseded === 1 }

  /** Whether a delivery of this task to this URL older than `seq` is still pending (a newer one must queue behind it). */
  pendingBefore (taskSeq: number, url: string, seq: number = Number.MAX_SAFE_INTEGER): boolean {
    return this.#pendingBefore.get({ task_seq: taskSeq, url, seq }) !== undefined
  }

  /** After a delivery left pending: the next queued one of the same task and URL is due now. */
  releaseNext (taskSeq: number, url: string, at: string): void { this.#releaseNext.run({ task_seq: taskSeq, url, at }) }

  /** Queued deliveries with nothing pending before them (a safety net at start); returns how many. */
  releaseOrphans (at: string): number { return this.#releaseOrphans.run({ at }).changes }

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

  /** Makes a delivered or failed delivery pending again with a fresh schedule (queued: behind an earlier pending one). */
  replay (seq: number, at: string, queued: boolean): boolean { return this.#replay.run({ seq, next_attempt_at: queued ? null : at, at }).changes === 1 }
  /** Failed deliveries created in [since, until), oldest first; only `caller`'s when given. */
  failedInRange (since: string, until: string, caller?: string): Array<DeliveryRow & { superseded: 0 | 1 }> {
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
