// Where tasks are kept, as the task module (task-store.ts) sees it: one asynchronous interface, one implementation per
// engine (SQLite: src/db/sqlite-task-storage.ts). Each command is one transaction; each query one read.
import { newEvent, stateColumns, stateOf } from '../db/tasks-repository.js'
import type { ArchiveRecord, CallbackTarget, EventRow, IdempotencyRow, ListFilter, LookupEvent, LookupKey, NewEvent, NewTask, QueueHead, TaskLookup, TaskRow } from '../db/tasks-repository.js'
import type { NewMessage } from '../db/deliveries-repository.js'
import type { VideoLink } from '../providers/provider.js'
import type { EventSource, StatusChange } from './task-events.js'
import { decide, isTerminal, type Decision, type QueueMove, type StatusUpdate, type TaskError, type TaskStatus } from './task-state.js'

/** Everything that may be asked about tasks. Nothing here writes. */
export type TaskQueries = {
  bySeq: (seq: number) => Promise<TaskRow | undefined>
  byId: (id: string) => Promise<TaskRow | undefined>
  byTaskId: (taskId: string) => Promise<TaskRow | undefined>
  /** What a lookup shows of the task with this id (or task_id), and its latest `eventLimit` events, oldest first (SQLite: one statement). */
  lookup: (key: LookupKey, value: string, eventLimit: number) => Promise<TaskLookup | undefined>
  byFileId: (fileId: string) => Promise<TaskRow | undefined>
  /** Only what a push is checked with: seq, id, the token's hash. */
  callbackTarget: (id: string) => Promise<CallbackTarget | undefined>
  list: (filter: ListFilter) => Promise<TaskRow[]>
  /** The whole history (internal use and tests; callers read it in pages). */
  eventsOf: (taskSeq: number) => Promise<EventRow[]>
  /** The latest `limit` events, oldest first. */
  latestEvents: (taskSeq: number, limit: number) => Promise<LookupEvent[]>
  countEvents: (taskSeq: number) => Promise<number>
  /** One page of the history, oldest first: events after `afterSeq` (0 for the first page). */
  eventsAfter: (taskSeq: number, afterSeq: number, limit: number) => Promise<EventRow[]>
  idempotencyKey: (scope: string, key: string) => Promise<IdempotencyRow | undefined>
  queueHeads: (provider: string) => Promise<QueueHead[]>
  queuedByCaller: (provider: string) => Promise<Array<{ caller: string, n: number }>>
  queuedAhead: (provider: string, caller: string, seq: number) => Promise<number>
  anyQueued: (provider: string) => Promise<boolean>
  queuedOfCaller: (caller: string) => Promise<number>
  queueDepths: () => Promise<Array<{ provider: string, caller: string, n: number }>>
  expiredQueued: (queuedBefore: string, limit: number) => Promise<TaskRow[]>
  submittedSince: (caller: string, since: string) => Promise<number>
  stuckSubmitting: (createdBefore: string, limit: number) => Promise<TaskRow[]>
  countsByStatus: () => Promise<Array<{ status: TaskStatus, n: number }>>
}

/** A submit's Idempotency-Key, written with the task it created. */
export type IdempotencyClaim = { scope: string, key: string, requestHash: string }

export type UpdateArgs = [seq: number, taskId: string | null, update: StatusUpdate, source: EventSource, detail?: Record<string, unknown>]

export type UpdateResult =
  | { ok: true, task: TaskRow, decision: Decision, previous: TaskStatus }
  | { ok: false, reason: 'task_id_mismatch' | 'task_id_taken', task: TaskRow }

/** One update of a group: its result, or what made it fail alone. */
export type Settled = { result: UpdateResult } | { error: unknown }

/**
 * Asked inside the transaction that changes a status: the messages it returns (the notification outbox's) are written
 * by the task storage in that transaction, so they commit or roll back with the change, on either engine. Declarative,
 * so that one writer serves every engine; each message's state is decided by the insert (see NewMessage).
 */
export type StatusChangeWriter = (change: StatusChange) => readonly NewMessage[]

/** When to poll a task next, after the provider told us something about it (null: no poll needed). */
export type PollScheduler = (task: TaskRow, now: number) => string | null

/** What runs inside every status change's transaction (the task module's subscribers, see plugins/task-effects.ts). */
export type ChangeHooks = { readonly scheduler: PollScheduler, readonly writers: readonly StatusChangeWriter[] }

/** Every message the writers ask for, for a change. */
export function messagesFor (hooks: ChangeHooks, change: StatusChange): NewMessage[] {
  return hooks.writers.flatMap((write) => write(change))
}

export type QueueMoveOptions = { queuedRequest?: string, error?: TaskError, detail?: Record<string, unknown> }

export interface TaskStorage {
  readonly queries: TaskQueries
  /**
   * The new task, its "created" (and "queued") event, its Idempotency-Key; a queued task's status goes to the writers.
   * Rejects with IdempotencyKeyTaken, having written nothing, when another submit wrote the same key first.
   */
  create: (task: NewTask, idempotency: IdempotencyClaim | null, hooks: ChangeHooks) => Promise<TaskRow>
  /**
   * Status updates through the state machine, in one transaction, durable when this resolves. When the group fails
   * as a whole because of one of its updates, each is tried alone and only the faulty one settles with its error;
   * when the database refuses every write (locked, see isBusy), or cannot tell the commit is durable, this rejects.
   */
  applyUpdates: (batch: readonly UpdateArgs[], hooks: ChangeHooks) => Promise<Settled[]>
  /** One of the submit queue's moves; null (nothing changed) when it does not apply to the task as it is now. */
  moveInQueue: (seq: number, move: QueueMove, options: QueueMoveOptions, hooks: ChangeHooks) => Promise<UpdateResult | null>
  recordEvent: (seq: number, source: EventSource, outcome: string, detail: Record<string, unknown>, providerStatus: string | null) => Promise<void>
  saveIdempotentResponse: (scope: string, key: string, status: number, body: string) => Promise<void>
  saveVideoLink: (seq: number, link: VideoLink, options: { archive: boolean, pollingDone: boolean }) => Promise<TaskRow | undefined>
  expireVideoLink: (seq: number) => Promise<void>
  pollAt: (seq: number, at: string) => Promise<void>
  backOff: (seq: number, seenStatus: TaskStatus, next: (task: TaskRow) => string | null) => Promise<void>
  recordArchive: (seq: number, archive: ArchiveRecord) => Promise<boolean>
  purgeFinished: (updatedBefore: string, limit: number) => Promise<Array<{ archive_path: string | null }>>
  /**
   * Work that must be done once whichever replica does it: up to `limit` of the provider's tasks due for a poll at
   * `now`, soonest due first, claimed by moving their next poll to now + leaseMs in the same statement that picks
   * them. Another claim skips them until then; the poll's outcome (news, backOff, saveVideoLink) sets the real
   * schedule, and a claimer that died mid-poll gives them back when the lease runs out. The rows as claimed.
   */
  claimDuePolls: (provider: string, now: string, limit: number, leaseMs: number) => Promise<TaskRow[]>
  /**
   * The same for processing tasks created (or sent) before `createdBefore`, soonest created first, for their last poll
   * before a timeout. A task whose next poll lies within two leases from `now` (sparedUntil) is left out: that may be
   * another claim's (a claim puts it one lease from its own now), and were it not, it comes due within them, and the
   * poll then applies the deadline too (src/services/reconciler.ts).
   */
  claimPastDeadline: (createdBefore: string, now: string, limit: number, leaseMs: number) => Promise<TaskRow[]>
  /** The same for pending archives (archive_next_at moves); recordArchive then sets the real state and schedule. */
  claimDueArchives: (now: string, limit: number, leaseMs: number) => Promise<TaskRow[]>
  /**
   * Calls onChange with the seq of every task whose status another storage instance (another replica) commits from
   * now on, until the returned function is called; onError hears of a lost connection (it is made again by itself).
   * An engine that only one process uses has nothing to hear: the task module's own events cover it.
   */
  watchRemoteChanges: (onChange: (seq: number) => void, onError: (err: unknown) => void) => Promise<() => Promise<void>>
  /** Whether the error is the engine's "another connection holds the lock": every write would fail alike, for now. */
  isBusy: (err: unknown) => boolean
  /** Whether the error is "the database cannot be reached" (a server that is down or refuses work); never on SQLite. */
  isUnavailable: (err: unknown) => boolean
}

/** A create's Idempotency-Key was written first by another submit (another replica, or a race): nothing was written. */
export class IdempotencyKeyTaken extends Error {
  constructor (readonly scope: string, readonly key: string, options: { cause?: unknown } = {}) {
    super('the caller\'s Idempotency-Key was taken by another submit meanwhile', options)
    this.name = 'IdempotencyKeyTaken'
  }
}

/** The task an update names is no longer there (purged by retention since its push was authenticated): nothing was written. */
export class TaskGone extends Error {
  constructor (readonly seq: number) {
    super(`no task with seq ${seq}: it was purged`)
    this.name = 'TaskGone'
  }
}

/**
 * Whether observers are told of a committed update: its status changed, or the provider's failure replaced a
 * provisional one of ours (same status, but now final: event streams end on it). The one rule for both the task
 * module's own events and the notifications replicas send each other.
 */
export function announces (result: UpdateResult): result is Extract<UpdateResult, { ok: true }> {
  return result.ok && (result.previous !== result.task.status || result.decision.outcome === 'applied')
}

/** What applying one update to a task writes, decided once for every engine; each engine only carries it out. */
export type UpdatePlan = {
  /** Which state columns to save: with the news (the provider spoke: polling starts over), alone, or none. */
  save: 'stateWithNews' | 'news' | 'state' | null
  nextPollAt: string | null
  event: NewEvent
  /** The status change the status-change writers are told of, or null when the status stayed. */
  change: StatusChange | null
  result: Extract<UpdateResult, { ok: true }>
}

/**
 * The state machine applied to `task` as read inside the transaction (`bound`: its task_id was just bound to
 * `taskId`). The row in the result is the one the plan writes, built from what was read and changed rather than read
 * again (a push's hot path: one read, one or two writes, one insert).
 */
export function planUpdate (task: TaskRow, bound: boolean, taskId: string | null, update: StatusUpdate, source: EventSource, detail: Record<string, unknown>, at: string, scheduler: PollScheduler): UpdatePlan {
  const current = stateOf(task)
  const decision = decide(current, update)
  const changed = decision.next !== current
  let after: TaskRow = changed || bound
    ? { ...task, ...stateColumns(decision.next), task_id: bound ? taskId : task.task_id, updated_at: at }
    : task
  let save: UpdatePlan['save'] = changed ? 'state' : null
  let nextPollAt: string | null = null
  // Whatever the provider said (even a duplicate), it is alive and talking: polling starts over. The scheduler sees
  // the new state and, for a failure of ours, when it was decided (updated_at): late verdicts are polled for a while.
  if (taskId !== null || isTerminal(decision.next.status)) {
    nextPollAt = scheduler(after, Date.parse(at))
    save = changed ? 'stateWithNews' : 'news'
    after = { ...after, last_news_at: at, poll_attempts: 0, next_poll_at: nextPollAt }
  }
  const event = newEvent(task.seq, at, source, decision.reported, update.providerStatus, decision.outcome, {
    ...detail,
    ...(update.fileId ? { file_id: update.fileId } : {}),
    ...(update.error ? { error: update.error } : {})
  })
  const change = after.status !== current.status ? { task: after, previous: current.status, source } : null
  return { save, nextPollAt, event, change, result: { ok: true, task: after, decision, previous: current.status } }
}

/** When a claim made at `now` (ISO time) for leaseMs runs out, as the ISO text both engines store. */
export function leaseEnd (now: string, leaseMs: number): string {
  return new Date(Date.parse(now) + leaseMs).toISOString()
}

/**
 * How far ahead claimPastDeadline leaves a next poll alone: two leases, not one. Another pass's claim sits at its own
 * now + lease, and its now may run ahead of ours (another replica's clock, a pass that began earlier), so one lease
 * would take its claim for a far-off poll and claim the task again. A poll left alone comes due within the window and
 * applies the deadline itself.
 */
export function sparedUntil (now: string, leaseMs: number): string {
  return leaseEnd(now, 2 * leaseMs)
}
