// The task module: the one gate to tasks. Named commands (each one transaction, the state machine inside) and queries,
// all asynchronous, over a storage engine it keeps private; observers learn of changes through `events` once committed.
import type { BaseLogger } from 'pino'
import type { ArchiveRecord, ListFilter, LookupKey, NewTask, TaskLookup, TaskRow } from '../db/tasks-repository.js'
import type { VideoLink } from '../providers/provider.js'
import type { QueueMove, TaskStatus } from './task-state.js'
import { TaskEvents, type EventSource } from './task-events.js'
import {
  announces, type IdempotencyClaim, type PollScheduler, type QueueMoveOptions, type StatusChangeWriter, type TaskQueries,
  type TaskStorage, type UpdateArgs, type UpdateResult
} from './task-storage.js'
import { callerScope, canSee, type Viewer } from './visibility.js'

export type { TaskQueries }

/** The little of a logger the services use, so they need neither Fastify nor a particular pino. */
export type Log = Pick<BaseLogger, 'info' | 'warn' | 'error'>

export const now = (): string => new Date().toISOString()

// Our ids are UUIDs (randomUUID); the providers' task_ids are not (MiniMax's are digits). A key is looked up first as
// what its shape says it is, then as the other: a found task costs one read, and a key of either kind is still found.
const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The key a task id or task_id is tried as first, and the other. */
export function lookupOrder (idOrTaskId: string): readonly [LookupKey, LookupKey] {
  return UUID_SHAPE.test(idOrTaskId) ? ID_FIRST : TASK_ID_FIRST
}
const ID_FIRST = ['id', 'task_id'] as const
const TASK_ID_FIRST = ['task_id', 'id'] as const

type Queued = { args: UpdateArgs, resolve: (result: UpdateResult) => void, reject: (err: unknown) => void }

export class TaskStore {
  readonly #storage: TaskStorage
  readonly #writers: StatusChangeWriter[] = []
  readonly #hooks: { scheduler: PollScheduler, writers: StatusChangeWriter[] } = { scheduler: () => null, writers: this.#writers }
  // Updates waiting for the next group commit (see applyUpdate).
  #queue: Queued[] = []
  // A group is being committed: the updates arriving meanwhile wait for it, then commit together.
  #committing = false
  // While other replicas' changes are heard (see startRemoteChanges): what ends it.
  #remote: Promise<() => Promise<void>> | null = null

  constructor (storage: TaskStorage, readonly events: TaskEvents = new TaskEvents()) {
    this.#storage = storage
  }

  /** Reads: anything may ask; nothing outside this module writes. */
  get queries (): TaskQueries { return this.#storage.queries }

  /** Whether the error means the database is locked by another connection for now (every write fails alike). */
  isBusy (err: unknown): boolean { return this.#storage.isBusy(err) }
  isUnavailable (err: unknown): boolean { return this.#storage.isUnavailable(err) }

  /** Sets the reconciler's policy for the next poll after news (runs inside each change's transaction). */
  setPollScheduler (scheduler: PollScheduler): void {
    this.#hooks.scheduler = scheduler
  }

  /** Registers a writer run in the same transaction as every status change (e.g. a notification outbox). */
  onStatusChange (writer: StatusChangeWriter): void {
    this.#writers.push(writer)
  }

  /**
   * A task by our id or by the provider's task_id, if the viewer may see it: another caller's task is undefined,
   * exactly like a missing one (so its existence does not leak). Routes look tasks up only through here.
   */
  async findFor (viewer: Viewer, idOrTaskId: string): Promise<TaskRow | undefined> {
    const [first, second] = lookupOrder(idOrTaskId)
    const by = (key: LookupKey) => key === 'id' ? this.queries.byId(idOrTaskId) : this.queries.byTaskId(idOrTaskId)
    const task = await by(first) ?? await by(second)
    return task && canSee(viewer, task) ? task : undefined
  }

  /**
   * What a lookup shows of a task (by our id or the provider's task_id) and its latest `eventLimit` events, if the
   * viewer may see it; another caller's task is undefined, as in findFor.
   */
  async lookupFor (viewer: Viewer, idOrTaskId: string, eventLimit: number): Promise<TaskLookup | undefined> {
    const [first, second] = lookupOrder(idOrTaskId)
    const found = await this.queries.lookup(first, idOrTaskId, eventLimit) ?? await this.queries.lookup(second, idOrTaskId, eventLimit)
    return found && canSee(viewer, found.task) ? found : undefined
  }

  /** A page of the tasks the viewer may see, newest first; `filter.caller` narrows an admin's view to one caller. */
  async listFor (viewer: Viewer, filter: ListFilter): Promise<TaskRow[]> {
    const scope = callerScope(viewer)
    if (scope !== undefined && filter.caller !== undefined && filter.caller !== scope) return [] // another caller's: none visible
    return await this.queries.list({ ...filter, caller: scope ?? filter.caller })
  }

  /**
   * MiniMax's GET /v1/files/retrieve: the newest task with this provider file id, or our id standing in for one
   * (providers without file ids), if the viewer may see it; another caller's is undefined like a missing one.
   */
  async findByFileIdFor (viewer: Viewer, fileId: string): Promise<TaskRow | undefined> {
    const task = await this.queries.byFileId(fileId) ?? await this.queries.byId(fileId)
    return task && canSee(viewer, task) ? task : undefined
  }

  /** A new task with its first events and the submit's Idempotency-Key (see TaskStorage.create). */
  async create (task: NewTask, idempotency: IdempotencyClaim | null = null): Promise<TaskRow> {
    return await this.#storage.create(task, idempotency, this.#hooks)
  }

  /**
   * Applies a provider's status update to a task, binding the provider's task_id first if the task has none yet
   * (MiniMax may push before its create call has answered); refuses an update for another task_id. Updates that
   * arrive in the same turn of the event loop commit together: one transaction (one fsync) for a burst of pushes
   * instead of one each, and those arriving while a group commits form the next one. Resolves only after the commit
   * is on disk: an answer sent then is never ahead of it.
   */
  applyUpdate (...args: UpdateArgs): Promise<UpdateResult> {
    return new Promise((resolve, reject) => {
      if (this.#queue.push({ args, resolve, reject }) === 1 && !this.#committing) setImmediate(() => { this.#commitQueued().catch(() => {}) })
    })
  }

  async #commitQueued (): Promise<void> {
    const batch = this.#queue
    this.#queue = []
    this.#committing = true
    const started = performance.now()
    try {
      const settled = await this.#storage.applyUpdates(batch.map((item) => item.args), this.#hooks)
      this.events.emit('dbWrite', { ms: performance.now() - started })
      settled.forEach((outcome, index) => {
        const item = batch[index]!
        if ('error' in outcome) return item.reject(outcome.error)
        this.#announce(outcome.result, item.args[3])
        item.resolve(outcome.result)
      })
    } catch (error) {
      for (const item of batch) item.reject(error)
    } finally {
      this.#committing = false
      if (this.#queue.length > 0) setImmediate(() => { this.#commitQueued().catch(() => {}) })
    }
  }

  /**
   * One of the submit queue's moves (see queueMove in task-state.ts), in one transaction with its event and the
   * status-change writers. Returns null, changing nothing, when the move does not apply to the task as it is now
   * (a cancel of a task already sent, a dispatch of a task cancelled meanwhile).
   */
  async moveInQueue (seq: number, move: QueueMove, options: QueueMoveOptions = {}): Promise<TaskRow | null> {
    const result = await this.#storage.moveInQueue(seq, move, options, this.#hooks)
    if (result === null) return null
    this.#announce(result, move === 'cancel' ? 'cancel' : move === 'expire' ? 'timeout' : 'queue')
    return result.task
  }

  /** Records something that happened to a task without changing its status (an unknown create outcome). */
  async recordEvent (seq: number, source: EventSource, outcome: string, detail: Record<string, unknown>, providerStatus: string | null = null): Promise<void> {
    await this.#storage.recordEvent(seq, source, outcome, detail, providerStatus)
  }

  /** The answer an Idempotency-Key replays from now on. */
  async saveIdempotentResponse (scope: string, key: string, status: number, body: string): Promise<void> {
    await this.#storage.saveIdempotentResponse(scope, key, status, body)
  }

  /**
   * The provider's download link for a finished task (archive: queue it for our own copy, once). `pollingDone`: the
   * link was what the polls were for, so none is due any more. Returns the task as it is now.
   */
  async saveVideoLink (seq: number, link: VideoLink, options: { archive: boolean, pollingDone: boolean }): Promise<TaskRow | undefined> {
    return await this.#storage.saveVideoLink(seq, link, options)
  }

  /** The download link stopped working before its time (a 403 from the CDN): the next use fetches a fresh one. */
  async expireVideoLink (seq: number): Promise<void> { await this.#storage.expireVideoLink(seq) }

  /** When to poll the task next (a refused push named it: soon), its count of polls without news kept. */
  async pollAt (seq: number, at: string): Promise<void> { await this.#storage.pollAt(seq, at) }

  /**
   * A poll brought no news (or failed): the next one is `next(task)` of the task as it is now, counted as one more
   * poll without news. Nothing happens when the task is gone or its status is no longer `seenStatus` (a push changed
   * it meanwhile, and that news set the schedule).
   */
  async backOff (seq: number, seenStatus: TaskStatus, next: (task: TaskRow) => string | null): Promise<void> {
    await this.#storage.backOff(seq, seenStatus, next)
  }

  /** Our own copy of the task's video: stored, to try again, or given up. False when the task is gone (purged meanwhile). */
  async recordArchive (seq: number, archive: ArchiveRecord): Promise<boolean> { return await this.#storage.recordArchive(seq, archive) }

  /**
   * Deletes up to `limit` finished tasks last updated before the cutoff, oldest first, with their history; returns
   * their archived files, to be removed once this has committed.
   */
  async purgeFinished (updatedBefore: string, limit: number): Promise<Array<{ archive_path: string | null }>> {
    return await this.#storage.purgeFinished(updatedBefore, limit)
  }

  /**
   * Claims up to `limit` of the provider's due polls for leaseMs, soonest due first (see TaskStorage.claimDuePolls):
   * no other replica polls them meanwhile; the poll's outcome then sets their real schedule.
   */
  async claimDuePolls (provider: string, now: string, limit: number, leaseMs: number): Promise<TaskRow[]> {
    return await this.#storage.claimDuePolls(provider, now, limit, leaseMs)
  }

  /** Claims up to `limit` processing tasks past their deadline for their last poll (see TaskStorage.claimPastDeadline). */
  async claimPastDeadline (createdBefore: string, now: string, limit: number, leaseMs: number): Promise<TaskRow[]> {
    return await this.#storage.claimPastDeadline(createdBefore, now, limit, leaseMs)
  }

  /** Claims up to `limit` due archives for leaseMs, oldest first; recordArchive then sets their real state. */
  async claimDueArchives (now: string, limit: number, leaseMs: number): Promise<TaskRow[]> {
    return await this.#storage.claimDueArchives(now, limit, leaseMs)
  }

  /**
   * From now on, a status change another replica commits is read and emitted as `remoteStatus` (never `status`: its
   * observers, such as the notification worker and metrics, count this replica's own changes only). Idempotent;
   * stopRemoteChanges ends it. A read that fails is logged and skipped (the waiters answer at their timeout).
   */
  async startRemoteChanges (log: Log): Promise<void> {
    this.#remote ??= this.#storage.watchRemoteChanges((seq) => {
      this.queries.bySeq(seq).then((task) => {
        if (task) this.events.emit('remoteStatus', { task })
      }, (err: unknown) => { log.warn({ err, task_seq: seq }, 'could not read a task another replica changed') })
    }, (err) => {
      log.warn({ err }, 'lost the connection that hears other replicas\' changes; making it again')
    }).catch((err: unknown) => {
      this.#remote = null
      throw err
    })
    await this.#remote
  }

  async stopRemoteChanges (): Promise<void> {
    const remote = this.#remote
    this.#remote = null
    if (remote) await (await remote)()
  }

  /**
   * Tells observers about a committed status change; also about the provider's failure replacing a provisional one
   * of ours (same status, but now final: event streams end on it).
   */
  #announce (result: UpdateResult, source: EventSource): void {
    if (announces(result)) this.events.emit('status', { task: result.task, previous: result.previous, source })
  }
}
