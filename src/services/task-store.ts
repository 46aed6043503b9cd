// The task module: the one gate to tasks. Named commands (each one transaction, the state machine inside) and queries;
// the repository behind them is private, and observers learn of changes through `events` once they are committed.
import type { BaseLogger } from 'pino'
import type { ArchiveRecord, ListFilter, NewEvent, NewTask, TaskRow, TasksRepository } from '../db/tasks-repository.js'
import type { VideoLink } from '../providers/provider.js'
import { stateColumns, stateOf } from '../db/tasks-repository.js'
import { isDatabaseBusy } from '../db/database.js'
import type { WalSync } from '../db/wal-sync.js'
import { decide, isTerminal, queueMove, type Decision, type QueueMove, type StatusUpdate, type TaskError, type TaskStatus } from './task-state.js'
import { TaskEvents, type EventSource, type StatusChange } from './task-events.js'
import { callerScope, canSee, type Viewer } from './visibility.js'

export type { EventSource }

/** What the group commit needs of a WalSync (tests hold the flush back with their own). */
export type GroupSync = Pick<WalSync, 'unsynced' | 'flush'>

/** What the task module answers questions with: the repository's reads, and none of its writes. */
export type TaskQueries = Pick<TasksRepository,
  'bySeq' | 'byId' | 'byTaskId' | 'callbackTarget' | 'eventsOf' | 'latestEvents' | 'countEvents' | 'eventsAfter' | 'idempotencyKey' |
  'queueHeads' | 'queuedByCaller' | 'queuedAhead' | 'anyQueued' | 'queuedOfCaller' | 'queueDepths' | 'expiredQueued' | 'submittedSince' |
  'duePolls' | 'stuckSubmitting' | 'pastDeadline' | 'dueArchives' | 'countsByStatus'>

/** A submit's Idempotency-Key, written with the task it created. */
export type IdempotencyClaim = { scope: string, key: string, requestHash: string }

export type UpdateResult =
  | { ok: true, task: TaskRow, decision: Decision, previous: TaskStatus }
  | { ok: false, reason: 'task_id_mismatch' | 'task_id_taken', task: TaskRow }

/** The little of a logger the services use, so they need neither Fastify nor a particular pino. */
export type Log = Pick<BaseLogger, 'info' | 'warn' | 'error'>

export const now = (): string => new Date().toISOString()

/** Runs inside the transaction that changes a status, so what it writes commits or rolls back with the change. */
export type StatusChangeWriter = (change: StatusChange) => void

/** When to poll a task next, after the provider told us something about it (null: no poll needed). */
export type PollScheduler = (task: TaskRow, now: number) => string | null

type UpdateArgs = [seq: number, taskId: string | null, update: StatusUpdate, source: EventSource, detail?: Record<string, unknown>]
type Queued = { args: UpdateArgs, resolve: (result: UpdateResult) => void, reject: (err: unknown) => void }

export class TaskStore {
  readonly #repo: TasksRepository
  readonly #writers: StatusChangeWriter[] = []
  #scheduler: PollScheduler = () => null
  // Updates waiting for the next group commit (see applyUpdateSoon).
  #queue: Queued[] = []
  readonly #walSync: GroupSync | null
  // A group's WAL sync is running: the updates arriving meanwhile wait for it to finish, then commit together.
  #syncing = false

  /** walSync: group commits are fsynced off the event loop (synchronous=FULL); null: durable at commit, as configured. */
  constructor (repo: TasksRepository, readonly events: TaskEvents = new TaskEvents(), walSync: GroupSync | null = null) {
    this.#repo = repo
    this.#walSync = walSync
  }

  /** Reads: anything may ask; nothing outside this module writes. */
  get queries (): TaskQueries { return this.#repo }

  /** Sets the reconciler's policy for the next poll after news. */
  setPollScheduler (scheduler: PollScheduler): void {
    this.#scheduler = scheduler
  }

  /** Registers a writer run in the same transaction as every status change (e.g. a notification outbox). */
  onStatusChange (writer: StatusChangeWriter): void {
    this.#writers.push(writer)
  }

  /**
   * A task by our id or by the provider's task_id, if the viewer may see it: another caller's task is undefined,
   * exactly like a missing one (so its existence does not leak). Routes look tasks up only through here.
   */
  findFor (viewer: Viewer, idOrTaskId: string): TaskRow | undefined {
    const task = this.#repo.byId(idOrTaskId) ?? this.#repo.byTaskId(idOrTaskId)
    return task && canSee(viewer, task) ? task : undefined
  }

  /** A page of the tasks the viewer may see, newest first; `filter.caller` narrows an admin's view to one caller. */
  listFor (viewer: Viewer, filter: ListFilter): TaskRow[] {
    const scope = callerScope(viewer)
    if (scope !== undefined && filter.caller !== undefined && filter.caller !== scope) return [] // another caller's: none visible
    return this.#repo.list({ ...filter, caller: scope ?? filter.caller })
  }

  /**
   * MiniMax's GET /v1/files/retrieve: the newest task with this provider file id, or our id standing in for one
   * (providers without file ids), if the viewer may see it; another caller's is undefined like a missing one.
   */
  findByFileIdFor (viewer: Viewer, fileId: string): TaskRow | undefined {
    const task = this.#repo.byFileId(fileId) ?? this.#repo.byId(fileId)
    return task && canSee(viewer, task) ? task : undefined
  }

  /**
   * Applies a provider's status update to a task, binding the provider's task_id first if the task has none yet
   * (MiniMax may push before its create call has answered). Refuses an update for another task_id.
   */
  applyUpdate (...args: UpdateArgs): UpdateResult {
    const started = performance.now()
    const result = this.#repo.transaction(() => this.#apply(...args))
    this.events.emit('dbWrite', { ms: performance.now() - started })
    this.#announce(result, args[3])
    return result
  }

  /**
   * The same as applyUpdate, but committed together with the other updates that arrive in the same turn of the
   * event loop: one transaction (one fsync) for a burst of pushes instead of one each. Resolves only after the commit
   * is on disk: an answer sent then is never ahead of it. With a WalSync the fsync runs off the event loop, and the
   * updates that arrive while it runs wait to form the next group: one commit per fsync, however fast they come.
   */
  applyUpdateSoon (...args: UpdateArgs): Promise<UpdateResult> {
    return new Promise((resolve, reject) => {
      if (this.#queue.push({ args, resolve, reject }) === 1 && !this.#syncing) setImmediate(() => this.#commitQueued())
    })
  }

  #commitQueued (): void {
    const batch = this.#queue
    this.#queue = []
    const started = performance.now()
    const commit = () => this.#repo.transaction(() => batch.map(({ args }) => this.#apply(...args)))
    let results: UpdateResult[]
    try {
      results = this.#walSync ? this.#walSync.unsynced(commit) : commit()
    } catch (error) {
      // The whole group rolled back. A locked database fails every update alike; anything else was one update's
      // fault, so each goes again in a transaction of its own and only the faulty one fails (rare: no savepoints).
      if (batch.length === 1 || isDatabaseBusy(error)) return batch.forEach((item) => item.reject(error))
      for (const item of batch) {
        try {
          item.resolve(this.applyUpdate(...item.args))
        } catch (err) {
          item.reject(err)
        }
      }
      return
    }
    this.events.emit('dbWrite', { ms: performance.now() - started })
    const settle = (error: unknown) => results.forEach((result, index) => {
      const item = batch[index]!
      if (error !== null) return item.reject(error)
      this.#announce(result, item.args[3])
      item.resolve(result)
    })
    if (!this.#walSync) return settle(null)
    this.#syncing = true
    // A failed fsync leaves the commit's durability unknown: its pushes are answered with an error, never a 200.
    this.#walSync.flush().then(() => null, (err: unknown) => err ?? new Error('WAL sync failed')).then((error) => {
      this.#syncing = false
      settle(error)
      if (this.#queue.length > 0) setImmediate(() => this.#commitQueued())
    }, () => {})
  }

  /**
   * Tells observers about a committed status change; also about the provider's failure replacing a provisional one
   * of ours (same status, but now final: event streams end on it).
   */
  #announce (result: UpdateResult, source: EventSource): void {
    if (result.ok && (result.previous !== result.task.status || result.decision.outcome === 'applied')) {
      this.events.emit('status', { task: result.task, previous: result.previous, source })
    }
  }

  /**
   * The update itself; runs inside a transaction. The row it returns is the one it wrote, built from what it read
   * and changed rather than read again (a push's hot path: one read, one or two writes, one insert).
   */
  #apply (seq: number, taskId: string | null, update: StatusUpdate, source: EventSource, detail: Record<string, unknown> = {}): UpdateResult {
    const at = now()
    const task = this.#repo.bySeq(seq)!
    let bound = false
    // taskId is null only for a create that was refused before any provider task existed
    if (taskId !== null && task.task_id === null) {
      if (this.#repo.byTaskId(taskId)) return this.#refuse(task, 'task_id_taken', source, update, { ...detail, task_id: taskId }, at)
      bound = this.#repo.bindTaskId(seq, taskId, at)
    } else if (taskId !== null && task.task_id !== taskId) {
      return this.#refuse(task, 'task_id_mismatch', source, update, { ...detail, task_id: taskId }, at)
    }
    const current = stateOf(task)
    const decision = decide(current, update)
    const changed = decision.next !== current
    let after: TaskRow = changed || bound
      ? { ...task, ...stateColumns(decision.next), task_id: bound ? taskId : task.task_id, updated_at: at }
      : task
    // Whatever the provider said (even a duplicate), it is alive and talking: polling starts over. The scheduler sees
    // the new state and, for a failure of ours, when it was decided (updated_at): late verdicts are polled for a while.
    if (taskId !== null || isTerminal(decision.next.status)) {
      const nextPollAt = this.#scheduler(after, Date.parse(at))
      if (changed) this.#repo.saveStateWithNews(seq, decision.next, at, nextPollAt)
      else this.#repo.markNews(seq, at, nextPollAt)
      after = { ...after, last_news_at: at, poll_attempts: 0, next_poll_at: nextPollAt }
    } else if (changed) {
      this.#repo.saveState(seq, decision.next, at)
    }
    this.#repo.insertEvent(event(seq, at, source, decision.reported, update.providerStatus, decision.outcome, {
      ...detail,
      ...(update.fileId ? { file_id: update.fileId } : {}),
      ...(update.error ? { error: update.error } : {})
    }))
    if (after.status !== current.status) {
      for (const write of this.#writers) write({ task: after, previous: current.status, source })
    }
    return { ok: true, task: after, decision, previous: current.status }
  }

  /**
   * A new task with its "created" event (and "queued" for a task that waits in the submit queue), and the submit's
   * Idempotency-Key, in one transaction. A queued task's first status is announced to the status-change writers
   * (notifications) like any change.
   */
  create (task: NewTask, idempotency: IdempotencyClaim | null = null): TaskRow {
    return this.#repo.transaction(() => {
      const row = this.#repo.insertTask(task)
      this.#repo.insertEvent(event(row.seq, task.created_at, 'submit', null, null, 'created', {}))
      if (row.status === 'queued') {
        this.#repo.insertEvent(event(row.seq, task.created_at, 'submit', null, null, 'queued', {}))
        for (const write of this.#writers) write({ task: row, previous: row.status, source: 'submit' })
      }
      if (idempotency) {
        this.#repo.insertIdempotencyKey({ scope: idempotency.scope, key: idempotency.key, request_hash: idempotency.requestHash, task_seq: row.seq, created_at: task.created_at })
      }
      return row
    })
  }

  /** The answer an Idempotency-Key replays from now on. */
  saveIdempotentResponse (scope: string, key: string, status: number, body: string): void {
    this.#repo.saveIdempotentResponse(scope, key, status, body)
  }

  /**
   * The provider's download link for a finished task (archive: queue it for our own copy, once). `pollingDone`: the
   * link was what the polls were for, so none is due any more; the task as it is now is returned.
   */
  saveVideoLink (seq: number, link: VideoLink, { archive, pollingDone }: { archive: boolean, pollingDone: boolean }): TaskRow | undefined {
    return this.#repo.transaction(() => {
      this.#repo.saveVideo(seq, link, archive ? 'pending' : null, now())
      if (pollingDone) this.#repo.reschedule(seq, null, 0)
      return this.#repo.bySeq(seq)
    })
  }

  /** The download link stopped working before its time (a 403 from the CDN): the next use fetches a fresh one. */
  expireVideoLink (seq: number): void { this.#repo.expireVideoLink(seq) }

  /** When to poll the task next (a refused push named it: soon), its count of polls without news kept. */
  pollAt (seq: number, at: string): void { this.#repo.pollAt(seq, at) }

  /**
   * A poll brought no news (or failed): the next one is `next(task)` of the task as it is now, counted as one more
   * poll without news. Nothing happens when the task is gone or its status is no longer `seenStatus` (a push changed
   * it meanwhile, and that news set the schedule).
   */
  backOff (seq: number, seenStatus: TaskStatus, next: (task: TaskRow) => string | null): void {
    this.#repo.transaction(() => {
      const fresh = this.#repo.bySeq(seq)
      if (fresh && fresh.status === seenStatus) this.#repo.reschedule(seq, next(fresh), fresh.poll_attempts + 1)
    })
  }

  /** Our own copy of the task's video: stored, to try again, or given up. False when the task is gone (purged meanwhile). */
  recordArchive (seq: number, archive: ArchiveRecord): boolean { return this.#repo.saveArchive(seq, archive) }

  /**
   * Deletes up to `limit` finished tasks last updated before the cutoff, oldest first, with their history; returns
   * their archived files, to be removed once this has committed.
   */
  purgeFinished (updatedBefore: string, limit: number): Array<{ archive_path: string | null }> {
    return this.#repo.transaction(() => this.#repo.purgeFinished(updatedBefore, limit))
  }

  /**
   * One of the submit queue's moves (see queueMove in task-state.ts), in one transaction with its event and the
   * status-change writers. Returns null, changing nothing, when the move does not apply to the task as it is now
   * (a cancel of a task already sent, a dispatch of a task cancelled meanwhile).
   */
  moveInQueue (seq: number, move: QueueMove, options: { queuedRequest?: string, error?: TaskError, detail?: Record<string, unknown> } = {}): TaskRow | null {
    const source: EventSource = move === 'cancel' ? 'cancel' : move === 'expire' ? 'timeout' : 'queue'
    const result = this.#repo.transaction((): UpdateResult | null => {
      const task = this.#repo.bySeq(seq)
      if (!task) return null
      const next = queueMove(task.status, move, task.task_id !== null)
      if (next === null) return null
      const at = now()
      const current = stateOf(task)
      this.#repo.saveState(seq, { ...current, status: next, error: options.error ?? current.error }, at)
      // The image and token are kept only while the task waits; sent_at starts the reconciler's deadlines.
      if (move === 'dispatch') this.#repo.setQueued(seq, null, at)
      else if (move === 'requeue') this.#repo.setQueued(seq, options.queuedRequest ?? null, null, at)
      else this.#repo.setQueued(seq, null, null)
      const outcome = { dispatch: 'dispatched', requeue: 'rate_limited', cancel: 'cancelled', expire: 'queue_timeout' }[move]
      this.#repo.insertEvent(event(seq, at, source, next, null, outcome, { ...options.detail, ...(options.error ? { error: options.error } : {}) }))
      const after = this.#repo.bySeq(seq)!
      for (const write of this.#writers) write({ task: after, previous: current.status, source })
      return { ok: true, task: after, decision: { outcome: 'applied', reported: null, next: stateOf(after) }, previous: current.status }
    })
    if (result === null) return null
    this.#announce(result, source)
    return result.task
  }

  /** Records something that happened to a task without changing its status (a refused push, an unknown outcome). */
  recordEvent (seq: number, source: EventSource, outcome: string, detail: Record<string, unknown>, providerStatus: string | null = null): void {
    this.#repo.insertEvent(event(seq, now(), source, null, providerStatus, outcome, detail))
  }

  #refuse (task: TaskRow, reason: 'task_id_mismatch' | 'task_id_taken', source: EventSource, update: StatusUpdate, detail: Record<string, unknown>, at: string): UpdateResult {
    // A refused push writes nothing (anyone can send one, so it must cost nothing durable); the caller counts and logs it.
    if (source !== 'callback') this.#repo.insertEvent(event(task.seq, at, source, null, update.providerStatus, 'refused', { ...detail, reason }))
    return { ok: false, reason, task }
  }
}

function event (taskSeq: number, at: string, source: EventSource, status: string | null, providerStatus: string | null, outcome: string, detail: Record<string, unknown>): NewEvent {
  return {
    task_seq: taskSeq,
    at,
    source,
    status,
    provider_status: providerStatus,
    outcome,
    detail: Object.keys(detail).length > 0 ? JSON.stringify(detail) : null
  }
}
