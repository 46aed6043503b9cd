// A sliding one-minute window of provider calls: never more than `perMinute` in any 60 s, counted by every replica
// together when the window lives in the database (SharedLimits).
import { MemoryLimits, type SharedLimits } from './shared-limits.js'

const WINDOW_MS = 60_000

/** The calls of the current window, oldest first (JSON-able: one row per provider on PostgreSQL). */
export type BudgetState = { calls: number[] }

export type CallBudgetOptions = {
  /** Where the window lives; default: this process's memory. */
  limits?: SharedLimits
  /** The state's name there (one per provider). */
  key?: string
  /** The window's length; a minute unless a test needs it short. */
  windowMs?: number
}

export class CallBudget {
  readonly #limits: SharedLimits
  readonly #key: string
  readonly #windowMs: number

  constructor (readonly perMinute: number, options: CallBudgetOptions = {}) {
    this.#limits = options.limits ?? new MemoryLimits()
    this.#key = options.key ?? 'budget'
    this.#windowMs = options.windowMs ?? WINDOW_MS
  }

  /** Spends one call if the window allows it. */
  async tryTake (): Promise<boolean> {
    return await this.take(1) === 1
  }

  /** Spends up to n calls at once (one step, however many): how many the window allowed. */
  async take (n: number): Promise<number> {
    return await this.#limits.change<BudgetState, number>(this.#key, (state, now) => {
      const calls = this.#current(state, now)
      const granted = Math.max(0, Math.min(n, this.perMinute - calls.length))
      for (let i = 0; i < granted; i++) calls.push(now)
      return { state: { calls }, result: granted }
    })
  }

  /** Gives back calls taken but not made (their tasks were not there to poll), newest first. */
  async giveBack (n: number): Promise<void> {
    if (n <= 0) return
    await this.#limits.change<BudgetState, void>(this.#key, (state, now) => {
      const calls = this.#current(state, now)
      return { state: { calls: calls.slice(0, Math.max(0, calls.length - n)) }, result: undefined }
    })
  }

  /** Calls still allowed in the current window. */
  async remaining (): Promise<number> {
    const { state, now } = await this.#limits.read<BudgetState>(this.#key)
    return Math.max(0, this.perMinute - this.#current(state, now).length)
  }

  /** How long until a call can be made again (0 when one can now). */
  async waitMs (): Promise<number> {
    const { state, now } = await this.#limits.read<BudgetState>(this.#key)
    const calls = this.#current(state, now)
    return calls.length < this.perMinute ? 0 : calls[calls.length - this.perMinute]! + this.#windowMs - now
  }

  /** The calls still in the window at now, as a new array (the stored state is never changed in place). */
  #current (state: BudgetState | undefined, now: number): number[] {
    return (state?.calls ?? []).filter((at) => at > now - this.#windowMs)
  }
}
