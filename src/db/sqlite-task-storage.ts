// The task module's storage on SQLite: the transactions run synchronously inside (better-sqlite3, no await in a
// transaction) and resolve after the commit; a group of updates commits once and, at FULL, is fsynced by a WalSync.
import { isDatabaseBusy } from './database.js'
import { messageInserter, type NewMessage } from './deliveries-repository.js'
import { newEvent as event, stateOf, type ArchiveRecord, type NewTask, type TaskRow, type TasksRepository } from './tasks-repository.js'
import type { WalSync } from './wal-sync.js'
import type { VideoLink } from '../providers/provider.js'
import type { EventSource } from '../services/task-events.js'
import { queueMove, type QueueMove, type StatusUpdate, type TaskStatus } from '../services/task-state.js'
import {
  IdempotencyKeyTaken, leaseEnd, sparedUntil, TaskGone, messagesFor, planUpdate, type ChangeHooks, type IdempotencyClaim, type QueueMoveOptions, type Settled, type TaskQueries, type TaskStorage,
  type UpdateArgs, type UpdateResult
} from '../services/task-storage.js'

/** What the group commit needs of a WalSync (tests hold the flush back with their own). */
export type GroupSync = Pick<WalSync, 'unsynced' | 'flush'>

const now = (): string => new Date().toISOString()

// better-sqlite3's code for a duplicate primary key; in create, only idempotency_keys' (scope, key) can be one.
const KEY_TAKEN = 'SQLITE_CONSTRAINT_PRIMARYKEY'

export class SqliteTaskStorage implements TaskStorage {
  readonly #repo: TasksRepository
  readonly #walSync: GroupSync | null
  // The outbox's rows, written in the status change's transaction.
  readonly #insertMessage: (message: NewMessage) => void
  readonly queries: TaskQueries

  /** walSync: each group commit is fsynced after it (synchronous=FULL, see wal-sync.ts); null: durable at commit, as configured. */
  constructor (repo: TasksRepository, walSync: GroupSync | null = null) {
    this.#repo = repo
    this.#walSync = walSync
    this.#insertMessage = messageInserter(repo.db)
    this.queries = readsOf(repo)
  }

  isBusy (err: unknown): boolean { return isDatabaseBusy(err) }
  // The file is on this machine: its failures (a full disk, an I/O error) are not an outage to wait out.
  isUnavailable (): boolean { return false }

  async create (task: NewTask, idempotency: IdempotencyClaim | null, hooks: ChangeHooks): Promise<TaskRow> {
    return this.#repo.transaction(() => {
      const row = this.#repo.insertTask(task)
      this.#repo.insertEvent(event(row.seq, task.created_at, 'submit', null, null, 'created', {}))
      if (row.status === 'queued') {
        this.#repo.insertEvent(event(row.seq, task.created_at, 'submit', null, null, 'queued', {}))
        for (const message of messagesFor(hooks, { task: row, previous: row.status, source: 'submit' })) this.#insertMessage(message)
      }
      if (idempotency) {
        try {
          this.#repo.insertIdempotencyKey({ scope: idempotency.scope, key: idempotency.key, request_hash: idempotency.requestHash, task_seq: row.seq, created_at: task.created_at })
        } catch (err) {
          // The key's primary key: another submit wrote it first. The throw rolls the task back with it.
          if ((err as { code?: unknown }).code === KEY_TAKEN) throw new IdempotencyKeyTaken(idempotency.scope, idempotency.key, { cause: err })
          throw err
        }
      }
      return row
    })
  }

  async applyUpdates (batch: readonly UpdateArgs[], hooks: ChangeHooks): Promise<Settled[]> {
    const commit = () => this.#repo.transaction(() => batch.map((args) => this.#apply(hooks, ...args)))
    let results: UpdateResult[]
    try {
      results = this.#walSync ? this.#walSync.unsynced(commit) : commit()
    } catch (error) {
      // The whole group rolled back. A locked database fails every update alike; anything else was one update's
      // fault, so each goes again in a transaction of its own and only the faulty one fails (rare: no savepoints).
      if (batch.length === 1 || isDatabaseBusy(error)) throw error
      return batch.map((args): Settled => {
        try {
          return { result: this.#repo.transaction(() => this.#apply(hooks, ...args)) }
        } catch (err) {
          return { error: err }
        }
      })
    }
    // A failed fsync leaves the commit's durability unknown: its updates fail (a push is answered 500, never 200).
    if (this.#walSync) await this.#walSync.flush().catch((err: unknown) => { throw err ?? new Error('WAL sync failed') })
    return results.map((result) => ({ result }))
  }

  /** One update; runs inside a transaction and carries out planUpdate's plan. */
  #apply (hooks: ChangeHooks, seq: number, taskId: string | null, update: StatusUpdate, source: EventSource, detail: Record<string, unknown> = {}): UpdateResult {
    const at = now()
    const task = this.#repo.bySeq(seq)
    if (!task) throw new TaskGone(seq)
    let bound = false
    // taskId is null only for a create that was refused before any provider task existed
    if (taskId !== null && task.task_id === null) {
      if (this.#repo.byTaskId(taskId)) return this.#refuse(task, 'task_id_taken', source, update, { ...detail, task_id: taskId }, at)
      bound = this.#repo.bindTaskId(seq, taskId, at)
    } else if (taskId !== null && task.task_id !== taskId) {
      return this.#refuse(task, 'task_id_mismatch', source, update, { ...detail, task_id: taskId }, at)
    }
    const plan = planUpdate(task, bound, taskId, update, source, detail, at, hooks.scheduler)
    const next = plan.result.decision.next
    if (plan.save === 'stateWithNews') this.#repo.saveStateWithNews(seq, next, at, plan.nextPollAt)
    else if (plan.save === 'news') this.#repo.markNews(seq, at, plan.nextPollAt)
    else if (plan.save === 'state') this.#repo.saveState(seq, next, at)
    this.#repo.insertEvent(plan.event)
    if (plan.change) for (const message of messagesFor(hooks, plan.change)) this.#insertMessage(message)
    return plan.result
  }

  #refuse (task: TaskRow, reason: 'task_id_mismatch' | 'task_id_taken', source: EventSource, update: StatusUpdate, detail: Record<string, unknown>, at: string): UpdateResult {
    // A refused push writes nothing (anyone can send one, so it must cost nothing durable); the caller counts and logs it.
    if (source !== 'callback') this.#repo.insertEvent(event(task.seq, at, source, null, update.providerStatus, 'refused', { ...detail, reason }))
    return { ok: false, reason, task }
  }

  async moveInQueue (seq: number, move: QueueMove, options: QueueMoveOptions, hooks: ChangeHooks): Promise<UpdateResult | null> {
    const source: EventSource = move === 'cancel' ? 'cancel' : move === 'expire' ? 'timeout' : 'queue'
    return this.#repo.transaction((): UpdateResult | null => {
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
      for (const message of messagesFor(hooks, { task: after, previous: current.status, source })) this.#insertMessage(message)
      return { ok: true, task: after, decision: { outcome: 'applied', reported: null, next: stateOf(after) }, previous: current.status }
    })
  }

  async recordEvent (seq: number, source: EventSource, outcome: string, detail: Record<string, unknown>, providerStatus: string | null): Promise<void> {
    this.#repo.insertEvent(event(seq, now(), source, null, providerStatus, outcome, detail))
  }

  async saveIdempotentResponse (scope: string, key: string, status: number, body: string): Promise<void> {
    this.#repo.saveIdempotentResponse(scope, key, status, body)
  }

  async saveVideoLink (seq: number, link: VideoLink, { archive, pollingDone }: { archive: boolean, pollingDone: boolean }): Promise<TaskRow | undefined> {
    return this.#repo.transaction(() => {
      this.#repo.saveVideo(seq, link, archive ? 'pending' : null, now())
      if (pollingDone) this.#repo.reschedule(seq, null, 0)
      return this.#repo.bySeq(seq)
    })
  }

  async expireVideoLink (seq: number): Promise<void> { this.#repo.expireVideoLink(seq) }

  async pollAt (seq: number, at: string): Promise<void> { this.#repo.pollAt(seq, at) }

  async backOff (seq: number, seenStatus: TaskStatus, next: (task: TaskRow) => string | null): Promise<void> {
    this.#repo.transaction(() => {
      const fresh = this.#repo.bySeq(seq)
      if (fresh && fresh.status === seenStatus) this.#repo.reschedule(seq, next(fresh), fresh.poll_attempts + 1)
    })
  }

  async recordArchive (seq: number, archive: ArchiveRecord): Promise<boolean> { return this.#repo.saveArchive(seq, archive) }

  async purgeFinished (updatedBefore: string, limit: number): Promise<Array<{ archive_path: string | null }>> {
    return this.#repo.transaction(() => this.#repo.purgeFinished(updatedBefore, limit))
  }

  // One process claims on the file (no replicas share SQLite): the pick and the moves run with nothing in between.
  async claimDuePolls (provider: string, at: string, limit: number, leaseMs: number): Promise<TaskRow[]> {
    return this.#repo.claimDuePolls(provider, at, limit, leaseEnd(at, leaseMs))
  }

  async claimPastDeadline (createdBefore: string, at: string, limit: number, leaseMs: number): Promise<TaskRow[]> {
    return this.#repo.claimPastDeadline(createdBefore, at, limit, leaseEnd(at, leaseMs), sparedUntil(at, leaseMs))
  }

  async claimDueArchives (at: string, limit: number, leaseMs: number): Promise<TaskRow[]> {
    return this.#repo.claimDueArchives(at, limit, leaseEnd(at, leaseMs))
  }

  // One process: the task module's own events are every change there is.
  async watchRemoteChanges (): Promise<() => Promise<void>> {
    return async () => {}
  }
}

/** The repository's reads as the interface's promises (a read that throws rejects). */
function readsOf (repo: TasksRepository): TaskQueries {
  return {
    bySeq: async (seq) => repo.bySeq(seq),
    byId: async (id) => repo.byId(id),
    byTaskId: async (taskId) => repo.byTaskId(taskId),
    lookup: async (key, value, eventLimit) => repo.lookup(key, value, eventLimit),
    byFileId: async (fileId) => repo.byFileId(fileId),
    callbackTarget: async (id) => repo.callbackTarget(id),
    list: async (filter) => repo.list(filter),
    eventsOf: async (taskSeq) => repo.eventsOf(taskSeq),
    latestEvents: async (taskSeq, limit) => repo.latestEvents(taskSeq, limit),
    countEvents: async (taskSeq) => repo.countEvents(taskSeq),
    eventsAfter: async (taskSeq, afterSeq, limit) => repo.eventsAfter(taskSeq, afterSeq, limit),
    idempotencyKey: async (scope, key) => repo.idempotencyKey(scope, key),
    queueHeads: async (provider) => repo.queueHeads(provider),
    queuedByCaller: async (provider) => repo.queuedByCaller(provider),
    queuedAhead: async (provider, caller, seq) => repo.queuedAhead(provider, caller, seq),
    anyQueued: async (provider) => repo.anyQueued(provider),
    queuedOfCaller: async (caller) => repo.queuedOfCaller(caller),
    queueDepths: async () => repo.queueDepths(),
    expiredQueued: async (queuedBefore, limit) => repo.expiredQueued(queuedBefore, limit),
    submittedSince: async (caller, since) => repo.submittedSince(caller, since),
    stuckSubmitting: async (createdBefore, limit) => repo.stuckSubmitting(createdBefore, limit),
    countsByStatus: async () => repo.countsByStatus()
  }
}
