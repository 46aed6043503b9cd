// The durable outbox: one message per URL for every status change, written inside the change's transaction; replays.
import { randomBytes } from 'node:crypto'
import type { DeliveryFilter, DeliveryListRow, NewMessage } from '../../db/deliveries-repository.js'
import { AppError, errors } from '../../errors.js'
import type { StatusChange } from '../task-events.js'
import { now } from '../task-store.js'
import { taskSummary, type VideoLinkSigner } from '../task-view.js'
import type { DeliveriesStorage } from './deliveries-storage.js'
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
  constructor (readonly storage: DeliveriesStorage, private readonly options: OutboxOptions) {}

  /**
   * The task module's status-change writer: the messages to write with the change, in its transaction (the task
   * storage inserts them, and the insert decides whether each is due, queued or dead for a gone URL), so they commit
   * or roll back with it. The body is frozen now, so each message says what was true then.
   */
  messagesFor ({ task }: StatusChange): NewMessage[] {
    const urls = new Set([task.notify_url, this.options.globalUrl].filter((url): url is string => Boolean(url)))
    if (urls.size === 0) return []
    const payload = JSON.stringify(taskSummary(task, this.options.signVideoLink))
    const at = now()
    return [...urls].map((url) => ({ id: newMessageId(), task_seq: task.seq, caller: task.caller, url, status: task.status, payload, created_at: at }))
  }

  /** A delivery, if the viewer may see its task (another caller's answers undefined, like a missing one). */
  async findFor (viewer: Viewer, id: string): Promise<DeliveryListRow | undefined> {
    const row = await this.storage.byId(id)
    return row && canSee(viewer, row) ? row : undefined
  }

  /** A page of the deliveries of the tasks the viewer may see, newest first. */
  listFor (viewer: Viewer, filter: Omit<DeliveryFilter, 'caller'>): Promise<DeliveryListRow[]> {
    return this.storage.list({ ...filter, caller: callerScope(viewer) })
  }

  /** Sends a delivered or failed delivery of a task the viewer may see again, with a fresh schedule and the same webhook-id. */
  async retry (viewer: Viewer, id: string): Promise<DeliveryListRow> {
    const row = await this.findFor(viewer, id)
    if (!row) throw errors.notFound(`delivery ${id}`)
    if (row.state === 'pending') throw pendingError()
    if (await this.storage.superseded(row.seq)) {
      throw new AppError(409, 'delivery_superseded', 'a later status of this task was already delivered to this URL; sending this one again would go back in time')
    }
    // Another replay (another replica's) may have made it pending since it was read: the same answer as above.
    if (!await this.storage.replay(row.seq, row.url, now())) throw pendingError()
    this.options.onPending?.()
    return (await this.storage.byId(id))!
  }

  /**
   * Replays every failed delivery created in [since, until) of the tasks the viewer may see, oldest first, except
   * those a later delivery superseded.
   */
  async retryRange (viewer: Viewer, since: string, until: string): Promise<{ retried: number, skipped: number }> {
    const result = await this.storage.replayRange(since, until, callerScope(viewer), now())
    if (result.retried > 0) this.options.onPending?.()
    return result
  }
}

const pendingError = (): AppError => new AppError(409, 'delivery_pending', 'this delivery is still pending: it will be sent on its schedule')
