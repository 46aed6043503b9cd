// Where notification deliveries are kept, as the outbox, its worker and the routes see them: one asynchronous
// interface, one implementation per engine (src/db/sqlite-deliveries-storage.ts, src/db/postgres/deliveries-storage.ts).
// The rows themselves are written with each status change, by the task storages (see StatusChangeWriter).
import type { AttemptRow, DeadReason, DeliveryFilter, DeliveryListRow, DeliveryRow, NewAttempt } from '../../db/deliveries-repository.js'

/** What one attempt's answer means for its delivery; saved with the attempt, atomically. */
export type AttemptOutcome =
  | { kind: 'delivered' }
  /** 410: dead, its URL marked gone and every pending delivery to it killed. */
  | { kind: 'gone' }
  | { kind: 'dead', reason: 'attempts_exhausted' | 'notify_url_not_allowed' }
  | { kind: 'retry', nextAttemptAt: string }

export interface DeliveriesStorage {
  byId: (id: string) => Promise<DeliveryListRow | undefined>
  attemptsOf: (deliverySeq: number) => Promise<AttemptRow[]>
  /** Newest first. A task's (whose visibility the caller checked), else `caller`'s when given, else everyone's. */
  list: (filter: DeliveryFilter) => Promise<DeliveryListRow[]>
  /**
   * Work done once whichever replica does it: up to `limit` deliveries due at `now` with nothing earlier pending for
   * their task and URL, soonest due first, claimed by moving next_attempt_at to now + leaseMs in the statement that
   * picks them. Another claim skips them until then; the attempt's outcome sets the real schedule, and a claimer that
   * died mid-attempt gives them back when the lease runs out. The rows as claimed.
   */
  claimDue: (now: string, limit: number, leaseMs: number) => Promise<DeliveryRow[]>
  /** When the soonest pending delivery not queued behind another is due (a claimed one: its lease's end), if any. */
  nextDueAt: () => Promise<string | undefined>
  /** An attempt abandoned (shutdown) before it was answered: the claim of the row as claimed ends at `at` instead. */
  releaseClaim: (row: DeliveryRow, at: string) => Promise<void>
  /** Whether a later delivery of the same task to the same URL was delivered (sending this one would go back in time). */
  superseded: (seq: number) => Promise<boolean>
  isGone: (url: string) => Promise<boolean>
  /** Queued deliveries with nothing pending before them are due at `at` (a safety net at start); returns how many. */
  releaseOrphans: (at: string) => Promise<number>
  /**
   * The attempt and its outcome, in one transaction; a delivery leaving pending releases the next queued one of its
   * task and URL. False, writing nothing, when the delivery is gone (retention purged its task meanwhile).
   */
  recordAttempt: (row: DeliveryRow, round: number, attempt: NewAttempt, outcome: AttemptOutcome) => Promise<boolean>
  /** Dead without an attempt (its URL is gone, or a later message superseded it); the next queued one goes ahead. */
  kill: (row: DeliveryRow, reason: Extract<DeadReason, 'url_gone' | 'superseded'>, at: string) => Promise<void>
  /**
   * A delivered or failed delivery pending again with a fresh schedule and the same webhook-id (queued behind an
   * earlier pending one of its task and URL), and its URL no longer gone; false when it was pending already.
   */
  replay: (seq: number, url: string, at: string) => Promise<boolean>
  /**
   * replay for every failed delivery created in [since, until), `caller`'s only when given, oldest first, in one
   * transaction; those a later delivered one superseded are skipped.
   */
  replayRange: (since: string, until: string, caller: string | undefined, at: string) => Promise<{ retried: number, skipped: number }>
}
