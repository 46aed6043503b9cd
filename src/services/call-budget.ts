// A sliding one-minute window of provider calls: never more than `perMinute` in any 60 s.

const WINDOW_MS = 60_000

export class CallBudget {
  readonly #calls: number[] = []

  constructor (readonly perMinute: number) {}

  /** Spends one call if the window allows it. */
  tryTake (now: number = Date.now()): boolean {
    this.#forget(now)
    if (this.#calls.length >= this.perMinute) return false
    this.#calls.push(now)
    return true
  }

  /** Calls still allowed in the current window. */
  remaining (now: number = Date.now()): number {
    this.#forget(now)
    return this.perMinute - this.#calls.length
  }

  /** How long until a call can be made again (0 when one can now). */
  waitMs (now: number = Date.now()): number {
    this.#forget(now)
    return this.#calls.length < this.perMinute ? 0 : this.#calls[0]! + WINDOW_MS - now
  }

  #forget (now: number): void {
    while (this.#calls.length > 0 && this.#calls[0]! <= now - WINDOW_MS) this.#calls.shift()
  }
}
