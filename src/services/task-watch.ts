// One in-process notifier for clients waiting on a task (long-polls, event streams): one listener, no polling.
import type { EventEmitter } from 'node:events'
import type { TaskRow } from '../db/tasks-repository.js'
import { errors } from '../errors.js'
import type { StatusChange } from './task-events.js'
import { isTerminal, type TaskStatus } from './task-state.js'
import type { TaskStore } from './task-store.js'

export type Watcher = {
  /**
   * The task's status changed (committed). Every watcher of one change gets the same row object: pass it to
   * TaskWatch.shared to compute what they all send once.
   */
  onChange: (task: TaskRow) => void
  /** The service is closing: answer now and let go. */
  onClose: () => void
}

export type WaitOutcome = 'changed' | 'timeout' | 'closing' | 'disconnected'

/** How a wait ended; `change` is the row of the status change that ended it (see Watcher.onChange). */
export type WaitResult = { outcome: 'changed', change: TaskRow } | { outcome: Exclude<WaitOutcome, 'changed'>, change?: undefined }

/**
 * An answer every waiter of a change may share: it depends on the task alone, never on who waits (each waiter's right
 * to see the task is checked before it waits, and event streams check it per change).
 */
export type SharedAnswer<T> = (task: TaskRow) => T

/** Caps on open waits (long-polls and event streams): each holds a socket, a timer and a listener. */
export type WaiterLimits = { perCaller: number, total: number }

export class TaskWatch {
  readonly #bySeq = new Map<number, Set<Watcher>>()
  // Watchers of every task (the dashboard's live task list).
  readonly #everyTask = new Set<Watcher>()
  #count = 0
  #closed = false
  readonly #limits: WaiterLimits
  readonly #byCaller = new Map<string, number>()
  #admitted = 0
  // What the waiters of one change share, by the change's row and the function that computes it. Weak: gone with the
  // row once its last waiter has answered.
  readonly #shared = new WeakMap<TaskRow, Map<SharedAnswer<unknown>, unknown>>()

  constructor (private readonly store: Pick<TaskStore, 'queries'>, limits: WaiterLimits = { perCaller: Infinity, total: Infinity }) {
    this.#limits = limits
  }

  /** How many clients are waiting, over all tasks. */
  get size (): number { return this.#count + this.#everyTask.size }

  /** Calls the watcher on every status change of any task until the returned function is called. */
  watchAll (watcher: Watcher): () => void {
    if (this.#closed) {
      watcher.onClose()
      return () => {}
    }
    this.#everyTask.add(watcher)
    return () => { this.#everyTask.delete(watcher) }
  }

  /** How many waits are admitted, over all callers (what MAX_WAITERS caps). */
  get admitted (): number { return this.#admitted }

  /**
   * Takes one of the caller's waiting slots, or throws 429 too_many_waiters when the caller or the service has none
   * left. The returned function gives the slot back; calling it again does nothing.
   */
  admit (caller: string): () => void {
    const held = this.#byCaller.get(caller) ?? 0
    if (held >= this.#limits.perCaller) throw errors.tooManyWaiters('caller', this.#limits.perCaller)
    if (this.#admitted >= this.#limits.total) throw errors.tooManyWaiters('total', this.#limits.total)
    this.#byCaller.set(caller, held + 1)
    this.#admitted += 1
    let released = false
    return () => {
      if (released) return
      released = true
      this.#admitted -= 1
      const left = (this.#byCaller.get(caller) ?? 1) - 1
      if (left === 0) this.#byCaller.delete(caller)
      else this.#byCaller.set(caller, left)
    }
  }

  /** Calls the watcher on every status change of the task until the returned function is called. */
  watch (seq: number, watcher: Watcher): () => void {
    if (this.#closed) {
      watcher.onClose()
      return () => {}
    }
    let watchers = this.#bySeq.get(seq)
    if (!watchers) this.#bySeq.set(seq, watchers = new Set())
    watchers.add(watcher)
    this.#count += 1
    return () => {
      if (!watchers.delete(watcher)) return
      this.#count -= 1
      if (watchers.size === 0 && this.#bySeq.get(seq) === watchers) this.#bySeq.delete(seq)
    }
  }

  /**
   * `answer(change)`, computed by the first of the change's waiters to ask and shared by the others: one push that
   * releases 1,000 waiters serialises its answer once, not 1,000 times. Keyed by `answer` itself, so pass a function
   * made once (per route), not one made per request.
   */
  shared<T> (change: TaskRow, answer: SharedAnswer<T>): T {
    return this.#once(change, answer, () => answer(change))
  }

  /**
   * Resolves at the task's next status change, after timeoutMs, when the service closes, or when `connection`
   * (the client's response) closes first; the listener and the timer are gone once it resolves. With `seenStatus`
   * (the status the waiter last read), a change committed between that read and this watch is not missed: the task
   * is read again once the watch is in place, and a different status ends the wait at once.
   */
  async waitForChange (seq: number, timeoutMs: number, connection: EventEmitter, seenStatus?: TaskStatus): Promise<WaitResult> {
    return await new Promise<WaitResult>((resolve) => { this.#onNextChange(seq, timeoutMs, connection, seenStatus, resolve) })
  }

  /** waitForChange with a callback: `done` runs in the very turn the wait ends (the long-polls' one pass needs that). */
  #onNextChange (seq: number, timeoutMs: number, connection: EventEmitter, seenStatus: TaskStatus | undefined, done: (result: WaitResult) => void): void {
    let unwatch = () => {}
    let settled = false
    const finish = (result: WaitResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      unwatch()
      connection.off('close', onDisconnect)
      done(result)
    }
    const onDisconnect = () => finish({ outcome: 'disconnected' })
    const timer = setTimeout(() => finish({ outcome: 'timeout' }), timeoutMs)
    connection.once('close', onDisconnect)
    // Last: a closed watch answers at once, synchronously.
    unwatch = this.watch(seq, { onChange: (change) => finish({ outcome: 'changed', change }), onClose: () => finish({ outcome: 'closing' }) })
    if (seenStatus === undefined || settled) return
    this.store.queries.bySeq(seq).then((fresh) => {
      if (fresh && fresh.status !== seenStatus) finish({ outcome: 'changed', change: fresh })
    }, () => {}) // unreadable now: the watch still answers at the next change
  }

  /**
   * The long-poll: when the task's status is `status` (default: its current one) and can still change, waits up to
   * `wait` seconds for a change, the service closing or `connection` (the client's response) closing; then calls
   * `respond` with `answer` of the task as it is then, and resolves (rejects when the answer cannot be made, or with
   * 429 too_many_waiters when no waiting slot is left). The polls one change releases share one answer (see shared),
   * computed once from the task as read after the change, and are answered in one pass: every `respond` runs as that
   * answer is ready, one after the other, with nothing of its own to await first; what follows each (its handler
   * going on, its request's log line) comes after all of them.
   */
  async longPoll<T> (task: TaskRow, { wait, status, caller }: { wait: number, status?: TaskStatus | undefined, caller: string }, connection: EventEmitter, answer: SharedAnswer<Promise<T>>, respond: (answer: T) => void): Promise<void> {
    if (wait <= 0 || task.status !== (status ?? task.status) || isTerminal(task.status)) return respond(await answer(task))
    // Only a poll that really waits takes a slot: one answered at once costs nothing to hold.
    const release = this.admit(caller)
    const current = async () => await answer(await this.store.queries.bySeq(task.seq) ?? task)
    await new Promise<void>((resolve, reject) => {
      this.#onNextChange(task.seq, wait * 1000, connection, task.status, (result) => {
        release()
        // One read for all the polls of a change, made by the first to be told: the others are told in the same loop
        // and share it.
        const answered = result.change ? this.#once(result.change, answer, current) : current()
        answered.then(respond).then(resolve, reject)
      })
    })
  }

  /** Tells every waiting client the service is closing, so no open request holds the shutdown back. */
  close (): void {
    this.#closed = true
    const all = [...this.#bySeq.values(), this.#everyTask].flatMap((watchers) => [...watchers])
    this.#bySeq.clear()
    this.#everyTask.clear()
    this.#count = 0
    for (const watcher of all) watcher.onClose()
  }

  #once<T> (change: TaskRow, key: SharedAnswer<T>, compute: () => T): T {
    let answers = this.#shared.get(change)
    if (!answers) this.#shared.set(change, answers = new Map())
    if (answers.has(key)) return answers.get(key) as T
    const value = compute()
    answers.set(key, value)
    return value
  }

  /**
   * A committed status change (subscribed to the task module's `status` event, and `remoteStatus` for another
   * replica's): its watchers are told.
   */
  readonly changed = ({ task }: Pick<StatusChange, 'task'>): void => {
    // Who watches as the change commits: a watch that starts later has read the new state already, so it must not
    // be told of this change (a long-poll would answer with no news).
    const watchers = [...this.#everyTask, ...(this.#bySeq.get(task.seq) ?? [])]
    if (watchers.length === 0) return
    // After the write's own answer: the push that made the change is answered first (its waiters' thousand writes
    // would otherwise hold it back), then every waiter, in one go.
    setImmediate(() => {
      for (const watcher of watchers) if (this.#watching(task.seq, watcher)) watcher.onChange(task)
    })
  }

  /** Whether the watcher is still watching the task (it may have left, or the service closed, since the change). */
  #watching (seq: number, watcher: Watcher): boolean {
    return this.#everyTask.has(watcher) || this.#bySeq.get(seq)?.has(watcher) === true
  }
}
