// MiniMax's status pushes: authenticate by the per-task token, then apply through the state machine, durably.
import { LruMap } from 'toad-cache'
import { AppError } from '../errors.js'
import { parseCallbackToken, secretMatches } from '../lib/callback-token.js'
import { LogThrottle } from '../lib/log-throttle.js'
import type { CallbackTarget, TaskRow } from '../db/tasks-repository.js'
import type { Outcome, TaskError } from './task-state.js'
import { normaliseStatus } from './task-state.js'
import { TaskGone } from './task-storage.js'
import type { Log, TaskStore } from './task-store.js'

export type StatusPush = {
  task_id: string
  status: string
  file_id?: string | undefined
  base_resp?: { status_code?: number | undefined, status_msg?: string | undefined } | undefined
}

/** Why a push was not accepted: no token (bare path), a token that is no task's, or a task's token naming another task_id. */
export type RefusalReason = 'bare_path' | 'unknown_token' | 'token_task_mismatch'

// Refused pushes cost no disk; their log lines are capped too, so a flood costs neither disk nor log volume.
const REFUSAL_LOG_LINES_PER_SECOND = 5
// Callback URLs whose token was checked, kept so a task's next pushes skip the read and the hash: MiniMax pushes a task
// a few times within minutes of its create, and takes a few creates a minute, so 10,000 cover many hours of tasks
// (~250 bytes each, ~2.5 MB when full).
const VERIFIED_TOKENS = 10_000

const REFUSALS: Record<RefusalReason, () => AppError> = {
  bare_path: () => new AppError(401, 'callback_token_required', 'status pushes are only accepted on the task\'s own callback URL'),
  unknown_token: () => new AppError(401, 'unknown_callback_token', 'this callback URL does not belong to any task'),
  token_task_mismatch: () => new AppError(401, 'token_task_mismatch', 'this callback URL belongs to another task_id')
}

export class CallbackService {
  readonly #logThrottle: LogThrottle
  // token -> its task. What a token proves never changes (CallbackTarget: fixed at the task's create); only a purge
  // ends it, which push() finds out and forgets. Only whole tokens that matched are kept, so a lookup here is the
  // same check as reading the row and comparing the hash.
  readonly #verified = new LruMap<CallbackTarget>(VERIFIED_TOKENS)

  constructor (private readonly store: TaskStore, private readonly log: Log, clock: () => number = Date.now) {
    this.#logThrottle = new LogThrottle(REFUSAL_LOG_LINES_PER_SECOND, clock)
  }

  /**
   * The task whose own callback URL this token is, or null. Reads at most one row by primary key (none for a token
   * seen before) and writes nothing, so it can run before any rate limit: a forged token never counts against what a
   * genuine one needs.
   */
  async authenticate (token: string | null): Promise<CallbackTarget | null> {
    if (token === null) return null
    const known = this.#verified.get(token)
    if (known) return known
    const parsed = parseCallbackToken(token)
    const task = parsed ? await this.store.queries.callbackTarget(parsed.id) : undefined
    if (!parsed || !task || !secretMatches(parsed.secret, task.callback_token_hash)) return null
    this.#verified.set(token, task)
    return task
  }

  /**
   * Applies a push on `task`'s own URL and returns what the state machine made of it; the change is committed (with
   * the other pushes of the same moment, in one transaction) when this resolves, so the 200 that follows is never
   * ahead of the disk. Throws a 401 AppError when the push names another task_id than the token's.
   */
  async push (task: CallbackTarget, push: StatusPush, token: string | null): Promise<{ outcome: Outcome, task: TaskRow }> {
    let result
    try {
      result = await this.store.applyUpdate(task.seq, push.task_id, {
        status: normaliseStatus(push.status),
        providerStatus: push.status,
        fileId: push.file_id ?? null,
        error: failureOf(push)
      }, 'callback', push.base_resp ? { base_resp: push.base_resp } : {})
    } catch (err) {
      // Purged since its token was checked: the URL is no task's any more.
      if (!(err instanceof TaskGone)) throw err
      if (token !== null) this.#verified.delete(token)
      throw this.refuse('unknown_token', push, { id: task.id })
    }
    if (!result.ok) throw this.refuse('token_task_mismatch', push, { id: task.id, bound_task_id: result.task.task_id })
    this.store.events.emit('push', { outcome: result.decision.outcome })
    return { outcome: result.decision.outcome, task: result.task }
  }

  /**
   * A refused push changes and writes nothing: it is counted, logged (at most a few lines a second, with the count of
   * lines suppressed), and the task it names is nudged towards a poll (the reconciler allows one per interval).
   * Returns the 401 to answer at once; the look-up of the task it names follows on its own.
   */
  refuse (reason: RefusalReason, push: StatusPush, context: Record<string, unknown> = {}): AppError {
    this.store.events.emit('push', { outcome: 'refused' })
    const admission = this.#logThrottle.admit()
    this.store.queries.byTaskId(push.task_id).then((named) => {
      if (admission.log) {
        this.log.warn({ ...context, task_id: push.task_id, status: push.status, reason, known_task: Boolean(named), suppressed: admission.suppressed }, 'refused a status push')
      }
      this.store.events.emit('refusedPush', { taskSeq: named?.seq ?? null })
    }, (err: unknown) => { this.log.error({ err, task_id: push.task_id }, 'could not look up the task a refused push named') })
    return REFUSALS[reason]()
  }
}

function failureOf (push: StatusPush): TaskError | null {
  if (normaliseStatus(push.status) !== 'failed') return null
  const code = push.base_resp?.status_code
  const message = push.base_resp?.status_msg || 'MiniMax reported the task as failed'
  return code ? { code: String(code), message } : { code: 'provider_failed', message }
}
