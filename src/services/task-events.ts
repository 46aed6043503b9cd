// In-process notifications of what happens to tasks, for observers (metrics, waiting clients, notifiers).
import { EventEmitter } from 'node:events'
import type { TaskRow } from '../db/tasks-repository.js'
import type { ProviderCall } from '../providers/provider.js'
import type { Outcome, TaskStatus } from './task-state.js'

/**
 * Who brought an update: the submit's answer, a push, a poll, a deadline this service enforced, the submit queue
 * (a create sent or refused by a rate limit), or the caller cancelling a queued task.
 */
export type EventSource = 'submit' | 'callback' | 'poll' | 'timeout' | 'queue' | 'cancel'

export type StatusChange = { task: TaskRow, previous: TaskStatus, source: EventSource }

export type TaskEventMap = {
  /** A task's status changed; emitted after the change is committed. */
  status: [StatusChange]
  /**
   * Another replica committed a change of this task's status (as announced there by `status`); the row as read here
   * after it. Only what answers waiting clients follows it: metrics and notifications are the other replica's.
   */
  remoteStatus: [{ task: TaskRow }]
  /** A push without a valid token named this task (null: a task we do not know): worth checking with the provider. */
  refusedPush: [{ taskSeq: number | null }]
  /** A status push was answered: what the state machine made of it, or refused. */
  push: [{ outcome: Outcome | 'refused' }]
  /** A submit ended: created, rejected by the provider (with its code), or outcome unknown. */
  submit: [{ outcome: 'created' | 'rejected' | 'unknown', code: string | null }]
  providerCall: [ProviderCall]
  /** The submit queue sent a create (waitedMs: how long the task was queued; 0 when sent at once). */
  queueDispatch: [{ provider: string, waitedMs: number }]
  /** A create was refused by the provider's rate limit (1002, 2045, 1039, HTTP 429): the task went back to the queue. */
  rateLimited: [{ provider: string, code: string }]
  /** One group commit of status updates took this long, until durable. */
  dbWrite: [{ ms: number }]
}

/** Listeners for any of the events, by name (metrics listens to most). */
export type TaskEventListeners = { [K in keyof TaskEventMap]?: (...args: TaskEventMap[K]) => void }

export class TaskEvents extends EventEmitter<TaskEventMap> {
  constructor () {
    super()
    // Every waiting client (long-poll, SSE) may listen; the default cap of 10 would warn for no reason.
    this.setMaxListeners(0)
  }

  /** Subscribes every listener; returns what unsubscribes them. */
  subscribe (listeners: TaskEventListeners): () => void {
    const entries = Object.entries(listeners) as Array<[keyof TaskEventMap, () => void]>
    for (const [name, listener] of entries) this.on(name, listener)
    return () => { for (const [name, listener] of entries) this.off(name, listener) }
  }
}
