// All SQL on tasks, their events and idempotency keys: statements prepared once, synchronous methods.
import type { Db } from './database.js'
import type { TaskState, TaskStatus } from '../services/task-state.js'

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
  archive_state: 'pending' | 'stored' | 'failed' | null
  archive_path: string | null
  archive_bytes: number | null
  archive_sha256: string | null
  archive_attempts: number
  archive_next_at: string | null
  notify_url: string | null
}

export type NewTask = Pick<TaskRow, 'id' | 'provider' | 'model' | 'status' | 'prompt' | 'prompt_optimizer' | 'image_ref' | 'metadata' |
  'callback_token_hash' | 'caller' | 'created_at' | 'notify_url' | 'next_poll_at'>

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

export type IdempotencyRow = {
  scope: string
  key: string
  request_hash: string
  task_seq: number
  response_status: number | null
  response_body: string | null
  created_at: string
}

export type ListFilter = { status?: TaskStatus | undefined, beforeSeq?: number | undefined, limit: number }

export class TasksRepository {
  readonly #insertTask
  readonly #byId
  readonly #byTaskId
  readonly #bySeq
  readonly #bindTaskId
  readonly #saveState
  readonly #insertEvent
  readonly #eventsOf
  readonly #listAll
  readonly #listByStatus
  readonly #keyOf
  readonly #insertKey
  readonly #saveKeyResponse

  constructor (readonly db: Db) {
    this.#insertTask = db.prepare<NewTask>(`
      INSERT INTO tasks (id, provider, model, status, prompt, prompt_optimizer, image_ref, metadata, callback_token_hash, caller, created_at, updated_at, notify_url, next_poll_at)
      VALUES (@id, @provider, @model, @status, @prompt, @prompt_optimizer, @image_ref, @metadata, @callback_token_hash, @caller, @created_at, @created_at, @notify_url, @next_poll_at)`)
    this.#byId = db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE id = ?')
    this.#byTaskId = db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE task_id = ?')
    this.#bySeq = db.prepare<[number], TaskRow>('SELECT * FROM tasks WHERE seq = ?')
    this.#bindTaskId = db.prepare<{ seq: number, task_id: string, at: string }>(
      'UPDATE tasks SET task_id = @task_id, updated_at = @at WHERE seq = @seq AND task_id IS NULL')
    this.#saveState = db.prepare<{ seq: number, status: TaskStatus, provider_status: string | null, file_id: string | null, error_code: string | null, error_message: string | null, at: string }>(`
      UPDATE tasks SET status = @status, provider_status = @provider_status, file_id = @file_id,
        error_code = @error_code, error_message = @error_message, updated_at = @at
      WHERE seq = @seq`)
    this.#insertEvent = db.prepare<NewEvent>(`
      INSERT INTO task_events (task_seq, at, source, status, provider_status, outcome, detail)
      VALUES (@task_seq, @at, @source, @status, @provider_status, @outcome, @detail)`)
    this.#eventsOf = db.prepare<[number], EventRow>('SELECT * FROM task_events WHERE task_seq = ? ORDER BY seq')
    this.#listAll = db.prepare<[number, number], TaskRow>('SELECT * FROM tasks WHERE seq < ? ORDER BY seq DESC LIMIT ?')
    this.#listByStatus = db.prepare<[string, number, number], TaskRow>('SELECT * FROM tasks WHERE status = ? AND seq < ? ORDER BY seq DESC LIMIT ?')
    this.#keyOf = db.prepare<[string, string], IdempotencyRow>('SELECT * FROM idempotency_keys WHERE scope = ? AND key = ?')
    this.#insertKey = db.prepare<Omit<IdempotencyRow, 'response_status' | 'response_body'>>(`
      INSERT INTO idempotency_keys (scope, key, request_hash, task_seq, created_at) VALUES (@scope, @key, @request_hash, @task_seq, @created_at)`)
    this.#saveKeyResponse = db.prepare<{ scope: string, key: string, response_status: number, response_body: string }>(
      'UPDATE idempotency_keys SET response_status = @response_status, response_body = @response_body WHERE scope = @scope AND key = @key')
  }

  /** Runs fn in one transaction (synchronous: no await inside). */
  transaction<T> (fn: () => T): T {
    return this.db.transaction(fn)()
  }

  insertTask (task: NewTask): TaskRow {
    const { lastInsertRowid } = this.#insertTask.run(task)
    return this.bySeq(Number(lastInsertRowid))!
  }

  byId (id: string): TaskRow | undefined { return this.#byId.get(id) }
  byTaskId (taskId: string): TaskRow | undefined { return this.#byTaskId.get(taskId) }
  bySeq (seq: number): TaskRow | undefined { return this.#bySeq.get(seq) }

  /** Binds the provider's task_id to a row that has none yet; false when the row already had one. */
  bindTaskId (seq: number, taskId: string, at: string): boolean {
    return this.#bindTaskId.run({ seq, task_id: taskId, at }).changes === 1
  }

  saveState (seq: number, state: TaskState, at: string): void {
    this.#saveState.run({
      seq,
      at,
      status: state.status,
      provider_status: state.provider_status,
      file_id: state.file_id,
      error_code: state.error?.code ?? null,
      error_message: state.error?.message ?? null
    })
  }

  insertEvent (event: NewEvent): void { this.#insertEvent.run(event) }
  eventsOf (taskSeq: number): EventRow[] { return this.#eventsOf.all(taskSeq) }

  list ({ status, beforeSeq = Number.MAX_SAFE_INTEGER, limit }: ListFilter): TaskRow[] {
    return status ? this.#listByStatus.all(status, beforeSeq, limit) : this.#listAll.all(beforeSeq, limit)
  }

  idempotencyKey (scope: string, key: string): IdempotencyRow | undefined { return this.#keyOf.get(scope, key) }
  insertIdempotencyKey (row: Omit<IdempotencyRow, 'response_status' | 'response_body'>): void { this.#insertKey.run(row) }
  saveIdempotentResponse (scope: string, key: string, status: number, body: string): void {
    this.#saveKeyResponse.run({ scope, key, response_status: status, response_body: body })
  }
}

export function stateOf (row: TaskRow): TaskState {
  return {
    status: row.status,
    provider_status: row.provider_status,
    file_id: row.file_id,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null
  }
}
