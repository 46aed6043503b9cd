// The delivery loop: claims due deliveries (in order per task and URL), sends them, records every attempt, schedules
// retries. Several replicas run one each on a shared database: the claim gives every delivery to one of them at a time.
import type { DeliveryRow } from '../../db/deliveries-repository.js'
import type { AttemptOutcome, DeliveriesStorage } from './deliveries-storage.js'
import type { Log } from '../task-store.js'
import { parseRetryAfter } from '../../lib/retry-after.js'
import { retryDelay } from './schedule.js'
import type { AttemptResult, NotificationSender } from './sender.js'
import type { Signer } from './signing.js'
import { assessNotifyUrl } from './url-guard.js'

// Parallel attempts: enough for many slow consumers at once, few enough to stay gentle on the event loop and sockets.
export const MAX_IN_FLIGHT = 32
// The longest the loop sleeps even when nothing of its own is due: another replica may have written deliveries (its
// own worker sends them, unless it died first) or left claimed ones behind, which this replica hears of no other way.
export const SWEEP_MS = 30_000
// The shortest pause before the next look: a due delivery this look could not take (another replica's transaction
// held its row for a moment) is asked for again after it, not in a loop as fast as the database answers.
const RELOOK_MS = 50

export type WorkerOptions = {
  storage: DeliveriesStorage
  sender: NotificationSender
  /** The signer of one delivery's message (which secrets depends on where it goes), asked at each attempt. */
  signerFor: (delivery: DeliveryRow) => Promise<Signer>
  /** Pauses after the 1st, 2nd, ... failed attempt, in ms; after the last one a delivery is dead. */
  scheduleMs: number[]
  allowPrivate: boolean
  /**
   * How long a claimed delivery is ours: no other claim takes it before then. Longer than an attempt can take (the
   * sender's timeout, plus the URL check, the signing and the save), or a slow attempt would be sent twice.
   */
  leaseMs: number
  log: Log
}

type InFlight = { controller: AbortController, done: Promise<void> }

export class DeliveryWorker {
  readonly #options: WorkerOptions
  readonly #inFlight = new Map<number, InFlight>()
  #timer: NodeJS.Timeout | undefined
  #wakeQueued = false
  // One look (claim, then arm the timer) at a time: a wake during one asks for another after it.
  #looking: Promise<void> | undefined
  #lookAgain = false
  #started = false
  #stopping: Promise<void> | undefined

  constructor (options: WorkerOptions) {
    this.#options = options
  }

  get inFlight (): number { return this.#inFlight.size }

  /** Releases orphaned queued deliveries, then starts the loop; resolves once the first look is under way. */
  async start (): Promise<void> {
    const released = await this.#options.storage.releaseOrphans(new Date().toISOString())
    if (released > 0) this.#options.log.warn({ released }, 'released queued notifications that had nothing pending before them')
    this.#started = true
    this.wake()
  }

  /** Looks for due deliveries soon (coalesced: many wakes while a look is under way cost one more look). */
  wake (): void {
    if (!this.#started || this.#stopping) return
    if (this.#looking) {
      this.#lookAgain = true
      return
    }
    if (this.#wakeQueued) return
    this.#wakeQueued = true
    setImmediate(() => {
      this.#wakeQueued = false
      this.#look()
    })
  }

  /**
   * Starts no more attempts; lets those under way finish for up to graceMs, then abandons them: they stay pending
   * and their claims are given back, so another replica (or this one after a restart) sends them again at once,
   * with the same webhook-id.
   */
  stop (graceMs: number): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#timer)
      // A look under way gives back what it claims once it sees the stop; the database stays open until then.
      await this.#looking
      const pending = [...this.#inFlight.values()]
      if (pending.length === 0) return
      const abandon = setTimeout(() => { for (const { controller } of pending) controller.abort() }, graceMs)
      await Promise.all(pending.map(({ done }) => done))
      clearTimeout(abandon)
    })()
    return this.#stopping
  }

  #look (): void {
    this.#looking = this.#run()
      .catch((err: unknown) => {
        // The database is away for now: the next wake or sweep tries again.
        this.#options.log.error({ err }, 'could not claim due notifications')
        this.#arm(Date.now() + SWEEP_MS)
      })
      .finally(() => {
        this.#looking = undefined
        if (this.#lookAgain) {
          this.#lookAgain = false
          this.wake()
        }
      })
  }

  async #run (): Promise<void> {
    if (this.#stopping) return
    const { storage, leaseMs } = this.#options
    const room = MAX_IN_FLIGHT - this.#inFlight.size
    // At capacity, a finishing attempt wakes the loop again.
    if (room <= 0) return
    for (const row of await storage.claimDue(new Date().toISOString(), room, leaseMs)) {
      if (this.#stopping) {
        await storage.releaseClaim(row, new Date().toISOString())
        continue
      }
      // Its lease ran out under an attempt of ours still under way (slower than the lease allows): that one decides.
      if (!this.#inFlight.has(row.seq)) this.#begin(row)
    }
    const next = await storage.nextDueAt()
    const now = Date.now()
    this.#arm(Math.min(Math.max(next === undefined ? Infinity : Date.parse(next), now + RELOOK_MS), now + SWEEP_MS))
  }

  /** The next look at `at` (ms), in place of the one armed. */
  #arm (at: number): void {
    if (this.#stopping) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.wake(), Math.max(0, at - Date.now()))
    this.#timer.unref()
  }

  #begin (row: DeliveryRow): void {
    const controller = new AbortController()
    const done = this.#deliver(row, controller.signal)
      .catch((err: unknown) => { this.#options.log.error({ err, delivery: row.id }, 'notification attempt failed unexpectedly') })
      .finally(() => {
        this.#inFlight.delete(row.seq)
        this.wake()
      })
    this.#inFlight.set(row.seq, { controller, done })
  }

  async #deliver (row: DeliveryRow, shutdown: AbortSignal): Promise<void> {
    const { storage, log } = this.#options
    const round = row.round_attempts + 1
    if (await storage.isGone(row.url)) return this.#kill(row, 'url_gone')
    if (await storage.superseded(row.seq)) return this.#kill(row, 'superseded')

    // The URL was checked at submit; its host may resolve elsewhere by now.
    const verdict = await assessNotifyUrl(row.url, { allowPrivate: this.#options.allowPrivate })
    let result: AttemptResult
    if (!verdict.ok) {
      result = { statusCode: null, latencyMs: 0, error: verdict.message, retryAfter: undefined, notAllowed: verdict.reason !== 'unresolvable', abandoned: false }
    } else {
      const headers = (await this.#options.signerFor(row)).headers(row.id, new Date(), row.payload)
      result = await this.#options.sender.send(row.url, headers, row.payload, shutdown)
    }
    // Shutting down: the next run (this replica's or another's) sends it now rather than when the lease ends.
    if (result.abandoned) return storage.releaseClaim(row, new Date().toISOString())

    const at = new Date()
    const judged = this.#judge(result, round, at.getTime())
    const outcome: AttemptOutcome = judged.kind === 'retry' ? { kind: 'retry', nextAttemptAt: new Date(at.getTime() + judged.delayMs).toISOString() } : judged
    const attempt = { delivery_seq: row.seq, at: at.toISOString(), status_code: result.statusCode, latency_ms: result.latencyMs, error: result.error }
    // False: retention purged the task (and so this delivery) while the attempt was under way.
    if (!await storage.recordAttempt(row, round, attempt, outcome)) return
    const context = { delivery: row.id, status_code: result.statusCode, attempt: round }
    if (judged.kind === 'delivered') log.info(context, 'notification delivered')
    else if (judged.kind === 'retry') log.info({ ...context, error: result.error, retry_in_ms: judged.delayMs }, 'notification attempt failed; will retry')
    else log.warn({ ...context, error: result.error, reason: judged.kind === 'gone' ? 'gone' : judged.reason }, 'notification is dead')
  }

  /** Dead without an attempt; the next message of the task to the URL goes ahead. */
  async #kill (row: DeliveryRow, reason: 'url_gone' | 'superseded'): Promise<void> {
    await this.#options.storage.kill(row, reason, new Date().toISOString())
    this.#options.log.warn({ delivery: row.id, reason }, 'notification is dead')
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
