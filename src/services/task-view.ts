// Turns task rows into what callers read: our lookup shape and MiniMax's query shape.
import type { LookupEvent, LookupTask, TaskRow } from '../db/tasks-repository.js'
import type { TaskQueries } from './task-store.js'
import type { QueuePosition } from '../schemas/submit.js'
import { LOOKUP_EVENTS, type MiniMaxQueryAnswer, type TaskDetail, type TaskEvent, type TaskSummary } from '../schemas/tasks.js'
import type { SignedLink } from './download-links.js'

/** Signs a link of this service to the task's video (lookups and notifications sign with different lifetimes). */
export type VideoLinkSigner = (row: LookupTask) => SignedLink

/**
 * A finished task always has a video to offer: our archived copy, or the provider's link, fetched on demand by
 * the signed link when it is not known yet (so a success notification carries a link that works).
 */
export function hasVideo (row: Pick<TaskRow, 'status'>): boolean {
  return row.status === 'success'
}

/** The task as callers read it; `queue` is its place in the submit queue while queued (see SubmitQueue.positionOf). */
export function taskSummary (row: LookupTask, signVideoLink: VideoLinkSigner, queue: QueuePosition | null = null): TaskSummary {
  const link = hasVideo(row) ? signVideoLink(row) : null
  return {
    id: row.id,
    task_id: row.task_id,
    provider: row.provider,
    model: row.model,
    caller: row.caller,
    status: row.status,
    provider_status: row.provider_status,
    file_id: row.file_id,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '', ...(row.error_provisional === 1 ? { provisional: true } : {}) } : null,
    prompt: row.prompt,
    image_url: /^https?:\/\//i.test(row.image_ref) ? row.image_ref : null,
    metadata: row.metadata ? JSON.parse(row.metadata) : null,
    created_at: row.created_at,
    updated_at: row.updated_at,
    video: link
      ? {
          url: row.video_url,
          expires_at: row.video_url ? row.video_expires_at : null,
          width: row.video_width,
          height: row.video_height,
          archive: row.archive_state ? { state: row.archive_state, bytes: row.archive_bytes, sha256: row.archive_sha256 } : null,
          download_url: link.url,
          download_expires_at: link.expires_at
        }
      : null,
    queue: row.status === 'queued' ? queue : null
  }
}

export function taskEvent (event: LookupEvent): TaskEvent {
  return { at: event.at, source: event.source, status: event.status, provider_status: event.provider_status, outcome: event.outcome }
}

/** The task with its latest LOOKUP_EVENTS events and the size of its whole history; the history is counted only when it is longer. */
export async function taskDetail (row: LookupTask, repo: Pick<TaskQueries, 'latestEvents' | 'countEvents'>, signVideoLink: VideoLinkSigner, queue: QueuePosition | null = null): Promise<TaskDetail> {
  return await taskDetailOf(row, await repo.latestEvents(row.seq, LOOKUP_EVENTS), repo, signVideoLink, queue)
}

/** taskDetail with the latest LOOKUP_EVENTS events (oldest first) already read, as TaskStore.lookupFor reads them with the task. */
export async function taskDetailOf (row: LookupTask, events: LookupEvent[], repo: Pick<TaskQueries, 'countEvents'>, signVideoLink: VideoLinkSigner, queue: QueuePosition | null = null): Promise<TaskDetail> {
  const eventsTotal = events.length < LOOKUP_EVENTS ? events.length : await repo.countEvents(row.seq)
  // Added to the summary rather than spread into a copy of it (a copy of 17 fields per lookup); a LookupEvent has the
  // columns of a TaskEvent and no others.
  return Object.assign(taskSummary(row, signVideoLink, queue), { events, events_total: eventsTotal })
}

const QUERY_STATUS = { queued: 'Queueing', submitting: 'Preparing', processing: 'Processing', success: 'Success', failed: 'Fail' } as const
// While processing, MiniMax's finer words are kept when the provider used them.
const PROCESSING_WORDS: Record<string, MiniMaxQueryAnswer['status']> = { preparing: 'Preparing', queueing: 'Queueing' }

/** The task as MiniMax's GET /v1/query/video_generation would describe it. */
export function miniMaxQueryAnswer (row: TaskRow): MiniMaxQueryAnswer {
  const word = row.provider_status?.toLowerCase() ?? ''
  // Own keys only: a provider word like "constructor" must not find Object.prototype's.
  const finer = row.status === 'processing' && Object.hasOwn(PROCESSING_WORDS, word) ? PROCESSING_WORDS[word] : undefined
  return {
    // Until the provider names the task, our id is the one a MiniMax client was given (the 202 of a queued submit).
    task_id: row.task_id ?? row.id,
    status: finer ?? QUERY_STATUS[row.status],
    // A provider without file ids (Modellix): our id stands in, and GET /v1/files/retrieve accepts it.
    file_id: row.file_id ?? (row.status === 'success' ? row.id : ''),
    base_resp: { status_code: 0, status_msg: 'success' }
  }
}
