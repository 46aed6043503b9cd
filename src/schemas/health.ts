// Liveness and readiness answers.
import { Type } from 'typebox'

export const HealthAnswer = Type.Object({
  status: Type.Enum(['ok', 'unavailable']),
  reason: Type.Optional(Type.String({ description: 'Why the service is unavailable' }))
}, { description: 'ok, or unavailable with a reason', examples: [{ status: 'ok' }] })
