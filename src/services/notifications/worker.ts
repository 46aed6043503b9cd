// The delivery loop: sends due deliveries (in order per task and URL), records every attempt, schedules retries.
import type { DeliveriesRepository, DeliveryRow } from '../../db/deliveries-repository.js'
import type { Log } from '../task-store.js'
import { parseRetryAfter } from '../../lib/retry-after.js'
import { retryDelay } from './schedule.js'
import type { AttemptResult, NotificationSender } from './sender.js'
import type { Signer } from './signing.js'
import { assessNotifyUrl } from './url-guard.js'

// Parallel attempts: enough for many slow consumers at once, few enough to stay gentle on the event loop and sockets.
export const MAX_IN_FLIGHT = 32
// setTimeout's own ceiling (about 24.8 days); longer waits are re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1

export type WorkerOptions = {
  repo: DeliveriesRepository
  sender: NotificationSender
  /** The signer of one delivery's message (which secrets depends on where it goes), asked at each attempt. */
  signerFor: (delivery: DeliveryRow) => Promise<Signer>
  /** Pauses after the 1st, 2nd, ... failed attempt, in ms; after the last one a delivery is dead. */
  scheduleMs: number[]
  allowPrivate: boolean
  log: Log
}

type InFlight = { controller: AbortController, done: Promise<void> }

export class DeliveryWorker {
  readonly #options: WorkerOptions
  readonly #inFlight = new Map<number, InFlight>()
  // task_seq + url pairs with an attempt under way: one message at a time per pair keeps them in order.
  readonly #busyPairs = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #wakeQueued = false
  #started = false
  #stopping: Promise<void> | undefined

  constructor (options: WorkerOptions) {
    this.#options = options
  }

  get inFlight (): number { return this.#inFlight.size }

  start (): void {
    const released = this.#options.repo.releaseOrphans(new Date().toISOString())
    if (released > 0) this.#options.log.warn({ released }, 'released queued notifications that had nothing pending before them')
    this.#started = true
    this.wake()
  }

  /** Looks for due deliveries soon (coalesced: many wakes in one tick cost one query). */
  wake (): void {
    if (!this.#started || this.#stopping || this.#wakeQueued) return
    this.#wakeQueued = true
    setImmediate(() => {
      this.#wakeQueued = false
      this.#run()
    })
  }

  /**
   * Starts no more attempts; lets those under way finish for up to graceMs, then abandons them (they stay
   * pending, and are sent again with the same webhook-id after a restart).
   */
  stop (graceMs: number): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#timer)
      const pending = [...this.#inFlight.values()]
      if (pending.length === 0) return
      const abandon = setTimeout(() => { for (const { controller } of pending) controller.abort() }, graceMs)
      await Promise.all(pending.map(({ done }) => done))
      clearTimeout(abandon)
    })()
    return this.#stopping
  }

  #run (): void {
    if (this.#stopping) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    const now = Date.now()
    let nextDue: number | undefined
    for (const row of this.#options.repo.ready(this.#inFlight.size + MAX_IN_FLIGHT)) {
      if (this.#inFlight.has(row.seq) || this.#busyPairs.has(pairOf(row))) continue
      const due = Date.parse(row.next_attempt_at ?? '')
      if (due > now) {
        nextDue = due // rows come soonest first
        break
      }
      if (this.#inFlight.size >= MAX_IN_FLIGHT) break // a finishing attempt wakes the loop again
      this.#begin(row)
    }
    if (nextDue !== undefined) {
      this.#timer = setTimeout(() => this.wake(), Math.min(nextDue - now, MAX_TIMER_MS))
      this.#timer.unref()
    }
  }

  #begin (row: DeliveryRow): void {
    const controller = new AbortController()
    const pair = pairOf(row)
    this.#busyPairs.add(pair)
    const done = this.#deliver(row, controller.signal)
      .catch((err: unknown) => { this.#options.log.error({ err, delivery: row.id }, 'notification attempt failed unexpectedly') })
      .finally(() => {
        this.#inFlight.delete(row.seq)
        this.#busyPairs.delete(pair)
        this.wake()
      })
    this.#inFlight.set(row.seq, { controller, done })
  }

  async #deliver (row: DeliveryRow, shutdown: AbortSignal): Promise<void> {
    const { repo, log } = this.#options
    const round = row.round_attempts + 1
    if (repo.isGone(row.url)) return this.#kill(row, 'url_gone')
    if (repo.superseded(row.seq)) return this.#kill(row, 'superseded')

    // The URL was checked at submit; its host may resolve elsewhere by now.
    const verdict = await assessNotifyUrl(row.url, { allowPrivate: this.#options.allowPrivate })
    let result: AttemptResult
    if (!verdict.ok) {
      result = { statusCode: null, latencyMs: 0, error: verdict.message, retryAfter: undefined, notAllowed: verdict.reason !== 'unresolvable', abandoned: false }
    } else {
      const headers = (await this.#options.signerFor(row)).headers(row.id, new Date(), row.payload)
      result = await this.#options.sender.send(row.url, headers, row.payload, shutdown)
    }
    if (result.abandoned) return

    const at = new Date()
    const outcome = this.#judge(result, round, at.getTime())
    const recorded = repo.transaction(() => {
      // Retention may have purged the task (and so this delivery) while the attempt was under way.
      if (!repo.bySeq(row.seq)) return false
      repo.insertAttempt({ delivery_seq: row.seq, at: at.toISOString(), status_code: result.statusCode, latency_ms: result.latencyMs, error: result.error })
      switch (outcome.kind) {
        case 'delivered':
          repo.saveDelivered(row.seq, round, at.toISOString())
          repo.releaseNext(row.task_seq, row.url, at.toISOString())
          break
        case 'gone':
          repo.saveDead(row.seq, round, 'gone', at.toISOString())
          repo.markGone(row.url, at.toISOString())
          repo.killPendingForUrl(row.url, at.toISOString())
          break
        case 'dead':
          repo.saveDead(row.seq, round, outcome.reason, at.toISOString())
          repo.releaseNext(row.task_seq, row.url, at.toISOString())
          break
        case 'retry':
          repo.saveRetry(row.seq, round, new Date(at.getTime() + outcome.delayMs).toISOString(), at.toISOString())
      }
      return true
    })
    if (!recorded) return
    const context = { delivery: row.id, status_code: result.statusCode, attempt: round }
    if (outcome.kind === 'delivered') log.info(context, 'notification delivered')
    else if (outcome.kind === 'retry') log.info({ ...context, error: result.error, retry_in_ms: outcome.delayMs }, 'notification attempt failed; will retry')
    else log.warn({ ...context, error: result.error, reason: outcome.kind === 'gone' ? 'gone' : outcome.reason }, 'notification is dead')
  }

  /** Dead without an attempt; the next message of the task to the URL goes ahead. */
  #kill (row: DeliveryRow, reason: 'url_gone' | 'superseded'): void {
    const { repo, log } = this.#options
    const at = new Date().toISOString()
    repo.transaction(() => {
      repo.saveDead(row.seq, row.round_attempts, reason, at)
      repo.releaseNext(row.task_seq, row.url, at)
    })
    log.warn({ delivery: row.id, reason }, 'notification is dead')
  }

  #judge (result: AttemptResult, round: number, now: number):
    | { kind: 'delivered' } | { kind: 'gone' } | { kind: 'dead', reason: 'attempts_exhausted' | 'notify_url_not_allowed' } | { kind: 'retry', delayMs: number } {
    const status = result.statusCode
    if (status !== null && status >= 200 && status < 300) return { kind: 'delivered' }
    if (status === 410) return { kind: 'gone' }
    if (result.notAllowed) return { kind: 'dead', reason: 'notify_url_not_allowed' }
    const scheduled = retryDelay(this.#options.scheduleMs, round)
    if (scheduled === null) return { kind: 'dead', reason: 'attempts_exhausted' }
    const asked = status === 429 || status === 503 ? parseRetryAfter(result.retryAfter, now) : null
    return { kind: 'retry', delayMs: asked ?? scheduled }
  }
}

const pairOf = (row: DeliveryRow): string => `${row.task_seq}\n${row.url}`
