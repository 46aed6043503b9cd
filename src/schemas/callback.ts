// MiniMax's callback bodies: the challenge handshake and the status pushes.
import { Type, type Static } from 'typebox'

export const CallbackBody = Type.Object({
  challenge: Type.Optional(Type.String({ maxLength: 4096, description: 'Handshake: echoed back at once' })),
  task_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'MiniMax\'s task id (a bare JSON number keeps all its digits too)' })),
  status: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'processing/success/failed or Preparing/Queueing/Processing/Success/Fail, any case' })),
  file_id: Type.Optional(Type.String({ maxLength: 64, description: 'The video\'s file id, on success' })),
  base_resp: Type.Optional(Type.Object({
    status_code: Type.Optional(Type.Integer()),
    status_msg: Type.Optional(Type.String({ maxLength: 1024 }))
  }, { description: 'MiniMax\'s status envelope; a failed push\'s code becomes the task\'s error' }))
}, {
  description: 'Either {challenge} or a status push; other fields MiniMax adds are ignored',
  examples: [
    { challenge: '1a2b3c4d' },
    { task_id: '399760801914032555', status: 'success', file_id: '268010811835735', base_resp: { status_code: 0, status_msg: 'success' } }
  ]
})
export type CallbackBody = Static<typeof CallbackBody>

export const CallbackParams = Type.Object({
  token: Type.String({ maxLength: 200, description: 'The per-task token this service put in callback_url' })
})

export const CallbackAnswer = Type.Object({
  challenge: Type.Optional(Type.String()),
  status: Type.Optional(Type.Literal('success'))
}, { description: '{challenge} for a handshake, {status:"success"} for a push that is on disk', examples: [{ challenge: '1a2b3c4d' }, { status: 'success' }] })
