// The task as callers see it, its history, the list page, and MiniMax's query shape.
import { Type, type Static } from 'typebox'
import { TASK_STATUSES } from '../services/task-state.js'
import { BaseResp, Nullable } from './common.js'
import { QueuePosition } from './submit.js'

export const TaskStatusSchema = Type.Enum([...TASK_STATUSES], { description: 'queued → submitting → processing → success | failed' })

export const TaskEvent = Type.Object({
  at: Type.String({ format: 'date-time', description: 'When we recorded it' }),
  source: Type.String({ description: 'submit, callback or poll' }),
  status: Nullable(Type.String({ description: 'The normalised status this event carried' })),
  provider_status: Nullable(Type.String({ description: 'The provider\'s word, as spelt' })),
  outcome: Type.String({ description: 'What it did: created, applied, duplicate, out_of_order, conflict, unrecognised, refused, unknown' })
}, { description: 'One thing that happened to the task' })
export type TaskEvent = Static<typeof TaskEvent>

// One finished task, as the examples of the OpenAPI document show it.
const TASK_EXAMPLE = {
  id: '64570eb2-57f9-4981-9f29-f0496a7692de',
  task_id: '399760801914032555',
  provider: 'minimax',
  model: 'S2V-01',
  caller: 'team-a',
  status: 'success',
  provider_status: 'success',
  file_id: '268010811835735',
  error: null,
  prompt: 'A girl waves at the camera',
  image_url: 'https://example.com/face.jpg',
  metadata: { ticket: 'T-42' },
  created_at: '2026-11-21T08:25:30.686Z',
  updated_at: '2026-11-21T08:25:30.802Z',
  video: {
    url: 'https://cdn.example.com/output.mp4?Expires=1795282000&sig=x',
    expires_at: '2026-11-21T17:10:30.802Z',
    width: 1280,
    height: 720,
    archive: null,
    download_url: 'https://s2v.example.com/v1/files/download/64570eb2-57f9-4981-9f29-f0496a7692de?expires=1795256731&signature=3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    download_expires_at: '2026-11-21T09:25:31.000Z'
  },
  queue: null
}

export const TaskSummary = Type.Object({
  id: Type.String({ description: 'Our task id' }),
  task_id: Nullable(Type.String({ description: 'MiniMax\'s task id (digits, as a string); null until MiniMax gave one' })),
  provider: Type.String({ description: 'Who runs the model: minimax, or modellix (the same model, resold)' }),
  model: Type.String({ description: 'S2V-01' }),
  caller: Type.String({ description: 'Who submitted it: the name of its API_TOKENS entry (token:<fingerprint> for a bare token), or anonymous on an open deployment' }),
  status: TaskStatusSchema,
  provider_status: Nullable(Type.String({ description: 'The provider\'s last status word, as spelt' })),
  file_id: Nullable(Type.String({ description: 'MiniMax\'s file id of the video, on success' })),
  error: Nullable(Type.Object({
    code: Type.String({ description: 'MiniMax\'s numeric code as a string (e.g. "1027"), or ours (e.g. submit_outcome_unknown)' }),
    message: Type.String(),
    provisional: Type.Optional(Type.Boolean({ description: 'Present (true) only when this service decided the failure itself (submit_outcome_unknown, timeout): the provider\'s own later verdict still replaces it, possibly with a success' }))
  }, { description: 'Why the task failed (or why its outcome is unknown)' })),
  prompt: Nullable(Type.String({ description: 'The prompt as submitted' })),
  image_url: Nullable(Type.String({ description: 'The reference image\'s URL as submitted; null when it was a data URL (the image itself is not kept)' })),
  metadata: Nullable(Type.Record(Type.String(), Type.Unknown(), { description: 'Your metadata, as submitted' })),
  created_at: Type.String({ format: 'date-time', description: 'When the submit arrived' }),
  updated_at: Type.String({ format: 'date-time', description: 'The last change' }),
  video: Nullable(Type.Object({
    url: Nullable(Type.String({ description: 'The provider\'s signed download URL (refreshed on lookup once expired); null until it is known. download_url always works' })),
    expires_at: Nullable(Type.String({ format: 'date-time', description: 'When url stops working (with a safety margin); null with url' })),
    width: Nullable(Type.Integer()),
    height: Nullable(Type.Integer()),
    archive: Nullable(Type.Object({
      state: Type.Enum(['pending', 'stored', 'failed'], { description: 'Our own copy (VIDEO_DIR): pending until downloaded' }),
      bytes: Nullable(Type.Integer()),
      sha256: Nullable(Type.String())
    })),
    download_url: Type.String({
      description: 'A signed link of this service to the video that needs no bearer header (for <video src> and MiniMax clients): serves our archived copy ' +
        '(Range supported) or redirects to a fresh provider link, fetched on demand. Short-lived: it stops working at download_expires_at; look the task up again for a new one'
    }),
    download_expires_at: Type.String({ format: 'date-time', description: 'When download_url stops working (DOWNLOAD_LINK_TTL_S after this answer; DOWNLOAD_LINK_NOTIFY_TTL_S in notifications)' })
  }, { description: 'The finished video; null until the task succeeded' })),
  queue: Nullable({ ...QueuePosition, description: 'While queued: its place in the submit queue and the estimated wait; null otherwise' })
}, { description: 'A task, without its history' })
export type TaskSummary = Static<typeof TaskSummary>

// A lookup carries at most this many events, so one lookup stays small however long the history grew.
export const LOOKUP_EVENTS = 100

export const TaskDetail = Type.Intersect([TaskSummary, Type.Object({
  events: Type.Array(TaskEvent, { maxItems: LOOKUP_EVENTS, description: `The latest ${LOOKUP_EVENTS} events at most, oldest first (GET /v1/tasks/:id/history pages through all of them)` }),
  events_total: Type.Integer({ minimum: 0, description: 'How many events the whole history holds' })
})], {
  description: `The task and its latest ${LOOKUP_EVENTS} events`,
  examples: [{
    ...TASK_EXAMPLE,
    events: [
      { at: '2026-11-21T08:25:30.686Z', source: 'submit', status: null, provider_status: null, outcome: 'created' },
      { at: '2026-11-21T08:25:30.752Z', source: 'submit', status: 'processing', provider_status: null, outcome: 'applied' },
      { at: '2026-11-21T08:25:30.802Z', source: 'callback', status: 'success', provider_status: 'success', outcome: 'applied' }
    ],
    events_total: 3
  }]
})
export type TaskDetail = Static<typeof TaskDetail>

export const TaskParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, description: 'Our id or MiniMax\'s task_id' })
})

// Notifications (long-poll): the longest a lookup may wait, so proxies and clients with a minute's timeout cope.
export const MAX_WAIT_SECONDS = 60

export const TaskWaitQuery = Type.Object({
  wait: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_SECONDS, description: 'Long-poll: wait up to this many seconds for the status to differ from `status`' })),
  status: Type.Optional(TaskStatusSchema)
}, { additionalProperties: false, description: 'Without wait the task is answered at once; a finished task is always answered at once' })

// Pages hold at most this many tasks, so one lookup stays cheap.
export const MAX_PAGE = 100

export const ListQuery = Type.Object({
  status: Type.Optional(TaskStatusSchema),
  provider: Type.Optional(Type.Enum(['minimax', 'modellix'], { description: 'Only this provider\'s tasks' })),
  caller: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Only the tasks of this caller (its name)' })),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Search: our id (or its first 4+ characters), MiniMax\'s task_id, or a metadata value (exact)' })),
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 20, description: 'Tasks per page' }),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' }))
}, { additionalProperties: false })

export const TaskPage = Type.Object({
  items: Type.Array(TaskSummary, { description: 'Newest first (without events: look a task up for its history)' }),
  next_cursor: Nullable(Type.String({ description: 'Pass as cursor for the next page; null on the last page' }))
}, { description: 'One page of tasks, newest first', examples: [{ items: [TASK_EXAMPLE], next_cursor: null }] })

// A history page: events are small (~150 bytes), so a full page stays well under 200 KB.
export const MAX_HISTORY_PAGE = 1000

export const HistoryQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: MAX_HISTORY_PAGE, default: 100, description: 'Events per page' }),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' }))
}, { additionalProperties: false })

export const HistoryPage = Type.Object({
  items: Type.Array(TaskEvent, { description: 'Events, oldest first' }),
  next_cursor: Nullable(Type.String({ description: 'Pass as cursor for the next page; null on the last page' }))
}, {
  description: 'One page of a task\'s history, oldest first',
  examples: [{ items: [{ at: '2026-11-21T08:25:30.686Z', source: 'submit', status: null, provider_status: null, outcome: 'created' }], next_cursor: 'ZXZlbnQ6MTI' }]
})

export const MiniMaxQueryString = Type.Object({
  task_id: Type.String({ minLength: 1, maxLength: 100, description: 'MiniMax\'s task_id (our id works too)' })
})

export const MiniMaxQueryAnswer = Type.Object({
  task_id: Type.String({ description: 'MiniMax\'s task id (our id while MiniMax has not given one)' }),
  status: Type.Enum(['Preparing', 'Queueing', 'Processing', 'Success', 'Fail'], { description: 'MiniMax\'s query vocabulary; Preparing while we are still submitting' }),
  file_id: Type.String({ description: 'Empty until success, as MiniMax does; our task id for a provider without file ids (Modellix), which GET /v1/files/retrieve accepts' }),
  base_resp: BaseResp
}, {
  description: 'The task in MiniMax\'s query shape, from our database',
  examples: [{ task_id: '399760801914032555', status: 'Success', file_id: '268010811835735', base_resp: { status_code: 0, status_msg: 'success' } }]
})
export type MiniMaxQueryAnswer = Static<typeof MiniMaxQueryAnswer>
