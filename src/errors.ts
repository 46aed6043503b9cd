// Named application errors: a stable machine code and an HTTP status, defined in one place.
import { STATUS_CODES } from 'node:http'
export type BaseResp = { status_code: number, status_msg: string }

export class AppError extends Error {
  override name = 'AppError'
  constructor (
    readonly statusCode: number,
    readonly code: string,
    message: string,
    // extra fields merged into the JSON error body (our task id, MiniMax's base_resp, ...)
    readonly details: Record<string, unknown> = {}
  ) {
    super(message)
  }
}

export const errors = {
  unauthorized: () => new AppError(401, 'unauthorized', 'a valid "Authorization: Bearer <token>" header is required'),
  notFound: (what: string) => new AppError(404, 'not_found', `${what} not found`),
  providerNotConfigured: (provider: string) => new AppError(503, 'provider_not_configured', `${provider.toUpperCase()}_API_KEY is not set on this service, so it cannot submit to ${provider}`),
  callbackUrlNotAllowed: () => new AppError(400, 'callback_url_not_allowed', 'callback_url is set by this service (it receives MiniMax\'s callbacks itself); remove it from the request'),
  imageTooLarge: (bytes: number, max: number) => new AppError(400, 'image_too_large', `the reference image is ${bytes} bytes once decoded; MiniMax accepts less than ${max}`),
  metadataTooLarge: (bytes: number, max: number) => new AppError(400, 'metadata_too_large', `metadata is ${bytes} bytes as JSON; at most ${max} are stored`),
  invalidCursor: () => new AppError(400, 'invalid_cursor', 'cursor is not one this service handed out'),
  idempotencyKeyReused: () => new AppError(422, 'idempotency_key_reused', 'this Idempotency-Key was already used with a different request body'),
  idempotencyKeyInProgress: (id: string) => new AppError(409, 'idempotency_key_in_progress', 'a request with this Idempotency-Key is still in progress or its outcome is unknown; look the task up by id', { id }),
  queueFull: (queued: number, max: number) => new AppError(429, 'queue_full', `you already have ${queued} tasks queued, the most one caller may have (MAX_QUEUED_PER_CALLER=${max}); wait for some to be sent or cancel some`, { queued, max_queued: max }),
  quotaExceeded: (limit: number, used: number, resetAt: string) => new AppError(429, 'quota_exceeded', `your daily quota of ${limit} submits is used up (${used} today); it resets at ${resetAt}`, { limit, used, reset_at: resetAt }),
  notCancellable: (id: string, status: string) => new AppError(409, 'not_cancellable', `the task is ${status}: only a queued task (not yet sent to the provider) can be cancelled`, { id, status }),
  pushMissingFields: () => new AppError(400, 'invalid_push', 'a callback body must carry either "challenge" or both "task_id" and "status"')
} as const

/** The one JSON error shape: { statusCode, error, code, message, ...details }. */
export function errorBody (statusCode: number, code: string, message: string, details: Record<string, unknown> = {}) {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...details }
}
