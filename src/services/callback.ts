// MiniMax's status pushes: authenticate by the per-task token, then apply through the state machine, durably.
import { AppError, type ErrorCode } from '../errors.js'
import { parseCallbackToken, secretMatches } from '../lib/callback-token.js'
import type { TaskRow } from '../db/tasks-repository.js'
import type { Outcome, TaskError } from './task-state.js'
import { normaliseStatus } from './task-state.js'
import type { Log, TaskStore } from './task-store.js'

export type StatusPush = {
  task_id: string
  status: string
  file_id?: string | undefined
  base_resp?: { status_code?: number | undefined, status_msg?: string | undefined } | undefined
}

const refused = (code: ErrorCode, message: string) => new AppError(401, code, message)

export class CallbackService {
  constructor (private readonly store: TaskStore, private readonly log: Log) {}

  /**
   * Applies a push and returns what the state machine made of it; the change is committed (with the other pushes
   * of the same moment, in one transaction) when this resolves, so the 200 that follows is never ahead of the disk. Throws a 401 AppError for a push
   * that does not carry the task's own token.
   */
  async push (token: string | null, push: StatusPush): Promise<{ outcome: Outcome, task: TaskRow }> {
    const task = this.#authenticate(token, push)
    const result = await this.store.applyUpdateSoon(task.seq, push.task_id, {
      status: normaliseStatus(push.status),
      providerStatus: push.status,
      fileId: push.file_id ?? null,
      error: failureOf(push)
    }, 'callback', push.base_resp ? { base_resp: push.base_resp } : {})
    this.store.events.emit('push', { outcome: result.ok ? result.decision.outcome : 'refused' })
    if (!result.ok) {
      this.store.events.emit('refusedPush', { taskSeq: this.store.repo.byTaskId(push.task_id)?.seq ?? null })
      this.log.warn({ id: task.id, task_id: push.task_id, bound_task_id: task.task_id, reason: result.reason }, 'refused a push whose task_id does not belong to its token')
      throw refused('token_task_mismatch', 'this callback URL belongs to another task_id')
    }
    return { outcome: result.decision.outcome, task: result.task }
  }

  #authenticate (token: string | null, push: StatusPush): TaskRow {
    if (token === null) {
      this.#refuse(push, 'bare_path')
      throw refused('callback_token_required', 'status pushes are only accepted on the task\'s own callback URL')
    }
    const parsed = parseCallbackToken(token)
    const task = parsed ? this.store.repo.byId(parsed.id) : undefined
    if (!parsed || !task || !secretMatches(parsed.secret, task.callback_token_hash)) {
      this.#refuse(push, 'unknown_token')
      throw refused('unknown_callback_token', 'this callback URL does not belong to any task')
    }
    return task
  }

  /** A refused push changes nothing; it is logged, and kept in the history of the task it names, if we know it. */
  #refuse (push: StatusPush, reason: string): void {
    this.store.events.emit('push', { outcome: 'refused' })
    const named = this.store.repo.byTaskId(push.task_id)
    this.log.warn({ task_id: push.task_id, status: push.status, reason, known_task: Boolean(named) }, 'refused an unauthenticated status push')
    if (named) this.store.recordEvent(named.seq, 'callback', 'refused', { reason }, push.status)
    this.store.events.emit('refusedPush', { taskSeq: named?.seq ?? null })
  }
}

function failureOf (push: StatusPush): TaskError | null {
  if (normaliseStatus(push.status) !== 'failed') return null
  const code = push.base_resp?.status_code
  const message = push.base_resp?.status_msg || 'MiniMax reported the task as failed'
  return code ? { code: String(code), message } : { code: 'provider_failed', message }
}
