// The task as callers see it, its history, the list page, and MiniMax's query shape.
import { Type, type Static } from 'typebox'
import { TASK_STATUSES } from '../services/task-state.js'
import { BaseResp } from './common.js'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

export const TaskStatusSchema = Type.Enum([...TASK_STATUSES], { description: 'submitting → processing → success | failed' })

export const TaskEvent = Type.Object({
  at: Type.String({ format: 'date-time' }),
  source: Type.String({ description: 'submit, callback or poll' }),
  status: Nullable(Type.String({ description: 'The normalised status this event carried' })),
  provider_status: Nullable(Type.String({ description: 'The provider\'s word, as spelt' })),
  outcome: Type.String({ description: 'What it did: created, applied, duplicate, out_of_order, conflict, unrecognised, refused, unknown' })
})

export const TaskSummary = Type.Object({
  id: Type.String({ description: 'Our task id' }),
  task_id: Nullable(Type.String({ description: 'MiniMax\'s task id (digits, as a string); null until MiniMax gave one' })),
  provider: Type.String(),
  model: Type.String(),
  status: TaskStatusSchema,
  provider_status: Nullable(Type.String()),
  file_id: Nullable(Type.String({ description: 'MiniMax\'s file id of the video, on success' })),
  error: Nullable(Type.Object({ code: Type.String({ description: 'MiniMax\'s numeric code as a string (e.g. "1027"), or ours (e.g. submit_outcome_unknown)' }), message: Type.String() })),
  prompt: Nullable(Type.String()),
  metadata: Nullable(Type.Record(Type.String(), Type.Unknown())),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' })
})
export type TaskSummary = Static<typeof TaskSummary>

export const TaskDetail = Type.Intersect([TaskSummary, Type.Object({
  events: Type.Array(TaskEvent, { description: 'The full history, oldest first' })
})])
export type TaskDetail = Static<typeof TaskDetail>

export const TaskParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, description: 'Our id or MiniMax\'s task_id' })
})

// Pages hold at most this many tasks, so one lookup stays cheap.
export const MAX_PAGE = 100

export const ListQuery = Type.Object({
  status: Type.Optional(TaskStatusSchema),
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 20 }),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' }))
}, { additionalProperties: false })

export const TaskPage = Type.Object({
  items: Type.Array(TaskSummary, { description: 'Newest first (without events: look a task up for its history)' }),
  next_cursor: Nullable(Type.String({ description: 'Pass as cursor for the next page; null on the last page' }))
})

export const MiniMaxQueryString = Type.Object({
  task_id: Type.String({ minLength: 1, maxLength: 100, description: 'MiniMax\'s task_id (our id works too)' })
})

export const MiniMaxQueryAnswer = Type.Object({
  task_id: Type.String(),
  status: Type.Enum(['Preparing', 'Queueing', 'Processing', 'Success', 'Fail']),
  file_id: Type.String({ description: 'Empty until success, as MiniMax does' }),
  base_resp: BaseResp
})
export type MiniMaxQueryAnswer = Static<typeof MiniMaxQueryAnswer>
