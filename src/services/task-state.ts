// The task state machine, the only place that decides how a status update changes a task.
//   queued → submitting → processing → success | failed
// queued: waiting for a create slot (the submit queue); it goes back to queued only when a create was refused by a
// rate limit (nothing was created), and it fails without being sent when cancelled or when it waited too long.
// Terminal states never go back, duplicates change nothing, a conflicting terminal update is kept in the
// history (by the caller recording the event) but never flips the status. One exception: a failure this service
// decided on its own (it stopped waiting: submit_outcome_unknown, timeout) is provisional, and the provider's own
// terminal verdict, when it comes later, replaces it (failed → success, or failed with the provider's code).

export const TASK_STATUSES = ['queued', 'submitting', 'processing', 'success', 'failed'] as const
export type TaskStatus = typeof TASK_STATUSES[number]
/** A status a provider can report (a task is only "queued" or "submitting" before the provider has it). */
export type ReportedStatus = Exclude<TaskStatus, 'queued' | 'submitting'>

export type Outcome = 'applied' | 'duplicate' | 'out_of_order' | 'conflict' | 'unrecognised'

export type TaskError = {
  code: string
  message: string
  /** True when this service decided the failure itself (it stopped waiting), not the provider: a later verdict overrules it. */
  provisional?: boolean
}

export type TaskState = {
  status: TaskStatus
  provider_status: string | null
  file_id: string | null
  error: TaskError | null
}

export type StatusUpdate = {
  /** The normalised status (see normaliseStatus); null when the provider's word is not one we know. */
  status: ReportedStatus | null
  /** As the provider spelt it ("Queueing", "success", "Fail" ...); null when it said none (a create's answer). */
  providerStatus: string | null
  fileId?: string | null
  /** Why the task failed, when it did. */
  error?: TaskError | null
}

export type Decision = {
  outcome: Outcome
  /** The normalised status the update carried; null when the provider's word is unknown. */
  reported: ReportedStatus | null
  /** The task after the update (the same object when nothing changes). */
  next: TaskState
}

// MiniMax documents processing/success/failed for callbacks but sends Preparing/Queueing/Processing/Success/Fail
// from its query API and samples; aggregators add their own words. Compared case-insensitively.
const VOCABULARY: Record<string, ReportedStatus> = {
  preparing: 'processing',
  queueing: 'processing',
  queued: 'processing',
  pending: 'processing',
  processing: 'processing',
  running: 'processing',
  success: 'success',
  succeeded: 'success',
  completed: 'success',
  fail: 'failed',
  failed: 'failed',
  error: 'failed',
  canceled: 'failed',
  cancelled: 'failed'
}

export function normaliseStatus (providerStatus: string): ReportedStatus | null {
  const word = providerStatus.trim().toLowerCase()
  // Own keys only: a provider word like "constructor" must not find Object.prototype's.
  return Object.hasOwn(VOCABULARY, word) ? VOCABULARY[word]! : null
}

export function isTerminal (status: TaskStatus): status is 'success' | 'failed' {
  return status === 'success' || status === 'failed'
}

/** A failure this service decided itself (it gave up waiting); the provider may still give its own verdict. */
export function isProvisional (state: Pick<TaskState, 'status' | 'error'>): boolean {
  return state.status === 'failed' && state.error?.provisional === true
}

export function decide (current: TaskState, update: StatusUpdate): Decision {
  const reported = update.status
  if (reported === null) return { outcome: 'unrecognised', reported, next: current }

  // The provider's final word beats our own give-up (we may have paid for a video that did get made). "Still
  // processing" does not: we keep the failure until a verdict comes; and a give-up of ours never overrules itself.
  if (isProvisional(current) && reported !== 'processing' && update.error?.provisional !== true) {
    return { outcome: 'applied', reported, next: verdict(current, update, reported) }
  }

  if (reported === current.status) {
    // Same status again. While processing, the provider's finer word (Queueing → Processing) is still news;
    // a repeated success may bring the file_id a first one lacked.
    const next = { ...current }
    if (!isTerminal(current.status) && update.providerStatus) next.provider_status = update.providerStatus
    if (reported === 'success' && !current.file_id && update.fileId) next.file_id = update.fileId
    return { outcome: 'duplicate', reported, next }
  }
  if (isTerminal(current.status)) {
    return { outcome: reported === 'processing' ? 'out_of_order' : 'conflict', reported, next: current }
  }
  return { outcome: 'applied', reported, next: verdict(current, update, reported) }
}

/** The task once an update is applied: file_id on success, the error on failure (never a stale one). */
function verdict (current: TaskState, update: StatusUpdate, reported: ReportedStatus): TaskState {
  return {
    status: reported,
    provider_status: update.providerStatus,
    file_id: reported === 'success' ? update.fileId ?? null : current.file_id,
    error: reported === 'failed' ? update.error ?? { code: 'provider_failed', message: 'the provider reported the task as failed' } : null
  }
}

/**
 * The submit queue's own moves, decided here like every other change:
 * - dispatch: a queued task's create is about to be sent (queued → submitting);
 * - requeue: the provider refused that create with a rate limit, so nothing exists there (submitting → queued, only
 *   while no provider task_id is bound);
 * - cancel / expire: a queued task that was never sent fails (queued → failed with `cancelled` / `queue_timeout`).
 * Returns the next status, or null when the move does not apply to the task as it is now.
 */
export type QueueMove = 'dispatch' | 'requeue' | 'cancel' | 'expire'

export function queueMove (current: TaskStatus, move: QueueMove, hasProviderTaskId: boolean): TaskStatus | null {
  switch (move) {
    case 'dispatch': return current === 'queued' ? 'submitting' : null
    case 'requeue': return current === 'submitting' && !hasProviderTaskId ? 'queued' : null
    case 'cancel':
    case 'expire': return current === 'queued' ? 'failed' : null
  }
}
