// The safety net when pushes do not come: polls providers about quiet tasks within a per-provider call budget,
// fetches video links, fails tasks whose create outcome stayed unknown or that never finish.
import { AppError } from '../errors.js'
import { Ticker } from '../lib/ticker.js'
import type { TaskRow } from '../db/tasks-repository.js'
import { ProviderError } from '../providers/provider-error.js'
import type { ProviderName, VideoProvider } from '../providers/provider.js'
import type { CallBudget } from './call-budget.js'
import { errorOf } from '../db/tasks-repository.js'
import { isProvisional, normaliseStatus } from './task-state.js'
import type { Log, TaskStore } from './task-store.js'

export type PollPolicy = {
  /** Next poll this long after the provider last told us something. */
  afterNewsMs: number
  /** First pause after a poll without news; doubles up to backoffMaxMs. */
  backoffMs: number
  backoffMaxMs: number
  budget: CallBudget
}

export type ReconcilerOptions = {
  store: TaskStore
  providers: ReadonlyMap<ProviderName, VideoProvider>
  policies: Record<ProviderName, PollPolicy>
  tickMs: number
  submittingTimeoutMs: number
  deadlineMs: number
  /** After a failure of our own (we stopped waiting), keep asking the provider for its verdict this long... */
  lateResultWindowMs: number
  /** ...this often (within the same call budget). */
  latePollMs: number
  /** Whether finished videos are to be archived (VIDEO_DIR set). */
  archive: boolean
  /** The provider clients' cut-off for one call (PROVIDER_REQUEST_TIMEOUT_MS): how long a poll may take follows from it. */
  providerRequestTimeoutMs: number
  log: Log
}

// Work per tick is bounded so one tick never holds the loop for long.
const MAX_POLLS_PER_TICK = 50
const MAX_SWEEP_PER_TICK = 50
// The longest a poll can take is its provider calls (the status, then for a success the video link), each cut off at
// providerRequestTimeoutMs, and its writes (news or back-off, the link), which the database cuts off well within this.
const PROVIDER_CALLS_PER_POLL = 2
const POLL_WRITES_MS = 10_000
// A pass claims its due polls (no other replica polls them meanwhile) for this many of the longest polls: a replica
// killed mid-pass leaves its claimed tasks unpolled that long at most, and a pass goes on polling them, oldest first,
// only while one more such poll still ends within the claim (the rest are due again when it runs out).
const POLLS_PER_CLAIM = 4

const iso = (ms: number): string => new Date(ms).toISOString()

export class Reconciler {
  readonly #options: ReconcilerOptions
  // When each task was last moved to the front by a refused push, so a flood of forgeries costs one poll per interval.
  readonly #nudged = new Map<number, number>()
  readonly #ticker: Ticker

  constructor (options: ReconcilerOptions) {
    this.#options = options
    this.#ticker = new Ticker(() => this.runOnce(), options.tickMs, (err) => options.log.error({ err }, 'reconciler pass failed'))
  }

  /**
   * The policy after any news: a finished task needs no poll (but a success needs its video link, and a failure of
   * our own is asked about slowly, in case the provider's verdict differs).
   */
  nextPollAfterNews (task: TaskRow, now: number): string | null {
    if (task.status === 'success') return task.video_url ? null : iso(now)
    if (task.status === 'failed') return this.#latePollAt(task, now)
    if (task.task_id === null) return null
    const policy = this.#policyOf(task)
    return policy ? iso(now + policy.afterNewsMs) : null
  }

  /** The next slow poll of a task we failed ourselves, until LATE_RESULT_WINDOW_MS after we gave up; null after. */
  #latePollAt (task: TaskRow, now: number): string | null {
    if (task.task_id === null || !this.#policyOf(task) || !isProvisional({ status: task.status, error: errorOf(task) })) return null
    const end = Date.parse(task.updated_at) + this.#options.lateResultWindowMs
    if (now >= end) return null
    return iso(Math.min(now + this.#options.latePollMs, end)) // the last one at the window's end
  }

  start (): void { this.#ticker.start() }

  /** Each configured provider's call budget: its size and how much of the current minute's is spent (by every replica). */
  async budgets (): Promise<Array<{ provider: ProviderName, per_minute: number, used: number }>> {
    return await Promise.all(this.#configured().map(async ([provider, { budget }]) => ({ provider, per_minute: budget.perMinute, used: budget.perMinute - await budget.remaining() })))
  }

  async stop (): Promise<void> { await this.#ticker.stop() }

  /** One pass: sweep what timed out, then poll what is due, oldest first, as far as the budgets allow. */
  async runOnce (now: number = Date.now()): Promise<void> {
    const started = Date.now() // `now` may be a test's clock: the time since the pass began is the real one's
    const { store, submittingTimeoutMs, deadlineMs } = this.#options
    for (const task of await store.queries.stuckSubmitting(iso(now - submittingTimeoutMs), MAX_SWEEP_PER_TICK)) {
      await this.#fail(task, 'submit_outcome_unknown', `neither an answer nor a callback came from the provider within ${submittingTimeoutMs} ms of the submit; the task may exist there, but this service stopped waiting`)
    }
    // Each task is polled by one replica (the budget spent once): the tasks to poll are claimed, not just read.
    const longestPollMs = PROVIDER_CALLS_PER_POLL * this.#options.providerRequestTimeoutMs + POLL_WRITES_MS
    const claimMs = POLLS_PER_CLAIM * longestPollMs
    const deadline = iso(now - deadlineMs)
    for (const task of await store.claimPastDeadline(deadline, iso(now + Date.now() - started), MAX_SWEEP_PER_TICK, claimMs)) {
      if (!await this.#takeBudget(task)) continue // claimed, so due again when the claim runs out
      await this.#lastPoll(task, deadline) // one last poll before giving up on it
    }
    // Each provider has its own queue and budget, so one provider's backlog never starves another's tasks. The budget
    // (one for every replica) is spent for the claimed tasks in one step (a quiet tick spends none: one read, one
    // claim); another replica may have spent it between the read and the step, and the tasks beyond what is granted
    // wait for their claim to run out. Calls granted but not made (the pass ran out of claim) are given back.
    for (const [name, policy] of this.#configured()) {
      const limit = Math.min(MAX_POLLS_PER_TICK, await policy.budget.remaining())
      if (limit === 0) continue
      const claimedAt = Date.now()
      const claimed = await store.claimDuePolls(name, iso(now + claimedAt - started), limit, claimMs)
      if (claimed.length === 0) continue
      const granted = await policy.budget.take(claimed.length)
      let polled = 0
      try {
        for (const task of claimed.slice(0, granted)) {
          if (Date.now() + longestPollMs > claimedAt + claimMs) break
          polled += 1
          await this.#lastPoll(task, deadline)
        }
      } finally {
        await policy.budget.giveBack(granted - polled)
      }
    }
  }

  /** A caller asked for a poll now (POST /v1/tasks/:id/refresh). */
  async pollNow (task: TaskRow): Promise<TaskRow> {
    if (task.task_id === null) return task // nothing to ask the provider about yet
    if (task.status === 'failed' && task.error_provisional !== 1) return task // the provider's verdict is final
    if (task.status === 'success' && task.video_url && !expired(task)) return task
    const policy = this.#policyOf(task)
    if (!policy || !await policy.budget.tryTake()) {
      const retryAfter = Math.ceil((await policy?.budget.waitMs() ?? 60_000) / 1000)
      throw new AppError(429, 'poll_budget_exhausted', `the ${task.provider} call budget for this minute is spent; try again in ${retryAfter} s`)
    }
    return this.#poll(task)
  }

  /**
   * A lookup found an expired download link: fetch a fresh one if the budget allows (the task as it is then: its whole
   * row, read again), else keep the old one.
   */
  async freshVideoLink<T extends Pick<TaskRow, 'seq' | 'provider' | 'video_url' | 'video_expires_at'>> (task: T): Promise<T | TaskRow> {
    if (!task.video_url || !expired(task) || !await this.#takeBudget(task)) return task
    try {
      const row = await this.#options.store.queries.bySeq(task.seq)
      return row ? await this.#fetchVideoLink(row) : task
    } catch (err) {
      if (this.#options.store.isBusy(err)) return task // a lookup is a read: the old link rather than no answer
      throw err
    }
  }

  /**
   * A signed download link was followed: a finished task whose provider link is not known yet (the link is
   * fetched after the status change) or has expired gets one now, if the budget allows; else it is returned as is.
   */
  async videoLinkNow (task: TaskRow): Promise<TaskRow> {
    if (task.status !== 'success' || task.task_id === null) return task
    if (task.video_url && !expired(task)) return task
    if (!await this.#takeBudget(task)) return task
    return this.#fetchVideoLink(task)
  }

  /** Moves a task to the front of the queue (a refused push named it), at most once per backoff interval. */
  async nudge (taskSeq: number | null): Promise<void> {
    if (taskSeq === null) return
    const task = await this.#options.store.queries.bySeq(taskSeq)
    const policy = task && this.#policyOf(task)
    if (!task || !policy || task.status !== 'processing' || task.task_id === null) return
    const now = Date.now()
    if ((this.#nudged.get(taskSeq) ?? 0) > now - policy.backoffMs) return
    this.#nudged.set(taskSeq, now)
    for (const [seq, at] of this.#nudged) if (at <= now - policy.backoffMs) this.#nudged.delete(seq)
    await this.#options.store.pollAt(taskSeq, iso(now))
  }

  #configured (): Array<[ProviderName, PollPolicy]> {
    return [...this.#options.providers.keys()].map((name) => [name, this.#options.policies[name]])
  }

  #policyOf (task: Pick<TaskRow, 'provider'>): PollPolicy | undefined {
    return this.#options.providers.has(task.provider as ProviderName) ? this.#options.policies[task.provider as ProviderName] : undefined
  }

  async #takeBudget (task: Pick<TaskRow, 'provider'>): Promise<boolean> {
    return await this.#policyOf(task)?.budget.tryTake() ?? false
  }

  /**
   * A poll that also applies the deadline: a task still processing afterwards that was created (sent) before
   * `deadline` is given up on. Due polls apply it too, since the deadline sweep leaves tasks due within a claim's
   * lease to them (TaskStorage.claimPastDeadline).
   */
  async #lastPoll (task: TaskRow, deadline: string): Promise<void> {
    const after = await this.#poll(task)
    if (after.status === 'processing' && (after.sent_at ?? after.created_at) < deadline) {
      await this.#fail(after, 'timeout', `the task did not finish within ${this.#options.deadlineMs} ms`)
    }
  }

  /** Asks the provider about the task and applies the answer through the state machine. */
  async #poll (task: TaskRow): Promise<TaskRow> {
    if (task.status === 'success') return this.#fetchVideoLink(task)
    const { store, log } = this.#options
    const provider = this.#options.providers.get(task.provider as ProviderName)!
    try {
      const state = await provider.query(task.task_id!)
      // A status that brings its video (Modellix's) has the link saved first, so the success commits with it: no
      // lookup, event or frozen notification sees that success without its link, and no poll is due to fetch it.
      if (state.video) await store.saveVideoLink(task.seq, state.video, { archive: this.#options.archive, pollingDone: false })
      const result = await store.applyUpdate(task.seq, task.task_id, {
        status: normaliseStatus(state.providerStatus), providerStatus: state.providerStatus, fileId: state.fileId, error: state.error
      }, 'poll', state.traceId ? { trace_id: state.traceId } : {})
      if (!result.ok) return result.task
      const news = result.task.status !== task.status || result.task.provider_status !== task.provider_status
      if (!news) await this.#backOff(task)
      return await store.queries.bySeq(task.seq) ?? result.task
    } catch (err) {
      // Nothing can be written while another process holds the lock: the pass ends, and the claimed tasks are due
      // again when their claim runs out.
      if (store.isBusy(err)) throw err
      log.warn({ err, id: task.id, task_id: task.task_id, provider: task.provider }, 'poll failed; backing off')
      await this.#backOff(task, err instanceof ProviderError ? err.retryAfterMs : null)
      return await store.queries.bySeq(task.seq) ?? task
    }
  }

  async #fetchVideoLink (task: TaskRow): Promise<TaskRow> {
    const { store, log } = this.#options
    const provider = this.#options.providers.get(task.provider as ProviderName)!
    try {
      const link = await provider.videoLink(task.task_id!, task.file_id)
      await store.saveVideoLink(task.seq, link, { archive: this.#options.archive, pollingDone: true })
    } catch (err) {
      if (store.isBusy(err)) throw err
      log.warn({ err, id: task.id, task_id: task.task_id, provider: task.provider }, 'could not get the video link; backing off')
      await this.#backOff(task, err instanceof ProviderError ? err.retryAfterMs : null)
    }
    return await store.queries.bySeq(task.seq) ?? task
  }

  /**
   * Schedules the next poll of a task whose poll brought no news or failed. The row is read again first: `task` is
   * from before the call, and a push may have finished the task meanwhile (re-arming from the stale row would poll a
   * finished task forever); when its status changed, the news already set the schedule.
   */
  async #backOff (task: TaskRow, atLeastMs: number | null = null): Promise<void> {
    const policy = this.#policyOf(task)
    if (!policy) return
    await this.#options.store.backOff(task.seq, task.status, (fresh) => {
      const now = Date.now()
      if (fresh.status === 'failed') return this.#latePollAt(fresh, now)
      if (fresh.status === 'success' && fresh.video_url && !expired(fresh)) return null
      return iso(now + Math.max(Math.min(policy.backoffMs * 2 ** fresh.poll_attempts, policy.backoffMaxMs), atLeastMs ?? 0))
    })
  }

  /** Our own give-up: provisional, so the provider's verdict still applies if it comes (and is polled for a while). */
  async #fail (task: TaskRow, code: string, message: string): Promise<void> {
    await this.#options.store.applyUpdate(task.seq, null, { status: 'failed', providerStatus: null, error: { code, message, provisional: true } }, 'timeout')
    this.#options.log.warn({ id: task.id, task_id: task.task_id, code }, 'gave up on a task')
  }
}

function expired (task: Pick<TaskRow, 'video_expires_at'>): boolean {
  return task.video_expires_at !== null && Date.parse(task.video_expires_at) <= Date.now()
}
