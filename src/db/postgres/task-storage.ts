// The task module's storage on PostgreSQL, shared by any number of replicas: each command is one transaction on one
// pooled connection, and a status change locks its row first, so two replicas changing one task never overwrite each
// other. The behaviour (rows, events, refusals, group commit) is SqliteTaskStorage's, statement for statement; what only
// several replicas need is here too: claims that one replica alone takes, and status changes announced to the others.
import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import { pgDriver } from './driver.js'
import { isPostgresBusy, isPostgresUnavailable } from './errors.js'
import { listen } from './listener.js'
import { APPLICATION_NAME } from './pool.js'
import { insertMessage } from './deliveries-repository.js'
import { PostgresTasksRepository, type Queryable } from './tasks-repository.js'
import { CommitError, inTransaction } from './transaction.js'
import { newEvent as event, stateOf, type ArchiveRecord, type NewTask, type TaskRow } from '../tasks-repository.js'
import type { VideoLink } from '../../providers/provider.js'
import type { EventSource } from '../../services/task-events.js'
import { queueMove, type QueueMove, type StatusUpdate, type TaskStatus } from '../../services/task-state.js'
import {
  IdempotencyKeyTaken, TaskGone, announces, leaseEnd, sparedUntil, messagesFor, planUpdate, type ChangeHooks, type IdempotencyClaim, type QueueMoveOptions, type Settled, type TaskQueries,
  type TaskStorage, type UpdateArgs, type UpdateResult
} from '../../services/task-storage.js'

const now = (): string => new Date().toISOString()

// The unique index on tasks.task_id: another replica bound the same provider task to another of our tasks meanwhile.
const UNIQUE_VIOLATION = '23505'
const TASK_ID_INDEX = 'tasks_task_id_key'
// The primary key of idempotency_keys (scope, key): another replica's submit wrote the same key first.
const IDEMPOTENCY_KEY_PK = 'idempotency_keys_pkey'

/** Where every replica announces the status changes it commits (payload: RemoteChange as JSON). */
export const STATUS_CHANNEL = 's2v_task_status'
/** The listening connection's name in pg_stat_activity, beside the pool's APPLICATION_NAME. */
export const LISTENER_APPLICATION_NAME = `${APPLICATION_NAME} listener`

/** A notification's payload: the task, and which storage instance committed the change (so it can ignore its own). */
type RemoteChange = { seq: number, from: string }

export type PostgresTaskStorageOptions = {
  /** A new client for the listening connection (default: the pool's settings, on a connection of its own). */
  listenClient?: () => pg.Client
}

export class PostgresTaskStorage implements TaskStorage {
  readonly #pool: pg.Pool
  readonly #repo = new PostgresTasksRepository()
  readonly queries: TaskQueries
  // Names this instance in the notifications it sends, so that its own listener ignores them.
  readonly #instance = randomUUID()
  readonly #listenClient: () => pg.Client

  constructor (pool: pg.Pool, options: PostgresTaskStorageOptions = {}) {
    this.#pool = pool
    this.queries = readsOf(this.#repo, pool)
    // TCP keep-alive: a connection that silently died (a dropped NAT entry, a failover) is noticed and made again.
    this.#listenClient = options.listenClient ?? (() => new (pgDriver().Client)({ ...pool.options, application_name: LISTENER_APPLICATION_NAME, keepAlive: true }))
  }

  isBusy (err: unknown): boolean { return isPostgresBusy(err) }
  isUnavailable (err: unknown): boolean { return isPostgresUnavailable(err) }

  async create (task: NewTask, idempotency: IdempotencyClaim | null, hooks: ChangeHooks): Promise<TaskRow> {
    return inTransaction(this.#pool, async (client) => {
      const row = await this.#repo.insertTask(client, task)
      if (!row) throw new Error('the new task\'s INSERT returned no row')
      await this.#repo.insertEvent(client, event(row.seq, task.created_at, 'submit', null, null, 'created', {}))
      if (row.status === 'queued') {
        await this.#repo.insertEvent(client, event(row.seq, task.created_at, 'submit', null, null, 'queued', {}))
        for (const message of messagesFor(hooks, { task: row, previous: row.status, source: 'submit' })) await insertMessage(client, message)
      }
      if (idempotency) {
        try {
          await this.#repo.insertIdempotencyKey(client, { scope: idempotency.scope, key: idempotency.key, request_hash: idempotency.requestHash, task_seq: row.seq, created_at: task.created_at })
        } catch (err) {
          // The throw rolls the task back with the key.
          const { code, constraint } = err as { code?: string, constraint?: string }
          if (code === UNIQUE_VIOLATION && constraint === IDEMPOTENCY_KEY_PK) throw new IdempotencyKeyTaken(idempotency.scope, idempotency.key, { cause: err })
          throw err
        }
      }
      return row
    })
  }

  async applyUpdates (batch: readonly UpdateArgs[], hooks: ChangeHooks): Promise<Settled[]> {
    let results: UpdateResult[]
    try {
      results = await inTransaction(this.#pool, async (client) => {
        const seqs = [...new Set(batch.map(([seq]) => seq))]
        if (seqs.length > 1) await this.#repo.lockSeqs(client, seqs)
        const applied: UpdateResult[] = []
        for (const args of batch) applied.push(await this.#apply(client, hooks, ...args))
        return applied
      })
    } catch (error) {
      // The whole group rolled back. When the database refuses every write (locks, a lost server) or the commit's
      // outcome is unknown, trying again would fail alike or apply twice; anything else was one update's fault, so
      // each goes again in a transaction of its own and only the faulty one fails, as on SQLite.
      if (batch.length === 1 || error instanceof CommitError || isPostgresBusy(error) || isPostgresUnavailable(error)) throw error
      const settled: Settled[] = []
      for (const args of batch) {
        try {
          settled.push({ result: await inTransaction(this.#pool, (client) => this.#apply(client, hooks, ...args)) })
        } catch (err) {
          settled.push({ error: err })
        }
      }
      return settled
    }
    return results.map((result) => ({ result }))
  }

  /** One update, inside a transaction with its row locked; carries out planUpdate's plan. */
  async #apply (client: pg.PoolClient, hooks: ChangeHooks, seq: number, taskId: string | null, update: StatusUpdate, source: EventSource, detail: Record<string, unknown> = {}): Promise<UpdateResult> {
    const at = now()
    const task = await this.#repo.bySeqForUpdate(client, seq)
    if (!task) throw new TaskGone(seq)
    let bound = false
    // taskId is null only for a create that was refused before any provider task existed
    if (taskId !== null && task.task_id === null) {
      if (await this.#repo.byTaskId(client, taskId)) return this.#refuse(client, task, 'task_id_taken', source, update, { ...detail, task_id: taskId }, at)
      bound = await this.#bind(client, seq, taskId, at)
      if (!bound) return this.#refuse(client, task, 'task_id_taken', source, update, { ...detail, task_id: taskId }, at)
    } else if (taskId !== null && task.task_id !== taskId) {
      return this.#refuse(client, task, 'task_id_mismatch', source, update, { ...detail, task_id: taskId }, at)
    }
    const plan = planUpdate(task, bound, taskId, update, source, detail, at, hooks.scheduler)
    const next = plan.result.decision.next
    if (plan.save === 'stateWithNews') await this.#repo.saveStateWithNews(client, seq, next, at, plan.nextPollAt)
    else if (plan.save === 'news') await this.#repo.markNews(client, seq, at, plan.nextPollAt)
    else if (plan.save === 'state') await this.#repo.saveState(client, seq, next, at)
    await this.#repo.insertEvent(client, plan.event)
    if (plan.change) for (const message of messagesFor(hooks, plan.change)) await insertMessage(client, message)
    if (announces(plan.result)) await this.#notify(client, seq)
    return plan.result
  }

  /** Other replicas' waiters hear of the change once (and only if) the transaction commits. */
  async #notify (client: pg.PoolClient, seq: number): Promise<void> {
    const change: RemoteChange = { seq, from: this.#instance }
    await this.#repo.notify(client, STATUS_CHANNEL, JSON.stringify(change))
  }

  /**
   * Binds the task_id; false when another replica's transaction bound it to another task after our check (its commit
   * makes ours break the unique index). The savepoint keeps our transaction, so that case is refused like SQLite's.
   */
  async #bind (client: pg.PoolClient, seq: number, taskId: string, at: string): Promise<boolean> {
    await client.query('SAVEPOINT bind_task_id')
    try {
      const bound = await this.#repo.bindTaskId(client, seq, taskId, at)
      await client.query('RELEASE SAVEPOINT bind_task_id')
      return bound
    } catch (err) {
      const { code, constraint } = err as { code?: string, constraint?: string }
      if (code !== UNIQUE_VIOLATION || constraint !== TASK_ID_INDEX) throw err
      await client.query('ROLLBACK TO SAVEPOINT bind_task_id')
      return false
    }
  }

  async #refuse (client: Queryable, task: TaskRow, reason: 'task_id_mismatch' | 'task_id_taken', source: EventSource, update: StatusUpdate, detail: Record<string, unknown>, at: string): Promise<UpdateResult> {
    // A refused push writes nothing (anyone can send one, so it must cost nothing durable); the caller counts and logs it.
    if (source !== 'callback') await this.#repo.insertEvent(client, event(task.seq, at, source, null, update.providerStatus, 'refused', { ...detail, reason }))
    return { ok: false, reason, task }
  }

  async moveInQueue (seq: number, move: QueueMove, options: QueueMoveOptions, hooks: ChangeHooks): Promise<UpdateResult | null> {
    const source: EventSource = move === 'cancel' ? 'cancel' : move === 'expire' ? 'timeout' : 'queue'
    return inTransaction(this.#pool, async (client): Promise<UpdateResult | null> => {
      const task = await this.#repo.bySeqForUpdate(client, seq)
      if (!task) return null
      const next = queueMove(task.status, move, task.task_id !== null)
      if (next === null) return null
      const at = now()
      const current = stateOf(task)
      await this.#repo.saveState(client, seq, { ...current, status: next, error: options.error ?? current.error }, at)
      // The image and token are kept only while the task waits; sent_at starts the reconciler's deadlines.
      const after = move === 'dispatch'
        ? await this.#repo.setQueued(client, seq, null, at)
        : move === 'requeue'
          ? await this.#repo.setQueued(client, seq, options.queuedRequest ?? null, null, at)
          : await this.#repo.setQueued(client, seq, null, null)
      const outcome = { dispatch: 'dispatched', requeue: 'rate_limited', cancel: 'cancelled', expire: 'queue_timeout' }[move]
      await this.#repo.insertEvent(client, event(seq, at, source, next, null, outcome, { ...options.detail, ...(options.error ? { error: options.error } : {}) }))
      for (const message of messagesFor(hooks, { task: after!, previous: current.status, source })) await insertMessage(client, message)
      const result: UpdateResult = { ok: true, task: after!, decision: { outcome: 'applied', reported: null, next: stateOf(after!) }, previous: current.status }
      if (announces(result)) await this.#notify(client, seq)
      return result
    })
  }

  async recordEvent (seq: number, source: EventSource, outcome: string, detail: Record<string, unknown>, providerStatus: string | null): Promise<void> {
    await this.#repo.insertEvent(this.#pool, event(seq, now(), source, null, providerStatus, outcome, detail))
  }

  async saveIdempotentResponse (scope: string, key: string, status: number, body: string): Promise<void> {
    await this.#repo.saveIdempotentResponse(this.#pool, scope, key, status, body)
  }

  async saveVideoLink (seq: number, link: VideoLink, { archive, pollingDone }: { archive: boolean, pollingDone: boolean }): Promise<TaskRow | undefined> {
    // One statement, so one transaction of its own: the link, the pending archive and the cleared schedule together.
    return this.#repo.saveVideo(this.#pool, seq, link, archive ? 'pending' : null, now(), pollingDone)
  }

  async expireVideoLink (seq: number): Promise<void> { await this.#repo.expireVideoLink(this.#pool, seq) }

  async pollAt (seq: number, at: string): Promise<void> { await this.#repo.pollAt(this.#pool, seq, at) }

  async backOff (seq: number, seenStatus: TaskStatus, next: (task: TaskRow) => string | null): Promise<void> {
    // Under the row's lock: a push another replica applies meanwhile either commits first (its status is seen and
    // nothing is rescheduled) or waits for this.
    await inTransaction(this.#pool, async (client) => {
      const fresh = await this.#repo.bySeqForUpdate(client, seq)
      if (fresh && fresh.status === seenStatus) await this.#repo.reschedule(client, seq, next(fresh), fresh.poll_attempts + 1)
    })
  }

  async recordArchive (seq: number, archive: ArchiveRecord): Promise<boolean> { return this.#repo.saveArchive(this.#pool, seq, archive) }

  async purgeFinished (updatedBefore: string, limit: number): Promise<Array<{ archive_path: string | null }>> {
    const purged = await this.#repo.purgeFinished(this.#pool, updatedBefore, limit)
    // Retention's tick: a purge appended a delta per task it deleted; the fold keeps task_counts small even when no
    // count is read (countsByStatus folds too).
    if (purged.length > 0) await this.#repo.foldCounts(this.#pool)
    return purged
  }

  // One statement each (see the repository): picked, locked past other replicas' claims, and moved, at once.
  async claimDuePolls (provider: string, at: string, limit: number, leaseMs: number): Promise<TaskRow[]> {
    return this.#repo.claimDuePolls(this.#pool, provider, at, limit, leaseEnd(at, leaseMs))
  }

  async claimPastDeadline (createdBefore: string, at: string, limit: number, leaseMs: number): Promise<TaskRow[]> {
    return this.#repo.claimPastDeadline(this.#pool, createdBefore, at, limit, leaseEnd(at, leaseMs), sparedUntil(at, leaseMs))
  }

  async claimDueArchives (at: string, limit: number, leaseMs: number): Promise<TaskRow[]> {
    return this.#repo.claimDueArchives(this.#pool, at, limit, leaseEnd(at, leaseMs))
  }

  async watchRemoteChanges (onChange: (seq: number) => void, onError: (err: unknown) => void): Promise<() => Promise<void>> {
    return listen({
      client: this.#listenClient,
      channel: STATUS_CHANNEL,
      onPayload: (payload) => {
        const change = parseChange(payload)
        if (change && change.from !== this.#instance) onChange(change.seq)
      },
      onError
    })
  }
}

/** A notification's payload, or null for one that is not ours (anyone with access may NOTIFY on the channel). */
function parseChange (payload: string): RemoteChange | null {
  try {
    const { seq, from } = JSON.parse(payload) as Partial<RemoteChange>
    return Number.isSafeInteger(seq) && typeof from === 'string' ? { seq: seq!, from } : null
  } catch {
    return null
  }
}

/** The repository's reads on the pool, each a statement of its own. */
function readsOf (repo: PostgresTasksRepository, pool: pg.Pool): TaskQueries {
  return {
    bySeq: (seq) => repo.bySeq(pool, seq),
    byId: (id) => repo.byId(pool, id),
    byTaskId: (taskId) => repo.byTaskId(pool, taskId),
    lookup: (key, value, eventLimit) => repo.lookup(pool, key, value, eventLimit),
    byFileId: (fileId) => repo.byFileId(pool, fileId),
    callbackTarget: (id) => repo.callbackTarget(pool, id),
    list: (filter) => repo.list(pool, filter),
    eventsOf: (taskSeq) => repo.eventsOf(pool, taskSeq),
    latestEvents: (taskSeq, limit) => repo.latestEvents(pool, taskSeq, limit),
    countEvents: (taskSeq) => repo.countEvents(pool, taskSeq),
    eventsAfter: (taskSeq, afterSeq, limit) => repo.eventsAfter(pool, taskSeq, afterSeq, limit),
    idempotencyKey: (scope, key) => repo.idempotencyKey(pool, scope, key),
    queueHeads: (provider) => repo.queueHeads(pool, provider),
    queuedByCaller: (provider) => repo.queuedByCaller(pool, provider),
    queuedAhead: (provider, caller, seq) => repo.queuedAhead(pool, provider, caller, seq),
    anyQueued: (provider) => repo.anyQueued(pool, provider),
    queuedOfCaller: (caller) => repo.queuedOfCaller(pool, caller),
    queueDepths: () => repo.queueDepths(pool),
    expiredQueued: (queuedBefore, limit) => repo.expiredQueued(pool, queuedBefore, limit),
    submittedSince: (caller, since) => repo.submittedSince(pool, caller, since),
    stuckSubmitting: (createdBefore, limit) => repo.stuckSubmitting(pool, createdBefore, limit),
    countsByStatus: () => repo.countsByStatus(pool)
  }
}
