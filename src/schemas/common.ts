// Schemas shared by several routes: MiniMax's base_resp and the one JSON error shape.
import { Type, type Static, type TSchema } from 'typebox'
import { ERROR_CODES } from '../errors.js'

export const BaseResp = Type.Object({
  status_code: Type.Integer({ description: 'MiniMax\'s code: 0 for success (see the README for the others)' }),
  status_msg: Type.String({ description: 'MiniMax\'s message, or ours for our own refusals' })
}, { description: 'MiniMax\'s status envelope, so MiniMax clients can talk to this service unchanged', examples: [{ status_code: 0, status_msg: 'success' }] })

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ description: 'The HTTP status, repeated' }),
  error: Type.String({ description: 'The HTTP reason phrase' }),
  code: Type.String({
    description: 'A stable machine-readable code, one of: ' +
      Object.entries(ERROR_CODES).map(([code, when]) => `\`${code}\`: ${when}`).join('; ')
  }),
  message: Type.String({ description: 'What went wrong, for a person' }),
  request_id: Type.Optional(Type.String({ description: 'This request\'s id (also in the x-request-id header), to find it in our logs' })),
  id: Type.Optional(Type.String({ description: 'Our task id, when a task was created' })),
  task_id: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'MiniMax\'s task id, when known' })),
  status: Type.Optional(Type.String({ description: 'The task status after this request' })),
  base_resp: Type.Optional(BaseResp)
}, {
  // The title names the shape in the OpenAPI document, where it becomes one shared component (plugins/openapi.ts).
  title: 'ErrorResponse',
  description: 'Every error has this shape',
  examples: [
    { statusCode: 404, error: 'Not Found', code: 'not_found', message: 'task 64570eb2-57f9-4981-9f29-f0496a7692de not found', request_id: 'req-1f' },
    {
      statusCode: 402,
      error: 'Payment Required',
      code: 'insufficient_balance',
      message: 'MiniMax refused the request: 1008 insufficient balance',
      request_id: 'req-2a',
      id: '655ab40c-879d-4fcf-b3d5-e9b2f3c2a89c',
      task_id: null,
      status: 'failed',
      base_resp: { status_code: 1008, status_msg: 'insufficient balance' }
    }
  ]
})
export type ErrorBody = Static<typeof ErrorResponse>

/** The error responses a route can give, for its response schema. */
export function errorResponses (...codes: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(codes.map((code) => [code, ErrorResponse]))
}

/**
 * `schema` or null, written as `type: [<type>, "null"]` rather than anyOf: fast-json-stringify serialises a type
 * list directly, while an anyOf makes it run a validator per field on every response (measured: the task lookup
 * spent most of its serialisation time there).
 */
export function Nullable<T extends TSchema> (schema: T) {
  const { type } = schema as { type?: string }
  if (typeof type !== 'string') throw new TypeError('Nullable needs a schema with a single type')
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [type, 'null'] })
}
