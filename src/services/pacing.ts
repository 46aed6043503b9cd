// One provider's create slot: the pacing rules (Pacer) over a small JSON-able state, and the same rules applied to
// the state every replica shares (SharedPacer, through SharedLimits).
import type { SharedLimits } from './shared-limits.js'

/** What the rules remember: kept in memory on SQLite, in one database row per provider on PostgreSQL. */
export type PacerState = {
  /** When the creates of the current window started (a create's time moves to its answer when the answer comes). */
  sent: number[]
  /** No create starts before this. */
  nextAt: number
  /** The create in flight: who sent it, and until when its slot is held if its answer never comes (a killed replica). */
  busy: { holder: string, until: number } | null
  /** Rate-limit refusals in a row (the back-off's exponent). */
  refusals: number
}

// Our clock starts a create before the provider's sees it: the pacing window is this much longer than the provider's,
// so a request that took a while to arrive never makes two creates look closer than they were sent (2 %, at least 250 ms).
const WINDOW_SAFETY_RATIO = 0.02
const WINDOW_SAFETY_MIN_MS = 250
// A caller that does not say how long its creates may take: the longest MINIMAX_CREATE_TIMEOUT_MS allows, plus a margin.
const DEFAULT_LEASE_MS = 310_000
// Who holds the slot when one process is all there is (the tests of the rules).
const LOCAL_HOLDER = 'local'

export type PacerOptions = {
  /** How long a create's slot stays held without its answer: the create's own timeout plus a margin. */
  leaseMs?: number
  /**
   * The state to go on from, which the Pacer then owns and changes in place (no copy: in memory a step costs what a
   * field update does, however many sends the window holds); a fresh slot without it.
   */
  state?: PacerState | undefined
}

/**
 * The rules, over one state. Creates start at least intervalMs apart (smooth: no burst when a window opens), never
 * more than rpm in any window, and one at a time: the next starts only after the provider answered the last, or
 * after the last one's lease ran out (its sender died: nobody else can answer for it).
 */
export class Pacer {
  readonly windowMs: number
  readonly intervalMs: number
  readonly leaseMs: number
  readonly #sent: number[]
  #nextAt: number
  #busy: PacerState['busy']
  #refusals: number

  constructor (readonly rpm: number, providerWindowMs: number, options: PacerOptions = {}) {
    this.windowMs = providerWindowMs + Math.max(providerWindowMs * WINDOW_SAFETY_RATIO, WINDOW_SAFETY_MIN_MS)
    this.intervalMs = this.windowMs / rpm
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS
    const state = options.state
    this.#sent = state?.sent ?? []
    this.#nextAt = state?.nextAt ?? 0
    this.#busy = state?.busy ?? null
    this.#refusals = state?.refusals ?? 0
  }

  /** The state as the rules left it, to be stored. */
  get state (): PacerState {
    return { sent: this.#sent, nextAt: this.#nextAt, busy: this.#busy, refusals: this.#refusals }
  }

  /** How long until a create may start (0: now); Infinity while one is in flight. */
  waitMs (now: number): number {
    if (this.#busy !== null && this.#busy.until > now) return Infinity
    while (this.#sent.length > 0 && this.#sent[0]! <= now - this.windowMs) this.#sent.shift()
    const windowWait = this.#sent.length >= this.rpm ? this.#sent[0]! + this.windowMs - now : 0
    return Math.max(0, this.#nextAt - now, windowWait)
  }

  /** Takes the slot for a create starting now, held by `holder`; false when it is not free. */
  tryTake (now: number, holder: string = LOCAL_HOLDER): boolean {
    if (this.waitMs(now) > 0) return false
    this.#sent.push(now)
    this.#nextAt = now + this.intervalMs
    this.#busy = { holder, until: now + this.leaseMs }
    return true
  }

  /**
   * The create's answer came (or it failed in a way that is not a rate limit). The provider counted the create when
   * it arrived, somewhere between our start and this answer, and a loaded machine can put tens of milliseconds
   * between the two: so the window counts it from the answer (the latest it can have arrived), and the next create
   * waits at least half an interval after the answer, which keeps arrivals at least that far apart however late this
   * one reached the provider (MiniMax's 2045 refuses sudden bursts). A holder whose lease ran out and was taken by
   * another create frees nothing and moves no time but the half interval: the slot and the last time are the other's.
   */
  release (now: number, holder: string = LOCAL_HOLDER): void {
    if (this.#busy?.holder === holder) {
      this.#busy = null
      if (this.#sent.length > 0) this.#sent[this.#sent.length - 1] = Math.max(this.#sent.at(-1)!, now)
    }
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

export type PacerRules = { rpm: number, providerWindowMs: number, leaseMs: number }

/**
 * One provider's slot shared by every replica: each call is one step of the Pacer's rules on the stored state, on
 * the shared clock (the database's on PostgreSQL), so replicas together keep the pace one process would.
 */
export class SharedPacer {
  readonly #limits: SharedLimits
  readonly #key: string
  readonly #rules: PacerRules
  readonly windowMs: number
  readonly intervalMs: number

  constructor (limits: SharedLimits, key: string, rules: PacerRules) {
    this.#limits = limits
    this.#key = key
    this.#rules = rules
    const pacer = this.#pacer(undefined)
    this.windowMs = pacer.windowMs
    this.intervalMs = pacer.intervalMs
  }

  /** Takes the slot for a create starting now; false when it is not free (and nothing is changed). */
  async tryTake (holder: string): Promise<boolean> {
    return await this.#step((pacer, now) => pacer.tryTake(now, holder))
  }

  /** The holder's create was answered (accepted: not refused with a rate limit, which resets the back-off). */
  async release (holder: string, accepted: boolean): Promise<void> {
    await this.#step((pacer, now) => {
      pacer.release(now, holder)
      if (accepted) pacer.accepted()
    })
  }

  /** A rate-limit refusal: every replica pauses; returns the pause. */
  async refused (hintMs: number | null): Promise<number> {
    return await this.#step((pacer, now) => pacer.refused(now, hintMs))
  }

  /** How long until a create may start as things stand (Infinity while one is in flight, on any replica). */
  async waitMs (): Promise<number> {
    const { state, now } = await this.#limits.read<PacerState>(this.#key)
    return this.#pacer(state).waitMs(now)
  }

  #pacer (state: PacerState | undefined): Pacer {
    return new Pacer(this.#rules.rpm, this.#rules.providerWindowMs, { leaseMs: this.#rules.leaseMs, state })
  }

  async #step<R> (apply: (pacer: Pacer, now: number) => R): Promise<R> {
    return await this.#limits.change<PacerState, R>(this.#key, (state, now) => {
      const pacer = this.#pacer(state)
      const result = apply(pacer, now)
      return { state: pacer.state, result }
    })
  }
}
