// Schemas shared by several routes: MiniMax's base_resp and the one JSON error shape.
import { Type, type Static } from 'typebox'

export const BaseResp = Type.Object({
  status_code: Type.Integer({ description: 'MiniMax\'s code: 0 for success (see the README for the others)' }),
  status_msg: Type.String()
}, { description: 'MiniMax\'s status envelope, so MiniMax clients can talk to this service unchanged' })

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ description: 'The HTTP status, repeated' }),
  error: Type.String({ description: 'The HTTP reason phrase' }),
  code: Type.String({ description: 'A stable machine-readable code, e.g. invalid_request, not_found, submit_outcome_unknown' }),
  message: Type.String({ description: 'What went wrong, for a person' }),
  request_id: Type.Optional(Type.String()),
  id: Type.Optional(Type.String({ description: 'Our task id, when a task was created' })),
  task_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  status: Type.Optional(Type.String({ description: 'The task status after this request' })),
  base_resp: Type.Optional(BaseResp)
}, { description: 'Every error has this shape' })
export type ErrorBody = Static<typeof ErrorResponse>

/** The error responses a route can give, for its response schema. */
export function errorResponses (...codes: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(codes.map((code) => [code, ErrorResponse]))
}
