// MiniMax's callback bodies: the challenge handshake and the status pushes.
import { Type, type Static } from 'typebox'

export const CallbackBody = Type.Object({
  challenge: Type.Optional(Type.String({ maxLength: 4096, description: 'Handshake: echoed back at once' })),
  task_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'MiniMax\'s task id (a bare JSON number keeps all its digits too)' })),
  status: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'processing/success/failed or Preparing/Queueing/Processing/Success/Fail, any case' })),
  file_id: Type.Optional(Type.String({ maxLength: 64 })),
  base_resp: Type.Optional(Type.Object({
    status_code: Type.Optional(Type.Integer()),
    status_msg: Type.Optional(Type.String({ maxLength: 1024 }))
  }))
}, { description: 'Either {challenge} or a status push; other fields MiniMax adds are ignored' })
export type CallbackBody = Static<typeof CallbackBody>

export const CallbackParams = Type.Object({
  token: Type.String({ maxLength: 200, description: 'The per-task token this service put in callback_url' })
})

export const CallbackAnswer = Type.Object({
  challenge: Type.Optional(Type.String()),
  status: Type.Optional(Type.Literal('success'))
}, { description: '{challenge} for a handshake, {status:"success"} for a push that is on disk' })
