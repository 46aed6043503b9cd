// The submit request (MiniMax's own body, plus metadata) and its answer.
import { Type, type Static } from 'typebox'
import { BaseResp } from './common.js'

// http(s) URL or a base64 data URL of a JPG/PNG/WebP (MiniMax's accepted formats); anchored prefix only,
// so validating a 27 MB data URL costs nothing.
const IMAGE_PATTERN = '^(https?://\\S|data:image/(jpeg|jpg|png|webp);base64,)'

export const SubmitBody = Type.Object({
  model: Type.Optional(Type.Literal('S2V-01', { default: 'S2V-01', description: 'Only S2V-01 (subject reference) is served' })),
  prompt: Type.Optional(Type.String({ maxLength: 2000, description: 'What happens in the video' })),
  prompt_optimizer: Type.Optional(Type.Boolean({ description: 'Let MiniMax rewrite the prompt (MiniMax\'s default: true)' })),
  subject_reference: Type.Array(Type.Object({
    type: Type.Literal('character', { description: 'The only kind of subject S2V-01 takes' }),
    image: Type.Array(Type.String({ pattern: IMAGE_PATTERN, description: 'http(s) URL or data:image/...;base64,... (JPG, PNG or WebP, under 20 MB)' }), { minItems: 1, maxItems: 1 })
  }, { additionalProperties: false }), { minItems: 1, maxItems: 1, description: 'Exactly one character with one image' }),
  callback_url: Type.Optional(Type.String({ description: 'Refused: this service sets MiniMax\'s callback_url itself' })),
  provider: Type.Optional(Type.Enum(['minimax', 'modellix'], { description: 'Who runs the model: MiniMax itself or the Modellix aggregator (default: DEFAULT_PROVIDER)' })),
  notify_url: Type.Optional(Type.String({ pattern: '^https?://\\S+$', maxLength: 2048, description: 'We POST the task to this URL on every status change (signed; see Notifications)' })),
  metadata: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
    maxProperties: 32, description: 'Your own small JSON object (at most 4 KiB), stored and returned with the task'
  }))
}, {
  additionalProperties: false,
  description: 'MiniMax\'s own create body (without callback_url), plus optional fields of ours; unknown fields are refused',
  examples: [{
    model: 'S2V-01',
    prompt: 'A girl waves at the camera',
    subject_reference: [{ type: 'character', image: ['https://example.com/face.jpg'] }],
    metadata: { ticket: 'T-42' }
  }]
})
export type SubmitBody = Static<typeof SubmitBody>

export const SubmitHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1, maxLength: 255, description: 'Same key + same body returns the first answer without a second paid generation'
  }))
})

export const SubmitAnswer = Type.Object({
  task_id: Type.String({ description: 'MiniMax\'s task id (a string of digits: never parse it as a number)' }),
  id: Type.String({ description: 'Our task id' }),
  status: Type.String({ description: 'processing, or already success/failed if MiniMax pushed before answering' }),
  base_resp: BaseResp
}, {
  description: 'MiniMax accepted the task (the header idempotent-replayed: true marks a replayed answer)',
  examples: [{ task_id: '399760801914032555', id: '64570eb2-57f9-4981-9f29-f0496a7692de', status: 'processing', base_resp: { status_code: 0, status_msg: 'success' } }]
})
export type SubmitAnswer = Static<typeof SubmitAnswer>

export const QueuePosition = Type.Object({
  position: Type.Integer({ minimum: 1, description: 'Place in the provider\'s queue, 1 = sent next (round-robin between callers, first in first out within one)' }),
  eta_s: Type.Integer({ minimum: 0, description: 'Estimated seconds until it is sent, from the provider\'s create rate (MINIMAX_SUBMIT_RPM / MODELLIX_SUBMIT_RPM)' })
}, { description: 'Where a queued task stands' })
export type QueuePosition = Static<typeof QueuePosition>

export const SubmitQueuedAnswer = Type.Object({
  id: Type.String({ description: 'Our task id' }),
  task_id: Type.String({ description: 'Our id too, until the provider gives its own: poll GET /v1/query/video_generation?task_id= with it (answers Queueing)' }),
  status: Type.Literal('queued'),
  queue: QueuePosition,
  base_resp: BaseResp
}, {
  description: 'Queued: the provider\'s create rate is in use or others are waiting; the task is kept (restart-safe) and sent in its turn',
  examples: [{ id: '64570eb2-57f9-4981-9f29-f0496a7692de', task_id: '64570eb2-57f9-4981-9f29-f0496a7692de', status: 'queued', queue: { position: 3, eta_s: 36 }, base_resp: { status_code: 0, status_msg: 'queued' } }]
})
export type SubmitQueuedAnswer = Static<typeof SubmitQueuedAnswer>
