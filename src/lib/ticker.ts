// Runs an async pass every intervalMs, each one after the previous has finished, until stopped.

export class Ticker {
  #timer: NodeJS.Timeout | null = null
  #pass: Promise<void> | null = null
  #stopped = true

  constructor (
    private readonly run: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void
  ) {}

  start (): void {
    this.#stopped = false
    this.#schedule()
  }

  /** Resolves once a pass in progress has finished. */
  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#timer) clearTimeout(this.#timer)
    await this.#pass
  }

  #schedule (): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.#pass = this.run()
        .catch(this.onError)
        .finally(() => { this.#pass = null; this.#schedule() })
    }, this.intervalMs)
    this.#timer.unref() // a pending pass never keeps the process alive
  }
}
