// The durable submit queue's dispatcher: creates paced within each provider's rate limit, round-robin between callers.
// The queue itself is the tasks table (status queued); the pacing state is shared by every replica (SharedLimits), and
// only the rotation between callers is this process's own.
import { randomUUID } from 'node:crypto'
import type { TaskRow } from '../db/tasks-repository.js'
import { Ticker } from '../lib/ticker.js'
import type { ProviderName, SubmitRequest } from '../providers/provider.js'
import type { QueuePosition } from '../schemas/submit.js'
import { SharedPacer } from './pacing.js'
import type { SharedLimits } from './shared-limits.js'
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
  /** How long a create's slot is held without an answer (its sender died), by provider: its timeout plus a margin. */
  leaseMs: Record<ProviderName, number>
  /** Where the pacing state lives: this process's memory (SQLite) or the database every replica shares. */
  limits: SharedLimits
  maxWaitMs: number
  log: Log
}

// How often queued tasks are checked against QUEUE_MAX_WAIT_MS (a cheap indexed read). Each pass also wakes every
// provider's dispatch: the latest a replica notices that another replica's create was answered and the slot is free.
const EXPIRY_TICK_MS = 1000
const EXPIRY_BATCH = 100

export class SubmitQueue {
  readonly #options: SubmitQueueOptions
  readonly #pacers = new Map<ProviderName, SharedPacer>()
  readonly #timers = new Map<ProviderName, NodeJS.Timeout>()
  // A wake reads the shared slot before it sets its timer: one read at a time per provider, and a wake that came
  // meanwhile reads again once it is done (the slot it saw busy may have been freed since).
  readonly #waking = new Map<ProviderName, boolean>()
  // The lease of the direct create in flight, by provider (one at a time: the slot is this replica's while it is held).
  // Only a lease that ran out with its create still unanswered lets a second one start; the first's answer then frees
  // the second's slot early, which the interval and the window still bound.
  readonly #directLeases = new Map<ProviderName, string>()
  // Holders are this queue's id and a counter, so a lease names its replica (and a late release cannot free another's).
  readonly #id = randomUUID()
  #leases = 0
  // Round-robin: the caller whose task went last, per provider (in memory: after a restart the rotation starts over).
  readonly #lastServed = new Map<ProviderName, string>()
  readonly #inFlight = new Set<Promise<void>>()
  readonly #reads = new Set<Promise<void>>()
  readonly #expiry: Ticker
  #sender: QueueSender | null = null
  #running = false

  constructor (options: SubmitQueueOptions) {
    this.#options = options
    for (const [name, rpm] of Object.entries(options.rpm) as Array<[ProviderName, number]>) {
      this.#pacers.set(name, new SharedPacer(options.limits, `pacing:${name}`, { rpm, providerWindowMs: options.windowMs, leaseMs: options.leaseMs[name] }))
    }
    // Each pass also wakes every provider's dispatch, so a dispatch that failed (a locked database) resumes within a
    // tick, and so does one whose slot another replica held.
    this.#expiry = new Ticker(async () => {
      await this.expireOnce()
      for (const provider of this.#pacers.keys()) this.wake(provider)
    }, EXPIRY_TICK_MS, (err) => options.log.error({ err }, 'queue expiry pass failed'))
  }

  /** Who sends a dispatched create (the submit service); set once, before start. */
  setSender (sender: QueueSender): void {
    this.#sender = sender
  }

  pacer (provider: ProviderName): SharedPacer {
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
    await Promise.all([...this.#inFlight, ...this.#reads])
  }

  /**
   * A submit's own question: may it go to the provider at once? Only when nobody is queued ahead for that provider
   * and the slot is free; then the slot is taken, and release() must follow the provider's answer.
   */
  async tryDirect (provider: ProviderName, caller: string): Promise<boolean> {
    if (!this.#running || await this.#options.store.queries.anyQueued(provider)) return false
    const lease = this.#newLease()
    if (!await this.pacer(provider).tryTake(lease)) return false
    this.#directLeases.set(provider, lease)
    // It took a turn: the rotation goes on from this caller, so the queue that forms behind it starts with another.
    this.#lastServed.set(provider, caller)
    return true
  }

  /** Ends a direct create (its answer came); the queue moves on. Never rejects. */
  async release (provider: ProviderName, accepted: boolean): Promise<void> {
    const lease = this.#directLeases.get(provider)
    this.#directLeases.delete(provider)
    if (lease !== undefined) await this.#release(provider, lease, accepted)
  }

  /**
   * The provider refused a create with a rate limit; returns the pause taken before the next one (by every replica).
   * Never rejects: when the shared state cannot be written, the pause is the hint or one interval, said in the log.
   */
  async refused (provider: ProviderName, hintMs: number | null): Promise<number> {
    const pacer = this.pacer(provider)
    try {
      return await pacer.refused(hintMs)
    } catch (err) {
      this.#options.log.error({ err, provider }, 'recording a rate-limit refusal in the submit pace failed')
      return hintMs ?? pacer.intervalMs
    }
  }

  /** Something was queued or a slot freed: dispatch the next task when the slot allows. */
  wake (provider: ProviderName): void {
    if (!this.#running || this.#timers.has(provider) || !this.#pacers.has(provider)) return
    if (this.#waking.has(provider)) {
      this.#waking.set(provider, true)
      return
    }
    this.#waking.set(provider, false)
    const reading = this.pacer(provider).waitMs().then((wait) => {
      const again = this.#waking.get(provider) === true
      this.#waking.delete(provider)
      // A create in flight wakes the queue when it is answered (here), or the expiry tick does (on another replica).
      if (wait === Infinity) {
        if (again) this.wake(provider)
        return
      }
      this.#schedule(provider, wait)
    }, (err: unknown) => {
      this.#waking.delete(provider)
      this.#options.log.error({ err, provider }, 'reading the submit pace failed; trying again at the next wake')
    }).finally(() => { this.#reads.delete(reading) })
    this.#reads.add(reading)
  }

  #schedule (provider: ProviderName, wait: number): void {
    if (!this.#running || this.#timers.has(provider)) return
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

  #newLease (): string {
    this.#leases += 1
    return `${this.#id}/${this.#leases}`
  }

  /** Frees the slot; never rejects (when the shared state cannot be written, the lease runs out instead). */
  async #release (provider: ProviderName, lease: string, accepted: boolean): Promise<void> {
    try {
      await this.pacer(provider).release(lease, accepted)
    } catch (err) {
      this.#options.log.error({ err, provider }, 'freeing the create slot failed; its lease runs out instead')
    }
    this.wake(provider)
  }

  /**
   * Where a queued task stands: 1 = sent next. Round-robin means each other caller gets as many turns before it as
   * the caller has tasks ahead of it (plus one if that caller comes earlier in the rotation), up to what they queued.
   */
  async positionOf (task: Pick<TaskRow, 'seq' | 'provider' | 'caller' | 'status'>): Promise<QueuePosition | null> {
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
    const wait = await pacer.waitMs()
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
    const lease = this.#newLease()
    if (!await pacer.tryTake(lease)) return this.wake(provider)
    const { store, log } = this.#options
    let queued: QueuedRequest
    try {
      queued = JSON.parse(task.queued_request ?? 'null') as QueuedRequest
      if (!queued?.token || !queued.request) throw new Error('no stored request')
    } catch (err) {
      // Cannot happen through the service (the request is written with the row); fail the task rather than block the queue.
      await this.#release(provider, lease, false)
      await store.moveInQueue(task.seq, 'expire', { error: { code: 'queue_request_lost', message: 'the queued request could not be read back; the task was never sent' } })
      log.error({ err, id: task.id }, 'queued task has no readable request')
      return this.wake(provider)
    }
    // Committed before the create goes out: after a crash the task is "submitting" (outcome unknown), never sent twice.
    let moved: TaskRow | null
    try {
      moved = await store.moveInQueue(task.seq, 'dispatch')
    } catch (err) {
      await this.#release(provider, lease, false) // nothing was sent: the slot is free again
      throw err
    }
    if (!moved) return await this.#release(provider, lease, false)
    const previous = this.#lastServed.get(provider)
    this.#lastServed.set(provider, task.caller)
    const waitedMs = Date.now() - Date.parse(task.queued_at ?? task.created_at)
    store.events.emit('queueDispatch', { provider, waitedMs })
    const sending = this.#sender(moved, queued)
      .catch((err: unknown) => { log.error({ err, id: task.id }, 'dispatching a queued create failed') })
      .then(async () => await store.queries.bySeq(task.seq))
      .catch(() => undefined)
      .then(async (after) => {
        const refused = after?.status === 'queued'
        // A refused create goes back to the head: the same caller's turn comes again first.
        if (refused) {
          if (previous === undefined) this.#lastServed.delete(provider)
          else this.#lastServed.set(provider, previous)
        }
        await this.#release(provider, lease, !refused)
        this.#inFlight.delete(sending)
      })
    this.#inFlight.add(sending)
  }
}
