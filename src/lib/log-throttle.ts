// Keeps a flood from becoming a flood of log lines: at most N lines a second, and the next line says how many were dropped.

export type Admission = { log: true, suppressed: number } | { log: false }

export class LogThrottle {
  #windowStart = -Infinity
  #inWindow = 0
  #suppressed = 0

  constructor (private readonly perSecond: number, private readonly clock: () => number = Date.now) {
    if (!Number.isInteger(perSecond) || perSecond < 1) throw new RangeError('perSecond must be a positive integer')
  }

  /** Whether this line may be written; a line that may carries the count of lines suppressed since the last one. */
  admit (): Admission {
    const now = this.clock()
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now
      this.#inWindow = 0
    }
    if (this.#inWindow >= this.perSecond) {
      this.#suppressed += 1
      return { log: false }
    }
    this.#inWindow += 1
    const suppressed = this.#suppressed
    this.#suppressed = 0
    return { log: true, suppressed }
  }
}
