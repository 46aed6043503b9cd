// All SQL on tasks, their events and idempotency keys, on PostgreSQL: the statements of ../tasks-repository.ts, named
// so each connection prepares them once, as async methods on a pool (a read) or a transaction's client (a write).
import { namedStatements, type Queryable } from './statements.js'
import type { VideoLink } from '../../providers/provider.js'
import type { TaskState, TaskStatus } from '../../services/task-state.js'
import {
  LOOKUP_COLUMNS, stateColumns, type ArchiveRecord, type CallbackTarget, type EventRow, type IdempotencyRow, type ListFilter,
  type LookupEvent, type LookupKey, type LookupTask, type NewEvent, type NewTask, type QueueHead, type TaskLookup, type TaskRow
} from '../tasks-repository.js'

export type { Queryable }

// A search term this short matches our ids by prefix too often to mean anything; it still matches exactly (as SQLite's).
const MIN_ID_PREFIX = 4
// task_counts' rows (deltas, see migrations/postgres/002) past which a count folds them: summing a thousand short rows
// takes well under a millisecond, and a busy service reaches it within minutes between two metrics scrapes.
export const FOLD_COUNTS_AFTER_ROWS = 1000
// The advisory lock key of a fold (ASCII 's2v-fold'): one fold at a time, so two never delete the same rows.
export const FOLD_COUNTS_LOCK_KEY = 0x7332762d666f6c64n

// What a lookup shows of a task (LOOKUP_COLUMNS), by one key; its events come from latestEvents. Two statements, not
// SQLite's one: the same single statement here (the events aggregated by json_agg) took the server's execution time
// per lookup from 263 to 731 µs (bench pg_lookup, 10^5 tasks, back to back at load ~4.8), while it cut the replicas'
// CPU from 733 to 468 µs and raised the rate from 1,215 to 1,972/s. The server's time is not in the bench's CPU
// figure, so that was not taken as a win; why the aggregate costs so much here (a generic plan for LIMIT $2?) is open.
function lookupSql (key: LookupKey): string {
  return `SELECT ${LOOKUP_COLUMNS.join(', ')} FROM tasks WHERE ${key} = $1`
}

// Text orderings of names (callers) in byte order, as SQLite's BINARY collation sorts them, whatever the database's
// default collation; the iso_time columns have "C" from their domain already (migrations/postgres/001-init.sql).
const statements = {
  insertTask: `
    INSERT INTO tasks (id, provider, model, status, prompt, prompt_optimizer, image_ref, metadata, callback_token_hash, caller, created_at, updated_at, notify_url, next_poll_at,
      queued_request, queued_at, sent_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15, $16)
    RETURNING *`,
  bySeq: 'SELECT * FROM tasks WHERE seq = $1',
  // A status change reads its row under a lock held to the commit: a second replica's change to the same task waits
  // for it, then reads what it wrote.
  bySeqForUpdate: 'SELECT * FROM tasks WHERE seq = $1 FOR UPDATE',
  // A group's rows, locked in one order (seq) by every replica, so two groups sharing tasks never deadlock.
  lockSeqs: 'SELECT seq FROM tasks WHERE seq = ANY($1::bigint[]) ORDER BY seq FOR UPDATE',
  byId: 'SELECT * FROM tasks WHERE id = $1',
  callbackTarget: 'SELECT seq, id, callback_token_hash FROM tasks WHERE id = $1',
  byTaskId: 'SELECT * FROM tasks WHERE task_id = $1',
  lookupById: lookupSql('id'),
  lookupByTaskId: lookupSql('task_id'),
  // file_id is not unique in the schema (the provider owns it); the newest task with it wins.
  byFileId: 'SELECT * FROM tasks WHERE file_id = $1 ORDER BY seq DESC LIMIT 1',
  bindTaskId: 'UPDATE tasks SET task_id = $2, updated_at = $3 WHERE seq = $1 AND task_id IS NULL',
  saveState: `
    UPDATE tasks SET status = $2, provider_status = $3, file_id = $4, error_code = $5, error_message = $6, error_provisional = $7, updated_at = $8
    WHERE seq = $1`,
  // A change the provider told us about: the new state and the news (polling starts over) in one statement.
  saveStateWithNews: `
    UPDATE tasks SET status = $2, provider_status = $3, file_id = $4, error_code = $5, error_message = $6, error_provisional = $7, updated_at = $8,
      last_news_at = $8, poll_attempts = 0, next_poll_at = $9
    WHERE seq = $1`,
  markNews: 'UPDATE tasks SET last_news_at = $2, poll_attempts = 0, next_poll_at = $3 WHERE seq = $1',
  reschedule: 'UPDATE tasks SET next_poll_at = $2, poll_attempts = $3 WHERE seq = $1',
  pollAt: 'UPDATE tasks SET next_poll_at = $2 WHERE seq = $1',
  // Keeps (or clears) what a queued task needs to be sent, when it was sent, when it first entered the queue.
  setQueued: 'UPDATE tasks SET queued_request = $2, sent_at = $3, queued_at = COALESCE(queued_at, $4) WHERE seq = $1 RETURNING *',
  // SQLite's saveVideo and, when polling is done, its reschedule(seq, null, 0), in one statement.
  saveVideo: `
    UPDATE tasks SET video_url = $2, video_expires_at = $3,
      video_width = COALESCE($4, video_width), video_height = COALESCE($5, video_height), video_bytes = COALESCE($6, video_bytes),
      archive_state = COALESCE(archive_state, $7::text),
      archive_next_at = CASE WHEN archive_state IS NULL AND $7::text IS NOT NULL THEN $8 ELSE archive_next_at END,
      next_poll_at = CASE WHEN $9::boolean THEN NULL ELSE next_poll_at END,
      poll_attempts = CASE WHEN $9::boolean THEN 0 ELSE poll_attempts END
    WHERE seq = $1
    RETURNING *`,
  expireVideoLink: "UPDATE tasks SET video_expires_at = '1970-01-01T00:00:00.000Z' WHERE seq = $1",
  saveArchive: `
    UPDATE tasks SET archive_state = $2, archive_path = $3, archive_bytes = $4, archive_sha256 = $5, archive_attempts = $6, archive_next_at = $7
    WHERE seq = $1`,
  insertEvent: `
    INSERT INTO task_events (task_seq, at, source, status, provider_status, outcome, detail)
    VALUES ($1, $2, $3, $4, $5, $6, $7)`,
  eventsOf: 'SELECT * FROM task_events WHERE task_seq = $1 ORDER BY seq',
  // The newest n along the (task_seq, seq) index from its end (turned oldest first in JS, as SQLite's repository does).
  latestEvents: 'SELECT at, source, status, provider_status, outcome FROM task_events WHERE task_seq = $1 ORDER BY seq DESC LIMIT $2',
  countEvents: 'SELECT count(*) AS n FROM task_events WHERE task_seq = $1',
  eventsAfter: 'SELECT * FROM task_events WHERE task_seq = $1 AND seq > $2 ORDER BY seq LIMIT $3',
  listAll: 'SELECT * FROM tasks WHERE seq < $1 ORDER BY seq DESC LIMIT $2',
  listByStatus: 'SELECT * FROM tasks WHERE status = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3',
  listOfCaller: 'SELECT * FROM tasks WHERE caller = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3',
  listOfCallerByStatus: 'SELECT * FROM tasks WHERE caller = $1 AND status = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4',
  // Every combination of the dashboard's filters (a NULL parameter means "any"), newest first. As in SQLite: the id
  // prefix is matched case-insensitively (SQLite's LIKE folds ASCII; our ids are ASCII), and metadata matches when one
  // of its values (json_each's: an object's members, an array's elements, or a scalar itself; not nested ones) is a
  // string or a number whose text is the term.
  listFiltered: `
    SELECT * FROM tasks WHERE seq < $1
      AND ($3::text IS NULL OR status = $3::text)
      AND ($4::text IS NULL OR provider = $4::text)
      AND ($5::text IS NULL OR caller = $5::text)
      AND ($6::text IS NULL OR id = $6::text OR task_id = $6::text OR id ILIKE $7::text ESCAPE '\\'
        OR EXISTS (
          SELECT 1 FROM (SELECT metadata::jsonb AS doc) AS d, LATERAL (
            SELECT value FROM jsonb_each(CASE WHEN jsonb_typeof(d.doc) = 'object' THEN d.doc END)
            UNION ALL SELECT value FROM jsonb_array_elements(CASE WHEN jsonb_typeof(d.doc) = 'array' THEN d.doc END)
            UNION ALL SELECT d.doc WHERE jsonb_typeof(d.doc) IN ('string', 'number')
          ) AS v (value)
          WHERE jsonb_typeof(v.value) IN ('string', 'number') AND v.value #>> '{}' = $6::text))
    ORDER BY seq DESC LIMIT $2`,
  idempotencyKey: 'SELECT * FROM idempotency_keys WHERE scope = $1 AND key = $2',
  insertIdempotencyKey: 'INSERT INTO idempotency_keys (scope, key, request_hash, task_seq, created_at) VALUES ($1, $2, $3, $4, $5)',
  saveIdempotentResponse: 'UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE scope = $1 AND key = $2',
  // Work for one replica only: the due rows are locked as they are picked and moved to the lease's end ($4) in the
  // same statement. Rows another transaction holds (another replica's claim, a push) are skipped, not waited for; a
  // row whose claim committed after this statement's snapshot is checked again once locked (READ COMMITTED) and
  // dropped, its next_poll_at being past $2 by then. RETURNING has no order: the rows come back soonest due first.
  claimDuePolls: `
    WITH due AS (
      SELECT seq, next_poll_at AS due_at FROM tasks
      WHERE provider = $1 AND next_poll_at IS NOT NULL AND next_poll_at <= $2
      ORDER BY next_poll_at, seq LIMIT $3
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE tasks SET next_poll_at = $4 FROM due WHERE tasks.seq = due.seq RETURNING tasks.*
    )
    SELECT claimed.* FROM claimed JOIN due USING (seq) ORDER BY due.due_at, claimed.seq`,
  stuckSubmitting: "SELECT * FROM tasks WHERE status = 'submitting' AND task_id IS NULL AND COALESCE(sent_at, created_at) < $1 ORDER BY seq LIMIT $2",
  // As claimDuePolls, for processing tasks created before $1 whose next poll is not within a lease (at $4 or sooner it
  // may be another replica's claim, and comes due soon anyway).
  claimPastDeadline: `
    WITH due AS (
      SELECT seq FROM tasks
      WHERE status = 'processing' AND COALESCE(sent_at, created_at) < $1 AND (next_poll_at IS NULL OR next_poll_at <= $2 OR next_poll_at > $5)
      ORDER BY seq LIMIT $3
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE tasks SET next_poll_at = $4 FROM due WHERE tasks.seq = due.seq RETURNING tasks.*
    )
    SELECT * FROM claimed ORDER BY seq`,
  // As claimDuePolls, for the pending archives.
  claimDueArchives: `
    WITH due AS (
      SELECT seq, archive_next_at AS due_at FROM tasks
      WHERE archive_state = 'pending' AND archive_next_at <= $1
      ORDER BY archive_next_at, seq LIMIT $2
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE tasks SET archive_next_at = $3 FROM due WHERE tasks.seq = due.seq RETURNING tasks.*
    )
    SELECT claimed.* FROM claimed JOIN due USING (seq) ORDER BY due.due_at, claimed.seq`,
  queueHeads: 'SELECT caller, MIN(seq) AS seq FROM tasks WHERE status = \'queued\' AND provider = $1 GROUP BY caller ORDER BY caller COLLATE "C"',
  queuedByCaller: 'SELECT caller, count(*) AS n FROM tasks WHERE status = \'queued\' AND provider = $1 GROUP BY caller ORDER BY caller COLLATE "C"',
  queuedAhead: "SELECT count(*) AS n FROM tasks WHERE status = 'queued' AND provider = $1 AND caller = $2 AND seq < $3",
  anyQueued: "SELECT 1 AS one FROM tasks WHERE status = 'queued' AND provider = $1 LIMIT 1",
  queuedOfCaller: "SELECT count(*) AS n FROM tasks WHERE status = 'queued' AND caller = $1",
  queueDepths: "SELECT provider, caller, count(*) AS n FROM tasks WHERE status = 'queued' GROUP BY provider, caller",
  expiredQueued: "SELECT * FROM tasks WHERE status = 'queued' AND queued_at < $1 ORDER BY seq LIMIT $2",
  // Cancelled tasks were never sent, so they give their place in the quota back.
  submittedSince: "SELECT count(*) AS n FROM tasks WHERE caller = $1 AND created_at >= $2 AND (error_code IS NULL OR error_code <> 'cancelled')",
  notify: 'SELECT pg_notify($1, $2)',
  // Deltas appended by triggers (migrations/postgres/002-task-count-deltas.sql), summed; ordered as SQLite's table
  // is (its primary key). rows: how many there are, to know when to fold.
  countsByStatus: 'SELECT status, sum(n)::bigint AS n, count(*)::bigint AS rows FROM task_counts GROUP BY status ORDER BY status COLLATE "C"',
  // The deltas summed into one row per status, in one statement: what it deletes it inserts back as sums, so a count
  // read at any moment is the same before and after. A status keeps its row when it sums to 0. The lock is tried
  // once (an InitPlan): a replica that does not get it deletes nothing, another replica is folding.
  foldCounts: `
    WITH folded AS (
      DELETE FROM task_counts WHERE (SELECT pg_try_advisory_xact_lock($1::bigint)) RETURNING status, n
    )
    INSERT INTO task_counts (status, n) SELECT status, sum(n) FROM folded GROUP BY status`,
  // The oldest finished tasks along the partial index tasks_terminal_by_age; events, idempotency keys and deliveries go
  // by ON DELETE CASCADE. SKIP LOCKED: two replicas purging at once take different tasks, and none waits on a task
  // that a push is changing right now (it is not finished for long enough to matter).
  purgeFinished: `
    DELETE FROM tasks WHERE seq IN (
      SELECT seq FROM tasks WHERE status IN ('success', 'failed') AND updated_at < $1
      ORDER BY updated_at LIMIT $2
      FOR UPDATE SKIP LOCKED
    )
    RETURNING archive_path`
} as const

const { rows, changes } = namedStatements('tasks', statements)
type Name = keyof typeof statements

async function count (db: Queryable, name: Name, values: unknown[]): Promise<number> {
  return (await rows<{ n: number }>(db, name, values))[0]!.n
}

const first = <R>(found: R[]): R | undefined => found[0]

export class PostgresTasksRepository {
  insertTask (db: Queryable, task: NewTask): Promise<TaskRow | undefined> {
    return rows<TaskRow>(db, 'insertTask', [task.id, task.provider, task.model, task.status, task.prompt, task.prompt_optimizer, task.image_ref, task.metadata,
      task.callback_token_hash, task.caller, task.created_at, task.notify_url, task.next_poll_at, task.queued_request ?? null, task.queued_at ?? null,
      task.sent_at ?? null]).then(first)
  }

  async bySeq (db: Queryable, seq: number): Promise<TaskRow | undefined> { return first(await rows<TaskRow>(db, 'bySeq', [seq])) }
  /** The row, locked until the transaction ends; only inside one. */
  async bySeqForUpdate (db: Queryable, seq: number): Promise<TaskRow | undefined> { return first(await rows<TaskRow>(db, 'bySeqForUpdate', [seq])) }
  /** Locks the rows of these tasks in seq order; only inside a transaction. */
  async lockSeqs (db: Queryable, seqs: readonly number[]): Promise<void> { await rows(db, 'lockSeqs', [[...seqs]]) }
  async byId (db: Queryable, id: string): Promise<TaskRow | undefined> { return first(await rows<TaskRow>(db, 'byId', [id])) }
  async callbackTarget (db: Queryable, id: string): Promise<CallbackTarget | undefined> { return first(await rows<CallbackTarget>(db, 'callbackTarget', [id])) }
  async byTaskId (db: Queryable, taskId: string): Promise<TaskRow | undefined> { return first(await rows<TaskRow>(db, 'byTaskId', [taskId])) }
  /** The task by our id or the provider's task_id with its latest `eventLimit` events, oldest first (see lookupSql). */
  async lookup (db: Queryable, key: LookupKey, value: string, eventLimit: number): Promise<TaskLookup | undefined> {
    const task = first(await rows<LookupTask>(db, key === 'id' ? 'lookupById' : 'lookupByTaskId', [value]))
    return task && { task, events: await this.latestEvents(db, task.seq, eventLimit) }
  }

  async byFileId (db: Queryable, fileId: string): Promise<TaskRow | undefined> { return first(await rows<TaskRow>(db, 'byFileId', [fileId])) }

  /** Binds the provider's task_id to a row that has none yet; false when the row already had one. */
  async bindTaskId (db: Queryable, seq: number, taskId: string, at: string): Promise<boolean> {
    return await changes(db, 'bindTaskId', [seq, taskId, at]) === 1
  }

  async saveState (db: Queryable, seq: number, state: TaskState, at: string): Promise<void> {
    await changes(db, 'saveState', [seq, ...stateValues(state), at])
  }

  /** saveState and markNews at once (at is both updated_at and last_news_at). */
  async saveStateWithNews (db: Queryable, seq: number, state: TaskState, at: string, nextPollAt: string | null): Promise<void> {
    await changes(db, 'saveStateWithNews', [seq, ...stateValues(state), at, nextPollAt])
  }

  /** The provider told us something: polling starts over from the quiet period. */
  async markNews (db: Queryable, seq: number, at: string, nextPollAt: string | null): Promise<void> { await changes(db, 'markNews', [seq, at, nextPollAt]) }
  /** A poll brought no news (or failed): ask again later. */
  async reschedule (db: Queryable, seq: number, nextPollAt: string | null, attempts: number): Promise<void> {
    await changes(db, 'reschedule', [seq, nextPollAt, attempts])
  }

  /** Moves the next poll, its count of polls without news kept. */
  async pollAt (db: Queryable, seq: number, at: string): Promise<void> { await changes(db, 'pollAt', [seq, at]) }

  /** Keeps (or clears) the queued request and sent_at, sets queued_at the first time; the row as it is now. */
  async setQueued (db: Queryable, seq: number, queuedRequest: string | null, sentAt: string | null, queuedAt: string | null = null): Promise<TaskRow | undefined> {
    return first(await rows<TaskRow>(db, 'setQueued', [seq, queuedRequest, sentAt, queuedAt]))
  }

  /** The provider's download link; the archive becomes pending the first time; pollingDone clears the poll schedule. */
  async saveVideo (db: Queryable, seq: number, video: VideoLink, archive: 'pending' | null, at: string, pollingDone: boolean): Promise<TaskRow | undefined> {
    return first(await rows<TaskRow>(db, 'saveVideo', [seq, video.url, video.expiresAt, video.width, video.height, video.bytes ?? null, archive, at, pollingDone]))
  }

  /** The download link stopped working before its time (a 403 from the CDN): the next use fetches a fresh one. */
  async expireVideoLink (db: Queryable, seq: number): Promise<void> { await changes(db, 'expireVideoLink', [seq]) }

  /** False when the task is gone (purged meanwhile). */
  async saveArchive (db: Queryable, seq: number, archive: ArchiveRecord): Promise<boolean> {
    return await changes(db, 'saveArchive', [seq, archive.state, archive.path, archive.bytes, archive.sha256, archive.attempts, archive.nextAt]) === 1
  }

  async insertEvent (db: Queryable, event: NewEvent): Promise<void> {
    await changes(db, 'insertEvent', [event.task_seq, event.at, event.source, event.status, event.provider_status, event.outcome, event.detail])
  }

  eventsOf (db: Queryable, taskSeq: number): Promise<EventRow[]> { return rows<EventRow>(db, 'eventsOf', [taskSeq]) }
  /** The latest `limit` events, oldest first, as a lookup shows them. */
  async latestEvents (db: Queryable, taskSeq: number, limit: number): Promise<LookupEvent[]> {
    return (await rows<LookupEvent>(db, 'latestEvents', [taskSeq, limit])).reverse()
  }

  countEvents (db: Queryable, taskSeq: number): Promise<number> { return count(db, 'countEvents', [taskSeq]) }
  eventsAfter (db: Queryable, taskSeq: number, afterSeq: number, limit: number): Promise<EventRow[]> {
    return rows<EventRow>(db, 'eventsAfter', [taskSeq, afterSeq, limit])
  }

  /** Newest first, as ../tasks-repository.ts lists: one statement per combination that has an index of its own. */
  list (db: Queryable, { status, provider, caller, search, beforeSeq = Number.MAX_SAFE_INTEGER, limit }: ListFilter): Promise<TaskRow[]> {
    if (provider !== undefined || search !== undefined) {
      const prefix = search !== undefined && search.length >= MIN_ID_PREFIX ? `${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null
      return rows<TaskRow>(db, 'listFiltered', [beforeSeq, limit, status ?? null, provider ?? null, caller ?? null, search ?? null, prefix])
    }
    if (caller !== undefined) {
      return status ? rows<TaskRow>(db, 'listOfCallerByStatus', [caller, status, beforeSeq, limit]) : rows<TaskRow>(db, 'listOfCaller', [caller, beforeSeq, limit])
    }
    return status ? rows<TaskRow>(db, 'listByStatus', [status, beforeSeq, limit]) : rows<TaskRow>(db, 'listAll', [beforeSeq, limit])
  }

  async idempotencyKey (db: Queryable, scope: string, key: string): Promise<IdempotencyRow | undefined> {
    return first(await rows<IdempotencyRow>(db, 'idempotencyKey', [scope, key]))
  }

  async insertIdempotencyKey (db: Queryable, row: Omit<IdempotencyRow, 'response_status' | 'response_body'>): Promise<void> {
    await changes(db, 'insertIdempotencyKey', [row.scope, row.key, row.request_hash, row.task_seq, row.created_at])
  }

  async saveIdempotentResponse (db: Queryable, scope: string, key: string, status: number, body: string): Promise<void> {
    await changes(db, 'saveIdempotentResponse', [scope, key, status, body])
  }

  /** Up to `limit` of the provider's due polls at `now`, soonest first, moved to `until`: the rows as claimed. */
  claimDuePolls (db: Queryable, provider: string, now: string, limit: number, until: string): Promise<TaskRow[]> {
    return rows<TaskRow>(db, 'claimDuePolls', [provider, now, limit, until])
  }

  /** Tasks whose create outcome stayed unknown (no task_id) since before the cutoff. */
  stuckSubmitting (db: Queryable, createdBefore: string, limit: number): Promise<TaskRow[]> { return rows<TaskRow>(db, 'stuckSubmitting', [createdBefore, limit]) }
  /** Processing tasks created (or sent) before the cutoff and not under a claim, moved to `until`: the rows as claimed. */
  claimPastDeadline (db: Queryable, createdBefore: string, now: string, limit: number, until: string, spared: string): Promise<TaskRow[]> {
    return rows<TaskRow>(db, 'claimPastDeadline', [createdBefore, now, limit, until, spared])
  }

  /** Up to `limit` pending archives due at `now`, oldest first, moved to `until`: the rows as claimed. */
  claimDueArchives (db: Queryable, now: string, limit: number, until: string): Promise<TaskRow[]> {
    return rows<TaskRow>(db, 'claimDueArchives', [now, limit, until])
  }

  /** Tells every listening replica (LISTEN on the channel) of a change; delivered only if the transaction commits. */
  async notify (db: Queryable, channel: string, payload: string): Promise<void> { await changes(db, 'notify', [channel, payload]) }

  /** Each caller's oldest queued task for the provider, by caller name. */
  queueHeads (db: Queryable, provider: string): Promise<QueueHead[]> { return rows<QueueHead>(db, 'queueHeads', [provider]) }
  /** How many tasks each caller has queued for the provider, by caller name. */
  queuedByCaller (db: Queryable, provider: string): Promise<Array<{ caller: string, n: number }>> { return rows(db, 'queuedByCaller', [provider]) }
  /** How many of the caller's tasks for the provider were queued before this one. */
  queuedAhead (db: Queryable, provider: string, caller: string, seq: number): Promise<number> { return count(db, 'queuedAhead', [provider, caller, seq]) }
  async anyQueued (db: Queryable, provider: string): Promise<boolean> { return (await rows(db, 'anyQueued', [provider])).length > 0 }
  /** The caller's queued tasks, for every provider. */
  queuedOfCaller (db: Queryable, caller: string): Promise<number> { return count(db, 'queuedOfCaller', [caller]) }
  queueDepths (db: Queryable): Promise<Array<{ provider: string, caller: string, n: number }>> { return rows(db, 'queueDepths', []) }
  /** Queued tasks that entered the queue before the cutoff. */
  expiredQueued (db: Queryable, queuedBefore: string, limit: number): Promise<TaskRow[]> { return rows<TaskRow>(db, 'expiredQueued', [queuedBefore, limit]) }
  /** Tasks the caller submitted since the time (a UTC midnight), cancelled ones excepted. */
  submittedSince (db: Queryable, caller: string, since: string): Promise<number> { return count(db, 'submittedSince', [caller, since]) }

  /** Tasks per status (the deltas summed); folds them first when there are more than FOLD_COUNTS_AFTER_ROWS. */
  async countsByStatus (db: Queryable): Promise<Array<{ status: TaskStatus, n: number }>> {
    const counted = await rows<{ status: TaskStatus, n: number, rows: number }>(db, 'countsByStatus', [])
    // Folded after the read: the sums are the same either way, and the next count reads five rows.
    if (counted.reduce((sum, row) => sum + row.rows, 0) > FOLD_COUNTS_AFTER_ROWS) await this.foldCounts(db)
    return counted.map(({ status, n }) => ({ status, n }))
  }

  /** Sums task_counts' deltas into one row per status, unless another replica is at it; statement of its own. */
  async foldCounts (db: Queryable): Promise<void> { await changes(db, 'foldCounts', [FOLD_COUNTS_LOCK_KEY.toString()]) }
  /** Deletes finished tasks last updated before the cutoff, oldest first (their events and keys by cascade). */
  purgeFinished (db: Queryable, updatedBefore: string, limit: number): Promise<Array<{ archive_path: string | null }>> {
    return rows(db, 'purgeFinished', [updatedBefore, limit])
  }
}

/** A state as saveState's $2..$7. */
function stateValues (state: TaskState): unknown[] {
  const columns = stateColumns(state)
  return [columns.status, columns.provider_status, columns.file_id, columns.error_code, columns.error_message, columns.error_provisional]
}
