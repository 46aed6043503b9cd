// All SQL on tasks, their events and idempotency keys: statements prepared once, synchronous methods. Only the task
// module (services/task-store.ts) holds one: every write goes through its commands.
import type Database from 'better-sqlite3'
import type { Db } from './database.js'
import type { VideoLink } from '../providers/provider.js'
import type { TaskError, TaskState, TaskStatus } from '../services/task-state.js'

export type TaskRow = {
  seq: number
  id: string
  provider: string
  task_id: string | null
  model: string
  status: TaskStatus
  provider_status: string | null
  file_id: string | null
  error_code: string | null
  error_message: string | null
  /** 1 when this service decided the failure itself (provisional: the provider's verdict may still replace it). */
  error_provisional: 0 | 1
  prompt: string | null
  prompt_optimizer: 0 | 1 | null
  image_ref: string
  metadata: string | null
  callback_token_hash: Buffer
  caller: string
  created_at: string
  updated_at: string
  next_poll_at: string | null
  poll_attempts: number
  last_news_at: string | null
  video_url: string | null
  video_expires_at: string | null
  video_width: number | null
  video_height: number | null
  video_bytes: number | null
  archive_state: 'pending' | 'stored' | 'failed' | null
  archive_path: string | null
  archive_bytes: number | null
  archive_sha256: string | null
  archive_attempts: number
  archive_next_at: string | null
  notify_url: string | null
  /** While queued: the create request and callback token as JSON (see services/submit-queue.ts). */
  queued_request: string | null
  queued_at: string | null
  sent_at: string | null
}

export type NewTask = Pick<TaskRow, 'id' | 'provider' | 'model' | 'status' | 'prompt' | 'prompt_optimizer' | 'image_ref' | 'metadata' |
  'callback_token_hash' | 'caller' | 'created_at' | 'notify_url' | 'next_poll_at'> & Partial<Pick<TaskRow, 'queued_request' | 'queued_at' | 'sent_at'>>

/**
 * What a status push on a task's own callback URL is checked and applied with: no more is read for it. Fixed at the
 * task's create, so it may be kept (services/callback.ts) for as long as the task exists.
 */
export type CallbackTarget = Pick<TaskRow, 'seq' | 'id' | 'callback_token_hash'>

/** Where our own copy of a task's video stands. */
export type ArchiveRecord = { state: 'pending' | 'stored' | 'failed', path: string | null, bytes: number | null, sha256: string | null, attempts: number, nextAt: string | null }

// Left to itself the planner picks tasks_by_status and sorts every terminal task to find one batch; the partial
// index hands over the oldest terminal rows already in order (its WHERE is repeated word for word, as SQLite
// requires to use it). Events, idempotency keys and any other table referencing tasks go by ON DELETE CASCADE in
// the same statement: each such table needs an index on its task_seq, or every deleted task scans it whole.
export const PURGE_SQL = `
  DELETE FROM tasks WHERE seq IN (
    SELECT seq FROM tasks INDEXED BY tasks_terminal_by_age
    WHERE status IN ('success', 'failed') AND updated_at < ?
    ORDER BY updated_at LIMIT ?
  )
  RETURNING archive_path`

/** Each caller's oldest queued task for one provider. */
export type QueueHead = { caller: string, seq: number }

export type EventRow = {
  seq: number
  task_seq: number
  at: string
  source: string
  status: string | null
  provider_status: string | null
  outcome: string
  detail: string | null
}

export type NewEvent = Omit<EventRow, 'seq'>

/** An event as both engines write it (an empty detail is stored as NULL). */
export function newEvent (taskSeq: number, at: string, source: string, status: string | null, providerStatus: string | null, outcome: string, detail: Record<string, unknown>): NewEvent {
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

/** The columns of an event a lookup shows. */
export type LookupEvent = Pick<EventRow, 'at' | 'source' | 'status' | 'provider_status' | 'outcome'>

/**
 * The columns of a task a lookup reads (GET /v1/tasks/:id): what it shows, and what its video link's refresh and its
 * place in the queue are decided with. Neither secret (the token's hash, a queued create request) nor scheduling.
 */
export const LOOKUP_COLUMNS = [
  'seq', 'id', 'provider', 'task_id', 'model', 'status', 'provider_status', 'file_id', 'error_code', 'error_message', 'error_provisional',
  'prompt', 'image_ref', 'metadata', 'caller', 'created_at', 'updated_at', 'video_url', 'video_expires_at', 'video_width', 'video_height',
  'archive_state', 'archive_bytes', 'archive_sha256'
] as const satisfies ReadonlyArray<keyof TaskRow>

export type LookupTask = Pick<TaskRow, typeof LOOKUP_COLUMNS[number]>

/** A task as a lookup reads it, with its latest events, oldest first (one statement on SQLite, two on PostgreSQL). */
export type TaskLookup = { task: LookupTask, events: LookupEvent[] }

/** Which key a lookup finds the task by: our id, or the provider's task_id. */
export type LookupKey = 'id' | 'task_id'

/** An event as the lookup statements aggregate it, [at, source, status, provider_status, outcome] (JSON has no names to repeat). */
type LookupEventValues = [at: string, source: string, status: string | null, provider_status: string | null, outcome: string]

function lookupEvents (values: readonly LookupEventValues[]): LookupEvent[] {
  return values.map(([at, source, status, providerStatus, outcome]) => ({ at, source, status, provider_status: providerStatus, outcome }))
}

// A lookup's row as better-sqlite3 hands it over raw (an array in LOOKUP_COLUMNS order, then the events' JSON): no
// column names to internalise and no dictionary-mode object per row; lookupOf builds one object of a fixed shape.
type LookupValues = [
  seq: number, id: string, provider: string, task_id: string | null, model: string, status: TaskStatus, provider_status: string | null,
  file_id: string | null, error_code: string | null, error_message: string | null, error_provisional: 0 | 1, prompt: string | null,
  image_ref: string, metadata: string | null, caller: string, created_at: string, updated_at: string, video_url: string | null,
  video_expires_at: string | null, video_width: number | null, video_height: number | null, archive_state: TaskRow['archive_state'],
  archive_bytes: number | null, archive_sha256: string | null, events: string
]

function lookupOf (v: LookupValues): TaskLookup {
  return {
    task: {
      seq: v[0],
      id: v[1],
      provider: v[2],
      task_id: v[3],
      model: v[4],
      status: v[5],
      provider_status: v[6],
      file_id: v[7],
      error_code: v[8],
      error_message: v[9],
      error_provisional: v[10],
      prompt: v[11],
      image_ref: v[12],
      metadata: v[13],
      caller: v[14],
      created_at: v[15],
      updated_at: v[16],
      video_url: v[17],
      video_expires_at: v[18],
      video_width: v[19],
      video_height: v[20],
      archive_state: v[21],
      archive_bytes: v[22],
      archive_sha256: v[23]
    },
    events: lookupEvents(JSON.parse(v[24]) as LookupEventValues[])
  }
}

// A LIMIT is written into its statement, one statement per limit, not bound: SQLite (3.47 on) reads a bound LIMIT
// while planning, so each new binding expires the statement and its next run prepares it all over again. Measured on
// 10^6 tasks: a lookup's read 55 µs of CPU bound, 21 µs written; latestEvents 8.9 µs against 5.1.
function limitOf (limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`a LIMIT must be a whole number >= 0, not ${limit}`)
  return limit
}

// The task by one key and its newest `limit` events, taken newest first along the (task_seq, seq) index and
// aggregated oldest first (the aggregate's ORDER BY sorts the few in a small temporary b-tree; a subquery's order
// alone does not bind an aggregate's).
function lookupSql (key: LookupKey, limit: number): string {
  return `
    SELECT ${LOOKUP_COLUMNS.map((column) => `t.${column}`).join(', ')},
      (SELECT json_group_array(json_array(e.at, e.source, e.status, e.provider_status, e.outcome) ORDER BY e.seq)
        FROM (SELECT seq, at, source, status, provider_status, outcome FROM task_events WHERE task_seq = t.seq ORDER BY seq DESC LIMIT ${limitOf(limit)}) AS e) AS events
    FROM tasks AS t WHERE t.${key} = ?`
}

export type IdempotencyRow = {
  scope: string
  key: string
  request_hash: string
  task_seq: number
  response_status: number | null
  response_body: string | null
  created_at: string
}

export type ListFilter = {
  status?: TaskStatus | undefined
  provider?: string | undefined
  /** Only this caller's tasks (the visibility scope, or an admin's filter). */
  caller?: string | undefined
  /** Our id (or its start), the provider's task_id, or a metadata value, exactly. */
  search?: string | undefined
  beforeSeq?: number | undefined
  limit: number
}

// A search term this short matches our ids by prefix too often to mean anything; it still matches exactly.
const MIN_ID_PREFIX = 4

export class TasksRepository {
  // One transaction wrapper for every call: building a new one per write cost ~5 % of a push.
  readonly #transaction
  readonly #insertTask
  readonly #byId
  readonly #callbackTarget
  readonly #byTaskId
  // Prepared on first use, per key and limit (see limitOf): the code asks with one or two limits.
  readonly #lookups = new Map<string, Database.Statement<[string], LookupValues>>()
  readonly #byFileId
  readonly #bySeq
  readonly #bindTaskId
  readonly #saveState
  readonly #saveStateWithNews
  readonly #insertEvent
  readonly #eventsOf
  readonly #latestEvents = new Map<number, Database.Statement<[number], LookupEvent>>()
  readonly #countEvents
  readonly #eventsAfter
  readonly #listAll
  readonly #listByStatus
  readonly #listFiltered
  readonly #listOfCaller
  readonly #listOfCallerByStatus
  readonly #keyOf
  readonly #insertKey
  readonly #saveKeyResponse
  readonly #markNews
  readonly #reschedule
  readonly #pollAt
  readonly #duePolls
  readonly #stuckSubmitting
  readonly #pastDeadline
  readonly #saveVideo
  readonly #dueArchives
  readonly #archiveAt
  readonly #expireVideoLink
  readonly #saveArchive
  readonly #queueHeads
  readonly #queuedByCaller
  readonly #queuedAhead
  readonly #anyQueued
  readonly #queuedOfCaller
  readonly #queueDepths
  readonly #expiredQueued
  readonly #setQueued
  readonly #submittedSince
  readonly #countsByStatus
  readonly #purgeFinished

  constructor (readonly db: Db) {
    this.#transaction = db.transaction((fn: () => unknown) => fn())
    this.#insertTask = db.prepare<NewTask>(`
      INSERT INTO tasks (id, provider, model, status, prompt, prompt_optimizer, image_ref, metadata, callback_token_hash, caller, created_at, updated_at, notify_url, next_poll_at,
        queued_request, queued_at, sent_at)
      VALUES (@id, @provider, @model, @status, @prompt, @prompt_optimizer, @image_ref, @metadata, @callback_token_hash, @caller, @created_at, @created_at, @notify_url, @next_poll_at,
        @queued_request, @queued_at, @sent_at)`)
    this.#byId = db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE id = ?')
    this.#callbackTarget = db.prepare<[string], CallbackTarget>('SELECT seq, id, callback_token_hash FROM tasks WHERE id = ?')
    this.#byTaskId = db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE task_id = ?')
    // file_id is not unique in the schema (the provider owns it); the newest task with it wins.
    this.#byFileId = db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE file_id = ? ORDER BY seq DESC LIMIT 1')
    this.#bySeq = db.prepare<[number], TaskRow>('SELECT * FROM tasks WHERE seq = ?')
    this.#bindTaskId = db.prepare<{ seq: number, task_id: string, at: string }>(
      'UPDATE tasks SET task_id = @task_id, updated_at = @at WHERE seq = @seq AND task_id IS NULL')
    this.#saveState = db.prepare<{ seq: number, status: TaskStatus, provider_status: string | null, file_id: string | null, error_code: string | null, error_message: string | null, error_provisional: 0 | 1, at: string }>(`
      UPDATE tasks SET status = @status, provider_status = @provider_status, file_id = @file_id,
        error_code = @error_code, error_message = @error_message, error_provisional = @error_provisional, updated_at = @at
      WHERE seq = @seq`)
    // A change the provider told us about: the new state and the news (polling starts over) in one statement.
    this.#saveStateWithNews = db.prepare<StateColumns & { seq: number, at: string, next_poll_at: string | null }>(`
      UPDATE tasks SET status = @status, provider_status = @provider_status, file_id = @file_id,
        error_code = @error_code, error_message = @error_message, error_provisional = @error_provisional, updated_at = @at,
        last_news_at = @at, poll_attempts = 0, next_poll_at = @next_poll_at
      WHERE seq = @seq`)
    this.#insertEvent = db.prepare<NewEvent>(`
      INSERT INTO task_events (task_seq, at, source, status, provider_status, outcome, detail)
      VALUES (@task_seq, @at, @source, @status, @provider_status, @outcome, @detail)`)
    this.#eventsOf = db.prepare<[number], EventRow>('SELECT * FROM task_events WHERE task_seq = ? ORDER BY seq')
    this.#countEvents = db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM task_events WHERE task_seq = ?')
    this.#eventsAfter = db.prepare<[number, number, number], EventRow>(
      'SELECT * FROM task_events WHERE task_seq = ? AND seq > ? ORDER BY seq LIMIT ?')
    this.#listAll = db.prepare<[number, number], TaskRow>('SELECT * FROM tasks WHERE seq < ? ORDER BY seq DESC LIMIT ?')
    this.#listByStatus = db.prepare<[string, number, number], TaskRow>('SELECT * FROM tasks WHERE status = ? AND seq < ? ORDER BY seq DESC LIMIT ?')
    // One statement for every combination of the dashboard's filters (a NULL parameter means "any"); newest first along
    // the primary key, so a page stops after `limit` matches.
    this.#listFiltered = db.prepare<{ before: number, limit: number, status: string | null, provider: string | null, caller: string | null, search: string | null, prefix: string | null }, TaskRow>(`
      SELECT * FROM tasks WHERE seq < @before
        AND (@status IS NULL OR status = @status)
        AND (@provider IS NULL OR provider = @provider)
        AND (@caller IS NULL OR caller = @caller)
        AND (@search IS NULL OR id = @search OR task_id = @search OR id LIKE @prefix ESCAPE '\\'
          OR EXISTS (SELECT 1 FROM json_each(metadata) WHERE json_each.type IN ('text', 'integer', 'real') AND CAST(json_each.value AS TEXT) = @search))
      ORDER BY seq DESC LIMIT @limit`)
    this.#listOfCaller = db.prepare<[string, number, number], TaskRow>('SELECT * FROM tasks WHERE caller = ? AND seq < ? ORDER BY seq DESC LIMIT ?')
    this.#listOfCallerByStatus = db.prepare<[string, string, number, number], TaskRow>(
      'SELECT * FROM tasks WHERE caller = ? AND status = ? AND seq < ? ORDER BY seq DESC LIMIT ?')
    this.#keyOf = db.prepare<[string, string], IdempotencyRow>('SELECT * FROM idempotency_keys WHERE scope = ? AND key = ?')
    this.#insertKey = db.prepare<Omit<IdempotencyRow, 'response_status' | 'response_body'>>(`
      INSERT INTO idempotency_keys (scope, key, request_hash, task_seq, created_at) VALUES (@scope, @key, @request_hash, @task_seq, @created_at)`)
    this.#saveKeyResponse = db.prepare<{ scope: string, key: string, response_status: number, response_body: string }>(
      'UPDATE idempotency_keys SET response_status = @response_status, response_body = @response_body WHERE scope = @scope AND key = @key')
    this.#markNews = db.prepare<{ seq: number, at: string, next_poll_at: string | null }>(
      'UPDATE tasks SET last_news_at = @at, poll_attempts = 0, next_poll_at = @next_poll_at WHERE seq = @seq')
    this.#reschedule = db.prepare<{ seq: number, next_poll_at: string | null, poll_attempts: number }>(
      'UPDATE tasks SET next_poll_at = @next_poll_at, poll_attempts = @poll_attempts WHERE seq = @seq')
    this.#pollAt = db.prepare<[string, number]>('UPDATE tasks SET next_poll_at = ? WHERE seq = ?')
    // Along tasks_due_for_poll, whose entries are in (next_poll_at, seq) order already: no sort.
    this.#duePolls = db.prepare<[string, string, number], TaskRow>(
      'SELECT * FROM tasks WHERE provider = ? AND next_poll_at IS NOT NULL AND next_poll_at <= ? ORDER BY next_poll_at, seq LIMIT ?')
    this.#stuckSubmitting = db.prepare<[string, number], TaskRow>(
      "SELECT * FROM tasks WHERE status = 'submitting' AND task_id IS NULL AND COALESCE(sent_at, created_at) < ? ORDER BY seq LIMIT ?")
    // See claimPastDeadline: a next poll up to `spared` may be another pass's claim, so it is left alone.
    this.#pastDeadline = db.prepare<{ before: string, now: string, spared: string, limit: number }, TaskRow>(`
      SELECT * FROM tasks WHERE status = 'processing' AND COALESCE(sent_at, created_at) < @before
        AND (next_poll_at IS NULL OR next_poll_at <= @now OR next_poll_at > @spared) ORDER BY seq LIMIT @limit`)
    this.#saveVideo = db.prepare<{ seq: number, url: string, expires_at: string, width: number | null, height: number | null, bytes: number | null, archive: string | null, at: string }>(`
      UPDATE tasks SET video_url = @url, video_expires_at = @expires_at,
        video_width = COALESCE(@width, video_width), video_height = COALESCE(@height, video_height), video_bytes = COALESCE(@bytes, video_bytes),
        archive_state = COALESCE(archive_state, @archive), archive_next_at = CASE WHEN archive_state IS NULL AND @archive IS NOT NULL THEN @at ELSE archive_next_at END
      WHERE seq = @seq`)
    this.#expireVideoLink = db.prepare<[number]>("UPDATE tasks SET video_expires_at = '1970-01-01T00:00:00.000Z' WHERE seq = ?")
    this.#dueArchives = db.prepare<[string, number], TaskRow>(
      "SELECT * FROM tasks WHERE archive_state = 'pending' AND archive_next_at <= ? ORDER BY archive_next_at, seq LIMIT ?")
    this.#archiveAt = db.prepare<[string, number]>('UPDATE tasks SET archive_next_at = ? WHERE seq = ?')
    this.#saveArchive = db.prepare<{ seq: number, state: string, path: string | null, bytes: number | null, sha256: string | null, attempts: number, nextAt: string | null }>(`
      UPDATE tasks SET archive_state = @state, archive_path = @path, archive_bytes = @bytes, archive_sha256 = @sha256,
        archive_attempts = @attempts, archive_next_at = @nextAt
      WHERE seq = @seq`)
    this.#queueHeads = db.prepare<[string], QueueHead>(
      "SELECT caller, MIN(seq) AS seq FROM tasks WHERE status = 'queued' AND provider = ? GROUP BY caller ORDER BY caller")
    this.#queuedByCaller = db.prepare<[string], { caller: string, n: number }>(
      "SELECT caller, count(*) AS n FROM tasks WHERE status = 'queued' AND provider = ? GROUP BY caller ORDER BY caller")
    this.#queuedAhead = db.prepare<[string, string, number], { n: number }>(
      "SELECT count(*) AS n FROM tasks WHERE status = 'queued' AND provider = ? AND caller = ? AND seq < ?")
    this.#anyQueued = db.prepare<[string], { one: number }>("SELECT 1 AS one FROM tasks WHERE status = 'queued' AND provider = ? LIMIT 1")
    this.#queuedOfCaller = db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM tasks WHERE status = 'queued' AND caller = ?")
    this.#queueDepths = db.prepare<[], { provider: string, caller: string, n: number }>(
      "SELECT provider, caller, count(*) AS n FROM tasks WHERE status = 'queued' GROUP BY provider, caller")
    this.#expiredQueued = db.prepare<[string, number], TaskRow>(
      "SELECT * FROM tasks WHERE status = 'queued' AND queued_at < ? ORDER BY seq LIMIT ?")
    this.#setQueued = db.prepare<{ seq: number, queued_request: string | null, sent_at: string | null, queued_at: string | null }>(
      'UPDATE tasks SET queued_request = @queued_request, sent_at = @sent_at, queued_at = COALESCE(queued_at, @queued_at) WHERE seq = @seq')
    // Cancelled tasks were never sent, so they give their place in the quota back.
    this.#submittedSince = db.prepare<[string, string], { n: number }>(
      "SELECT count(*) AS n FROM tasks WHERE caller = ? AND created_at >= ? AND (error_code IS NULL OR error_code <> 'cancelled')")
    this.#countsByStatus = db.prepare<[], { status: TaskStatus, n: number }>('SELECT status, n FROM task_counts')
    this.#purgeFinished = db.prepare<[string, number], { archive_path: string | null }>(PURGE_SQL)
  }

  /** Tasks by status, kept exact by triggers (migrations/005-task-counts.sql): four rows, whatever the table size. */
  countsByStatus (): Array<{ status: TaskStatus, n: number }> { return this.#countsByStatus.all() }
  /** Deletes finished tasks (their events by cascade); see PURGE_SQL. */
  purgeFinished (updatedBefore: string, limit: number): Array<{ archive_path: string | null }> { return this.#purgeFinished.all(updatedBefore, limit) }

  /** Each caller's oldest queued task for the provider, by caller name. */
  queueHeads (provider: string): QueueHead[] { return this.#queueHeads.all(provider) }
  /** How many tasks each caller has queued for the provider, by caller name. */
  queuedByCaller (provider: string): Array<{ caller: string, n: number }> { return this.#queuedByCaller.all(provider) }
  /** How many of the caller's tasks for the provider were queued before this one. */
  queuedAhead (provider: string, caller: string, seq: number): number { return this.#queuedAhead.get(provider, caller, seq)!.n }
  anyQueued (provider: string): boolean { return this.#anyQueued.get(provider) !== undefined }
  /** The caller's queued tasks, for every provider. */
  queuedOfCaller (caller: string): number { return this.#queuedOfCaller.get(caller)!.n }
  queueDepths (): Array<{ provider: string, caller: string, n: number }> { return this.#queueDepths.all() }
  /** Queued tasks that entered the queue before the cutoff. */
  expiredQueued (queuedBefore: string, limit: number): TaskRow[] { return this.#expiredQueued.all(queuedBefore, limit) }
  /** Keeps (or clears) what a queued task needs to be sent, when it was sent, and when it first entered the queue. */
  setQueued (seq: number, queuedRequest: string | null, sentAt: string | null, queuedAt: string | null = null): void {
    this.#setQueued.run({ seq, queued_request: queuedRequest, sent_at: sentAt, queued_at: queuedAt })
  }

  /** Tasks the caller submitted since the time (a UTC midnight), cancelled ones excepted. */
  submittedSince (caller: string, since: string): number { return this.#submittedSince.get(caller, since)!.n }

  /** The provider told us something: polling starts over from the quiet period. */
  markNews (seq: number, at: string, nextPollAt: string | null): void { this.#markNews.run({ seq, at, next_poll_at: nextPollAt }) }
  /** A poll brought no news (or failed): ask again later. */
  reschedule (seq: number, nextPollAt: string | null, attempts: number): void { this.#reschedule.run({ seq, next_poll_at: nextPollAt, poll_attempts: attempts }) }
  /** Moves the next poll, its count of polls without news kept. */
  pollAt (seq: number, at: string): void { this.#pollAt.run(at, seq) }
  /**
   * Up to `limit` of the provider's tasks due for a poll at `now`, soonest first, their next poll moved to `until`;
   * the rows as claimed. The pick and the moves run with nothing in between (synchronous), and the moves commit as
   * one transaction; a tick with nothing due only reads, as before claims.
   */
  claimDuePolls (provider: string, now: string, limit: number, until: string): TaskRow[] {
    return this.#claim(this.#duePolls.all(provider, now, limit), (row) => {
      this.#pollAt.run(until, row.seq)
      return { ...row, next_poll_at: until }
    })
  }

  /** Up to `limit` pending archives due at `now`, oldest first, moved to `until` (see claimDuePolls). */
  claimDueArchives (now: string, limit: number, until: string): TaskRow[] {
    return this.#claim(this.#dueArchives.all(now, limit), (row) => {
      this.#archiveAt.run(until, row.seq)
      return { ...row, archive_next_at: until }
    })
  }

  #claim (due: TaskRow[], move: (row: TaskRow) => TaskRow): TaskRow[] {
    return due.length === 0 ? due : this.transaction(() => due.map(move))
  }

  /** Tasks whose create outcome stayed unknown (no task_id) since before the cutoff. */
  stuckSubmitting (createdBefore: string, limit: number): TaskRow[] { return this.#stuckSubmitting.all(createdBefore, limit) }
  /**
   * Processing tasks created before the cutoff whose next poll is not in (now, spared] (where claims put it), moved to
   * `until` (see claimDuePolls).
   */
  claimPastDeadline (createdBefore: string, now: string, limit: number, until: string, spared: string): TaskRow[] {
    return this.#claim(this.#pastDeadline.all({ before: createdBefore, now, spared, limit }), (row) => {
      this.#pollAt.run(until, row.seq)
      return { ...row, next_poll_at: until }
    })
  }

  saveVideo (seq: number, video: VideoLink, archive: 'pending' | null, at: string): void {
    this.#saveVideo.run({ seq, url: video.url, expires_at: video.expiresAt, width: video.width, height: video.height, bytes: video.bytes ?? null, archive, at })
  }

  /** The download link stopped working before its time (a 403 from the CDN): the next use fetches a fresh one. */
  expireVideoLink (seq: number): void { this.#expireVideoLink.run(seq) }

  /** False when the task is gone (purged meanwhile). */
  saveArchive (seq: number, archive: ArchiveRecord): boolean {
    return this.#saveArchive.run({ seq, ...archive }).changes === 1
  }

  /**
   * Runs fn in one transaction (synchronous: no await inside); inside another one it becomes a savepoint.
   * IMMEDIATE takes the write lock at BEGIN, so a busy database (a backup, the sqlite3 CLI) is waited for under
   * busy_timeout instead of failing half-way with SQLITE_BUSY.
   */
  transaction<T> (fn: () => T): T {
    return this.#transaction.immediate(fn) as T
  }

  insertTask (task: NewTask): TaskRow {
    const { lastInsertRowid } = this.#insertTask.run({ queued_request: null, queued_at: null, sent_at: null, ...task })
    return this.bySeq(Number(lastInsertRowid))!
  }

  byId (id: string): TaskRow | undefined { return this.#byId.get(id) }
  callbackTarget (id: string): CallbackTarget | undefined { return this.#callbackTarget.get(id) }
  byTaskId (taskId: string): TaskRow | undefined { return this.#byTaskId.get(taskId) }
  /** The task by our id or the provider's task_id with its latest `eventLimit` events, oldest first, in one statement. */
  lookup (key: LookupKey, value: string, eventLimit: number): TaskLookup | undefined {
    const name = `${key} ${eventLimit}`
    let statement = this.#lookups.get(name)
    if (!statement) this.#lookups.set(name, statement = this.db.prepare<[string], LookupValues>(lookupSql(key, eventLimit)).raw())
    const values = statement.get(value)
    return values && lookupOf(values)
  }

  byFileId (fileId: string): TaskRow | undefined { return this.#byFileId.get(fileId) }
  bySeq (seq: number): TaskRow | undefined { return this.#bySeq.get(seq) }

  /** Binds the provider's task_id to a row that has none yet; false when the row already had one. */
  bindTaskId (seq: number, taskId: string, at: string): boolean {
    return this.#bindTaskId.run({ seq, task_id: taskId, at }).changes === 1
  }

  saveState (seq: number, state: TaskState, at: string): void {
    this.#saveState.run({ seq, at, ...stateColumns(state) })
  }

  /** saveState and markNews at once (at is both updated_at and last_news_at). */
  saveStateWithNews (seq: number, state: TaskState, at: string, nextPollAt: string | null): void {
    this.#saveStateWithNews.run({ seq, at, next_poll_at: nextPollAt, ...stateColumns(state) })
  }

  insertEvent (event: NewEvent): void { this.#insertEvent.run(event) }
  /** The whole history: for internal use and tests; callers read it in pages (eventsAfter). */
  eventsOf (taskSeq: number): EventRow[] { return this.#eventsOf.all(taskSeq) }
  /** The latest `limit` events, oldest first, as a lookup shows them. */
  latestEvents (taskSeq: number, limit: number): LookupEvent[] {
    let statement = this.#latestEvents.get(limit)
    // The newest n along the (task_seq, seq) index from its end, only what a lookup shows (turned oldest first in JS:
    // SQLite would sort them again in a temporary b-tree); the LIMIT written in, see limitOf.
    if (!statement) {
      this.#latestEvents.set(limit, statement = this.db.prepare<[number], LookupEvent>(
        `SELECT at, source, status, provider_status, outcome FROM task_events WHERE task_seq = ? ORDER BY seq DESC LIMIT ${limitOf(limit)}`))
    }
    return statement.all(taskSeq).reverse()
  }

  countEvents (taskSeq: number): number { return this.#countEvents.get(taskSeq)!.n }
  /** One page of the history, oldest first: events after `afterSeq` (0 for the first page). */
  eventsAfter (taskSeq: number, afterSeq: number, limit: number): EventRow[] { return this.#eventsAfter.all(taskSeq, afterSeq, limit) }

  /** Newest first; `caller` restricts the page to that caller's tasks (each case has its own index). */
  list ({ status, provider, caller, search, beforeSeq = Number.MAX_SAFE_INTEGER, limit }: ListFilter): TaskRow[] {
    if (provider !== undefined || search !== undefined) {
      const prefix = search !== undefined && search.length >= MIN_ID_PREFIX ? `${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null
      return this.#listFiltered.all({ before: beforeSeq, limit, status: status ?? null, provider: provider ?? null, caller: caller ?? null, search: search ?? null, prefix })
    }
    if (caller !== undefined) {
      return status ? this.#listOfCallerByStatus.all(caller, status, beforeSeq, limit) : this.#listOfCaller.all(caller, beforeSeq, limit)
    }
    return status ? this.#listByStatus.all(status, beforeSeq, limit) : this.#listAll.all(beforeSeq, limit)
  }

  idempotencyKey (scope: string, key: string): IdempotencyRow | undefined { return this.#keyOf.get(scope, key) }
  insertIdempotencyKey (row: Omit<IdempotencyRow, 'response_status' | 'response_body'>): void { this.#insertKey.run(row) }
  saveIdempotentResponse (scope: string, key: string, status: number, body: string): void {
    this.#saveKeyResponse.run({ scope, key, response_status: status, response_body: body })
  }
}

type StateColumns = Pick<TaskRow, 'status' | 'provider_status' | 'file_id' | 'error_code' | 'error_message' | 'error_provisional'>

/** A state as the columns saveState writes: the row after it is `{ ...row, ...stateColumns(state), updated_at }`. */
export function stateColumns (state: TaskState): StateColumns {
  return {
    status: state.status,
    provider_status: state.provider_status,
    file_id: state.file_id,
    error_code: state.error?.code ?? null,
    error_message: state.error?.message ?? null,
    error_provisional: state.error?.provisional ? 1 : 0
  }
}

export function stateOf (row: TaskRow): TaskState {
  return {
    status: row.status,
    provider_status: row.provider_status,
    file_id: row.file_id,
    error: errorOf(row)
  }
}

/** The task's error as the state machine sees it. */
export function errorOf (row: Pick<TaskRow, 'error_code' | 'error_message' | 'error_provisional'>): TaskError | null {
  if (!row.error_code) return null
  return row.error_provisional === 1
    ? { code: row.error_code, message: row.error_message ?? '', provisional: true }
    : { code: row.error_code, message: row.error_message ?? '' }
}
