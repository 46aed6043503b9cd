// The durable outbox: one delivery per URL for every status change, written inside the change's transaction; replays.
import { randomBytes } from 'node:crypto'
import type { DeliveriesRepository, DeliveryFilter, DeliveryListRow } from '../../db/deliveries-repository.js'
import { AppError, errors } from '../../errors.js'
import type { StatusChange } from '../task-events.js'
import { now } from '../task-store.js'
import { taskSummary, type VideoLinkSigner } from '../task-view.js'
import { callerScope, canSee, type Viewer } from '../visibility.js'

// 18 random bytes: a webhook-id nobody can guess or collide with (Standard Webhooks ids look like msg_<random>).
const MESSAGE_ID_BYTES = 18

export const newMessageId = (): string => `msg_${randomBytes(MESSAGE_ID_BYTES).toString('base64url')}`

export type OutboxOptions = {
  /** NOTIFY_URL: told about every task, besides the task's own notify_url. */
  globalUrl?: string | undefined
  /** Called when deliveries become pending outside a status change (replays), to wake the worker. */
  onPending?: () => void
  /** Signs the video link a success message carries (long-lived: the message is frozen and retried for hours). */
  signVideoLink: VideoLinkSigner
}

export class NotificationOutbox {
  constructor (readonly repo: DeliveriesRepository, private readonly options: OutboxOptions) {}

  /**
   * The task store's status-change writer: runs inside the transaction that changes the status, so the delivery
   * rows commit or roll back with the change. The body is frozen now, so each message says what was true then.
   * True when it wrote a delivery (the worker has something to do once the change is committed).
   */
  enqueue ({ task }: StatusChange): boolean {
    const urls = new Set([task.notify_url, this.options.globalUrl].filter((url): url is string => Boolean(url)))
    if (urls.size === 0) return false
    const payload = JSON.stringify(taskSummary(task, this.options.signVideoLink))
    const at = now()
    for (const url of urls) {
      // A URL that answered 410 gets nothing more; the delivery is kept, dead, so it can be replayed.
      const gone = this.repo.isGone(url)
      // In order: behind a pending earlier message of this task to this URL, it waits to be released.
      const queued = !gone && this.repo.pendingBefore(task.seq, url)
      this.repo.insert({
        id: newMessageId(),
        task_seq: task.seq,
        caller: task.caller,
        url,
        status: task.status,
        payload,
        state: gone ? 'failed' : 'pending',
        next_attempt_at: gone || queued ? null : at,
        dead_reason: gone ? 'url_gone' : null,
        created_at: at
      })
    }
    return true
  }

  /** A delivery, if the viewer may see its task (another caller's answers undefined, like a missing one). */
  findFor (viewer: Viewer, id: string): DeliveryListRow | undefined {
    const row = this.repo.byId(id)
    return row && canSee(viewer, row) ? row : undefined
  }

  /** A page of the deliveries of the tasks the viewer may see, newest first. */
  listFor (viewer: Viewer, filter: Omit<DeliveryFilter, 'caller'>): DeliveryListRow[] {
    return this.repo.list({ ...filter, caller: callerScope(viewer) })
  }

  /** Sends a delivered or failed delivery of a task the viewer may see again, with a fresh schedule and the same webhook-id. */
  retry (viewer: Viewer, id: string): DeliveryListRow {
    const row = this.findFor(viewer, id)
    if (!row) throw errors.notFound(`delivery ${id}`)
    if (row.state === 'pending') throw new AppError(409, 'delivery_pending', 'this delivery is still pending: it will be sent on its schedule')
    if (this.repo.superseded(row.seq)) {
      throw new AppError(409, 'delivery_superseded', 'a later status of this task was already delivered to this URL; sending this one again would go back in time')
    }
    this.repo.transaction(() => {
      const at = now()
      this.repo.replay(row.seq, at, this.repo.pendingBefore(row.task_seq, row.url, row.seq))
      // An admin replaying to a URL that answered 410 says it is back.
      this.repo.clearGone(row.url)
    })
    this.options.onPending?.()
    return this.repo.byId(id)!
  }

  /**
   * Replays every failed delivery created in [since, until) of the tasks the viewer may see, oldest first, except
   * those a later delivery superseded.
   */
  retryRange (viewer: Viewer, since: string, until: string): { retried: number, skipped: number } {
    const result = this.repo.transaction(() => {
      const at = now()
      let retried = 0
      let skipped = 0
      for (const row of this.repo.failedInRange(since, until, callerScope(viewer))) {
        if (row.superseded) {
          skipped += 1
          continue
        }
        this.repo.replay(row.seq, at, this.repo.pendingBefore(row.task_seq, row.url, row.seq))
        this.repo.clearGone(row.url)
        retried += 1
      }
      return { retried, skipped }
    })
    if (result.retried > 0) this.options.onPending?.()
    return result
  }
}
