// One in-process notifier for clients waiting on a task (long-polls, event streams): one listener, no polling.
import type { EventEmitter } from 'node:events'
import type { TaskRow } from '../db/tasks-repository.js'
import { errors } from '../errors.js'
import type { StatusChange } from './task-events.js'
import { isTerminal, type TaskStatus } from './task-state.js'
import type { TaskStore } from './task-store.js'

export type Watcher = {
  /** The task's status changed (committed). */
  onChange: (task: TaskRow) => void
  /** The service is closing: answer now and let go. */
  onClose: () => void
}

export type WaitOutcome = 'changed' | 'timeout' | 'closing' | 'disconnected'

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

  constructor (private readonly store: Pick<TaskStore, 'events' | 'repo'>, limits: WaiterLimits = { perCaller: Infinity, total: Infinity }) {
    this.#limits = limits
    store.events.on('status', this.#onStatus)
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
   * Resolves at the task's next status change, after timeoutMs, when the service closes, or when `connection`
   * (the client's response) closes first; the listener and the timer are gone once it resolves.
   */
  async waitForChange (seq: number, timeoutMs: number, connection: EventEmitter): Promise<WaitOutcome> {
    return await new Promise<WaitOutcome>((resolve) => {
      let unwatch = () => {}
      let settled = false
      const finish = (outcome: WaitOutcome) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        unwatch()
        connection.off('close', onDisconnect)
        resolve(outcome)
      }
      const onDisconnect = () => finish('disconnected')
      const timer = setTimeout(() => finish('timeout'), timeoutMs)
      connection.once('close', onDisconnect)
      // Last: a closed watch answers at once, synchronously.
      unwatch = this.watch(seq, { onChange: () => finish('changed'), onClose: () => finish('closing') })
    })
  }

  /**
   * The long-poll: when the task's status is `status` (default: its current one) and can still change, waits up to
   * waitSeconds for a change; returns the task as it is then.
   */
  async longPoll (task: TaskRow, { wait, status, caller }: { wait: number, status?: TaskStatus | undefined, caller: string }, connection: EventEmitter): Promise<TaskRow> {
    if (wait <= 0 || task.status !== (status ?? task.status) || isTerminal(task.status)) return task
    // Only a poll that really waits takes a slot: one answered at once costs nothing to hold.
    const release = this.admit(caller)
    try {
      await this.waitForChange(task.seq, wait * 1000, connection)
    } finally {
      release()
    }
    return this.store.repo.bySeq(task.seq) ?? task
  }

  /** Tells every waiting client the service is closing, so no open request holds the shutdown back. */
  close (): void {
    this.#closed = true
    this.store.events.off('status', this.#onStatus)
    const all = [...this.#bySeq.values(), this.#everyTask].flatMap((watchers) => [...watchers])
    this.#bySeq.clear()
    this.#everyTask.clear()
    this.#count = 0
    for (const watcher of all) watcher.onClose()
  }

  readonly #onStatus = ({ task }: StatusChange): void => {
    for (const watcher of [...this.#everyTask]) watcher.onChange(task)
    const watchers = this.#bySeq.get(task.seq)
    if (!watchers) return
    for (const watcher of [...watchers]) watcher.onChange(task)
  }
}
