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
  adminRequired: () => new AppError(403, 'admin_required', 'only an operator (a token of ADMIN_TOKENS) may do this'),
  notFound: (what: string) => new AppError(404, 'not_found', `${what} not found`),
  providerNotConfigured: (provider: string) => new AppError(503, 'provider_not_configured', `${provider.toUpperCase()}_API_KEY is not set on this service, so it cannot submit to ${provider}`),
  callbackUrlNotAllowed: () => new AppError(400, 'callback_url_not_allowed', 'callback_url is set by this service (it receives MiniMax\'s callbacks itself); remove it from the request'),
  imageTooLarge: (bytes: number, max: number) => new AppError(400, 'image_too_large', `the reference image is ${bytes} bytes once decoded; MiniMax accepts less than ${max}`),
  metadataTooLarge: (bytes: number, max: number) => new AppError(400, 'metadata_too_large', `metadata is ${bytes} bytes as JSON; at most ${max} are stored`),
  invalidCursor: () => new AppError(400, 'invalid_cursor', 'cursor is not one this service handed out'),
  idempotencyKeyReused: () => new AppError(422, 'idempotency_key_reused', 'this Idempotency-Key was already used with a different request body'),
  idempotencyKeyInProgress: (id: string) => new AppError(409, 'idempotency_key_in_progress', 'a request with this Idempotency-Key is still in progress or its outcome is unknown; look the task up by id', { id }),
  videoNotReady: (id: string, status: string) => new AppError(409, 'video_not_ready', `the task is ${status}; its video is not available yet`, { id, status }),
  videoLinkUnavailable: (id: string) => new AppError(502, 'video_link_unavailable', 'the provider\'s download link is not known or expired, and a fresh one could not be fetched now; try again shortly', { id }),
  downloadLinkInvalid: () => new AppError(403, 'download_link_invalid', 'this download link is not one this service signed for this video (altered, or for another task); look the task up for a fresh download_url'),
  downloadLinkExpired: () => new AppError(403, 'download_link_expired', 'this download link has expired; look the task up (or call /v1/files/retrieve) for a fresh download_url'),
  // MiniMax-compatible lookups: not found (or another caller's) reads as MiniMax's invalid-params answer.
  minimaxTaskNotFound: (taskId: string) => new AppError(404, 'not_found', `task ${taskId} not found`, {
    task_id: taskId, base_resp: { status_code: 2013, status_msg: `invalid params: task ${taskId} not found` }
  }),
  minimaxFileNotFound: (fileId: string) => new AppError(404, 'not_found', `file ${fileId} not found`, {
    base_resp: { status_code: 2013, status_msg: `invalid params: file ${fileId} not found` }
  }),
  pushMissingFields: () => new AppError(400, 'invalid_push', 'a callback body must carry either "challenge" or both "task_id" and "status"')
} as const

/** The one JSON error shape: { statusCode, error, code, message, ...details }. */
export function errorBody (statusCode: number, code: string, message: string, details: Record<string, unknown> = {}) {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...details }
}
