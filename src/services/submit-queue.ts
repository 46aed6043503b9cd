// The durable submit queue's dispatcher: creates paced within each provider's rate limit, round-robin between callers.
// The queue itself is the tasks table (status queued); this holds only pacing state, so a restart resumes where it was.
import type { TaskRow } from '../db/tasks-repository.js'
import { Ticker } from '../lib/ticker.js'
import type { ProviderName, SubmitRequest } from '../providers/provider.js'
import type { QueuePosition } from '../schemas/submit.js'
import type { Log, TaskStore } from './task-store.js'

/** What a queued task needs to be sent: the provider's request (with the image) and the task's callback token. */
export type QueuedRequest = { request: SubmitRequest, token: string }

/** Sends a dispatched task's create; resolves once the provider answered (or failed), never rejects. */
export type QueueSender = (task: TaskRow, queued: QueuedRequest) => Promise<void>

export type { QueuePosition }

export type SubmitQueueOptions = {
  store: TaskStore
  /** Creates per window, by provider (MINIMAX_SUBMIT_RPM, MODELLIX_SUBMIT_RPM). */
  rpm: Record<ProviderName, number>
  windowMs: number
  maxWaitMs: number
  log: Log
}

// Our clock starts a create before the provider's sees it: the pacing window is this much longer than the provider's,
// so a request that took a while to arrive never makes two creates look closer than they were sent (2 %, at least 250 ms).
const WINDOW_SAFETY_RATIO = 0.02
const WINDOW_SAFETY_MIN_MS = 250
// How often queued tasks are checked against QUEUE_MAX_WAIT_MS (a cheap indexed read).
const EXPIRY_TICK_MS = 1000
const EXPIRY_BATCH = 100

/**
 * One provider's create slot. Creates start at least intervalMs apart (smooth: no burst when a window opens), never
 * more than rpm in any window, and one at a time: the next starts only after the provider answered the last.
 */
export class Pacer {
  readonly windowMs: number
  readonly intervalMs: number
  readonly #sent: number[] = []
  #nextAt = 0
  #busy = false
  #refusals = 0

  constructor (readonly rpm: number, providerWindowMs: number) {
    this.windowMs = providerWindowMs + Math.max(providerWindowMs * WINDOW_SAFETY_RATIO, WINDOW_SAFETY_MIN_MS)
    this.intervalMs = this.windowMs / rpm
  }

  get busy (): boolean { return this.#busy }

  /** How long until a create may start (0: now); Infinity while one is in flight. */
  waitMs (now: number): number {
    if (this.#busy) return Infinity
    while (this.#sent.length > 0 && this.#sent[0]! <= now - this.windowMs) this.#sent.shift()
    const windowWait = this.#sent.length >= this.rpm ? this.#sent[0]! + this.windowMs - now : 0
    return Math.max(0, this.#nextAt - now, windowWait)
  }

  /** Takes the slot for a create starting now; false when it is not free. */
  tryTake (now: number): boolean {
    if (this.waitMs(now) > 0) return false
    this.#sent.push(now)
    this.#nextAt = now + this.intervalMs
    this.#busy = true
    return true
  }

  /**
   * The create's answer came (or it failed in a way that is not a rate limit). The provider counted the create when
   * it arrived, somewhere between our start and this answer, and a loaded machine can put tens of milliseconds
   * between the two: so the window counts it from the answer (the latest it can have arrived), and the next create
   * waits at least half an interval after the answer, which keeps arrivals at least that far apart however late this
   * one reached the provider (MiniMax's 2045 refuses sudden bursts).
   */
  release (now: number): void {
    this.#busy = false
    if (this.#sent.length > 0) this.#sent[this.#sent.length - 1] = Math.max(this.#sent.at(-1)!, now)
    this.#nextAt = Math.max(this.#nextAt, now + this.intervalMs / 2)
  }

  /**
   * The provider refused the create with a rate limit: wait for its hint, else back off exponentially from one
   * interval up to a window, and come back to one interval after the next accepted create.
   */
  refused (now: number, hintMs: number | null): number {
    this.#refusals += 1
    const pause = hintMs ?? Math.min(this.intervalMs * 2 ** this.#refusals, this.windowMs)
    this.#nextAt = Math.max(this.#nextAt, now + pause)
    return pause
  }

  accepted (): void {
    this.#refusals = 0
  }
}

export class SubmitQueue {
  readonly #options: SubmitQueueOptions
  readonly #pacers = new Map<ProviderName, Pacer>()
  readonly #timers = new Map<ProviderName, NodeJS.Timeout>()
  // Round-robin: the caller whose task went last, per provider (in memory: after a restart the rotation starts over).
  readonly #lastServed = new Map<ProviderName, string>()
  readonly #inFlight = new Set<Promise<void>>()
  readonly #expiry: Ticker
  #sender: QueueSender | null = null
  #running = false

  constructor (options: SubmitQueueOptions) {
    this.#options = options
    for (const [name, rpm] of Object.entries(options.rpm) as Array<[ProviderName, number]>) this.#pacers.set(name, new Pacer(rpm, options.windowMs))
    // Each pass also wakes every provider's dispatch, so a dispatch that failed (a locked database) resumes within a tick.
    this.#expiry = new Ticker(async () => {
      await this.expireOnce()
      for (const provider of this.#pacers.keys()) this.wake(provider)
    }, EXPIRY_TICK_MS, (err) => options.log.error({ err }, 'queue expiry pass failed'))
  }

  /** Who sends a dispatched create (the submit service); set once, before start. */
  setSender (sender: QueueSender): void {
    this.#sender = sender
  }

  pacer (provider: ProviderName): Pacer {
    return this.#pacers.get(provider)!
  }

  /** Starts dispatching what is queued (after a restart: everything still queued, in order). */
  start (providers: Iterable<ProviderName>): void {
    this.#running = true
    this.#expiry.start()
    for (const provider of providers) this.wake(provider)
  }

  /** Stops dispatching; resolves once the creates in flight have been answered. */
  async stop (): Promise<void> {
    this.#running = false
    for (const timer of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
    await this.#expiry.stop()
    await Promise.all([...this.#inFlight])
  }

  /**
   * A submit's own question: may it go to the provider at once? Only when nobody is queued ahead for that provider
   * and the slot is free; then the slot is taken, and release() must follow the provider's answer.
   */
  async tryDirect (provider: ProviderName, caller: string): Promise<boolean> {
    if (!this.#running || await this.#options.store.queries.anyQueued(provider)) return false
    if (!this.pacer(provider).tryTake(Date.now())) return false
    // It took a turn: the rotation goes on from this caller, so the queue that forms behind it starts with another.
    this.#lastServed.set(provider, caller)
    return true
  }

  /** Ends a direct create (its answer came); the queue moves on. */
  release (provider: ProviderName, accepted: boolean): void {
    const pacer = this.pacer(provider)
    pacer.release(Date.now())
    if (accepted) pacer.accepted()
    this.wake(provider)
  }

  /** The provider refused a create with a rate limit; returns the pause taken before the next one. */
  refused (provider: ProviderName, hintMs: number | null): number {
    return this.pacer(provider).refused(Date.now(), hintMs)
  }

  /** Something was queued or a slot freed: dispatch the next task when the slot allows. */
  wake (provider: ProviderName): void {
    if (!this.#running || this.#timers.has(provider) || !this.#pacers.has(provider)) return
    const wait = this.pacer(provider).waitMs(Date.now())
    if (wait === Infinity) return // the create in flight wakes the queue when it is answered
    // An empty queue is found so when the timer fires (one read), not asked about on every wake.
    const timer = setTimeout(() => {
      this.#timers.delete(provider)
      this.#dispatchNext(provider).catch((err: unknown) => {
        this.#options.log.error({ err, provider }, 'dispatching from the submit queue failed; trying again at the next wake')
      })
    }, wait)
    timer.unref()
    this.#timers.set(provider, timer)
  }

  /**
   * Where a queued task stands: 1 = sent next. Round-robin means each other caller gets as many turns before it as
   * the caller has tasks ahead of it (plus one if that caller comes earlier in the rotation), up to what they queued.
   */
  async positionOf (task: TaskRow): Promise<QueuePosition | null> {
    if (task.status !== 'queued') return null
    const provider = task.provider as ProviderName
    const pacer = this.#pacers.get(provider)
    if (!pacer) return null
    const repo = this.#options.store.queries
    const ahead = await repo.queuedAhead(provider, task.caller, task.seq)
    const last = this.#lastServed.get(provider)
    const rotation = (caller: string): number => (last === undefined || caller > last ? 0 : 1)
    const mine = rotation(task.caller)
    let position = 1 + ahead
    for (const { caller, n } of await repo.queuedByCaller(provider)) {
      if (caller === task.caller) continue
      const earlier = rotation(caller) < mine || (rotation(caller) === mine && caller < task.caller)
      position += Math.min(n, ahead + (earlier ? 1 : 0))
    }
    const wait = pacer.waitMs(Date.now())
    const untilSlot = wait === Infinity ? pacer.intervalMs : wait
    return { position, eta_s: Math.ceil((untilSlot + (position - 1) * pacer.intervalMs) / 1000) }
  }

  /** Fails queued tasks that waited longer than QUEUE_MAX_WAIT_MS (never sent). */
  async expireOnce (now: number = Date.now()): Promise<number> {
    const { store, maxWaitMs, log } = this.#options
    let expired = 0
    for (const task of await store.queries.expiredQueued(new Date(now - maxWaitMs).toISOString(), EXPIRY_BATCH)) {
      const error = { code: 'queue_timeout', message: `the task waited in the submit queue longer than ${maxWaitMs} ms (QUEUE_MAX_WAIT_MS) and was never sent` }
      if (await store.moveInQueue(task.seq, 'expire', { error })) {
        expired += 1
        log.warn({ id: task.id, caller: task.caller, provider: task.provider }, 'queued task timed out')
      }
    }
    return expired
  }

  /** The next task by round-robin over callers (each caller's oldest first). */
  async #next (provider: ProviderName): Promise<TaskRow | undefined> {
    const heads = await this.#options.store.queries.queueHeads(provider)
    if (heads.length === 0) return undefined
    const last = this.#lastServed.get(provider)
    const head = (last === undefined ? undefined : heads.find(({ caller }) => caller > last)) ?? heads[0]!
    return await this.#options.store.queries.bySeq(head.seq)
  }

  async #dispatchNext (provider: ProviderName): Promise<void> {
    if (!this.#running || !this.#sender) return
    const pacer = this.pacer(provider)
    const task = await this.#next(provider)
    if (!task || !this.#running) return
    if (!pacer.tryTake(Date.now())) return this.wake(provider)
    const { store, log } = this.#options
    let queued: QueuedRequest
    try {
      queued = JSON.parse(task.queued_request ?? 'null') as QueuedRequest
      if (!queued?.token || !queued.request) throw new Error('no stored request')
    } catch (err) {
      // Cannot happen through the service (the request is written with the row); fail the task rather than block the queue.
      pacer.release(Date.now())
      await store.moveInQueue(task.seq, 'expire', { error: { code: 'queue_request_lost', message: 'the queued request could not be read back; the task was never sent' } })
      log.error({ err, id: task.id }, 'queued task has no readable request')
      return this.wake(provider)
    }
    // Committed before the create goes out: after a crash the task is "submitting" (outcome unknown), never sent twice.
    let moved: TaskRow | null
    try {
      moved = await store.moveInQueue(task.seq, 'dispatch')
    } catch (err) {
      pacer.release(Date.now()) // nothing was sent: the slot is free again
      throw err
    }
    if (!moved) {
      pacer.release(Date.now())
      return this.wake(provider)
    }
    const previous = this.#lastServed.get(provider)
    this.#lastServed.set(provider, task.caller)
    const waitedMs = Date.now() - Date.parse(task.queued_at ?? task.created_at)
    store.events.emit('queueDispatch', { provider, waitedMs })
    const sending = this.#sender(moved, queued)
      .catch((err: unknown) => { log.error({ err, id: task.id }, 'dispatching a queued create failed') })
      .then(async () => await store.queries.bySeq(task.seq))
      .catch(() => undefined)
      .then((after) => {
        this.#inFlight.delete(sending)
        const refused = after?.status === 'queued'
        // A refused create goes back to the head: the same caller's turn comes again first.
        if (refused) {
          if (previous === undefined) this.#lastServed.delete(provider)
          else this.#lastServed.set(provider, previous)
        }
        this.release(provider, !refused)
      })
    this.#inFlight.add(sending)
  }
}
