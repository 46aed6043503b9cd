// Limits every replica counts against together (the providers' create pace, the reconciler's poll budget): a small
// JSON-able state per key, changed one step at a time. In this process's memory on SQLite (one process), in the
// database on PostgreSQL (src/db/postgres/shared-limits.ts).

/**
 * One step of a limit: the state as stored (undefined the first time), the shared clock's now; the state to store and
 * what the caller learns. The step owns the state it is given (parsed afresh on PostgreSQL, the one stored value in
 * memory) and may change it in place; it must not throw halfway through a change.
 */
export type LimitStep<S, R> = (state: S | undefined, now: number) => { state: S, result: R }

export interface SharedLimits {
  /** Runs step on key's state; no other step on that key, on any replica, runs in between. */
  change: <S, R>(key: string, step: LimitStep<S, R>) => Promise<R>
  /**
   * key's state and the shared clock's now, for waits, positions and gauges (stale by the next step). Not a step:
   * what a reader changes (dropping times the window has left) may or may not be kept.
   */
  read: <S>(key: string) => Promise<{ state: S | undefined, now: number }>
}

/** One process's limits: the state in a map, the steps run at once (no database trip, as fast as plain fields). */
export class MemoryLimits implements SharedLimits {
  readonly #states = new Map<string, unknown>()

  constructor (private readonly clock: () => number = Date.now) {}

  async change<S, R> (key: string, step: LimitStep<S, R>): Promise<R> {
    const { state, result } = step(this.#states.get(key) as S | undefined, this.clock())
    this.#states.set(key, state)
    return result
  }

  async read<S> (key: string): Promise<{ state: S | undefined, now: number }> {
    return { state: this.#states.get(key) as S | undefined, now: this.clock() }
  }
}
