// Named application errors: a stable machine code and an HTTP status, defined in one place.
import { STATUS_CODES } from 'node:http'
export type BaseResp = { status_code: number, status_msg: string }

/**
 * Every `code` the API can answer, with when. The type below makes an uncatalogued code a compile error; the OpenAPI
 * document lists this catalogue, and test/errors.test.ts holds it against the README's error list.
 */
export const ERROR_CODES = {
  // Our refusals of a request
  bad_request: 'the body is not valid JSON, or the request is malformed in a way Fastify itself refuses (400)',
  invalid_request: 'a body, parameter, query or header breaks the route\'s schema; the message names the field and what is accepted (400)',
  callback_url_not_allowed: 'the submit carries callback_url, which this service sets itself (400)',
  image_too_large: 'the reference image is 20 MB or more once decoded (400)',
  metadata_too_large: 'metadata is over 4 KiB as JSON, or holds more values than fit in 4 KiB (400)',
  metadata_too_deep: 'metadata nests deeper than 10 levels (400)',
  invalid_cursor: 'a cursor this service did not hand out (400)',
  invalid_range: 'a time range whose until is not after its since (400)',
  invalid_push: 'a callback body with neither challenge nor task_id and status (400)',
  notify_url_not_allowed: 'a notify_url that is not http(s) or resolves to a loopback, private or reserved address (400)',
  unauthorized: 'the internal routes need "Authorization: Bearer <one of API_TOKENS or ADMIN_TOKENS>" (401)',
  callback_token_required: 'a status push on the bare /get_callback path, which only answers challenges (401)',
  unknown_callback_token: 'a push whose callback token belongs to no task (401)',
  token_task_mismatch: 'a push whose callback token belongs to another task_id (401)',
  admin_required: 'an operator\'s route asked for with a token not in ADMIN_TOKENS (another caller\'s task answers not_found instead) (403)',
  admin_token_required: 'an open deployment (API_TOKENS and ADMIN_TOKENS empty) serves and rotates no signing secret (403)',
  download_link_invalid: 'a signed download link that was altered (id, expiry or signature) or is another task\'s (403)',
  download_link_expired: 'a signed download link past its expires; look the task up for a fresh download_url (403)',
  not_found: 'no such task, delivery or route (404)',
  method_not_allowed: 'the route exists, not with this method (405)',
  not_acceptable: 'the Accept header asks for a type this route cannot give (406)',
  not_cancellable: 'a cancel of a task that is no longer queued: it was sent to the provider (or finished) (409)',
  idempotency_key_in_progress: 'the Idempotency-Key\'s first request is still running, or was cut short by a restart (409)',
  video_not_ready: 'the task has not succeeded yet (409)',
  delivery_pending: 'a retry of a delivery that is still pending (409)',
  delivery_superseded: 'a retry that would deliver an older status after a newer one (409)',
  body_too_large: 'the body is over the route\'s limit (SUBMIT_BODY_LIMIT, CALLBACK_BODY_LIMIT) (413)',
  unsupported_media_type: 'a JSON route was sent another content type, e.g. text/plain (415)',
  range_not_satisfiable: 'a Range outside the archived video (416)',
  idempotency_key_reused: 'the Idempotency-Key was used before with another body (422)',
  rate_limited: 'over this route\'s per-minute limit for the caller; see Retry-After (429)',
  queue_full: 'the caller already has MAX_QUEUED_PER_CALLER tasks queued (429)',
  quota_exceeded: 'the caller\'s daily submit quota (SUBMIT_DAILY_QUOTA, CALLER_QUOTAS) is used up; reset_at and Retry-After say when it resets (429)',
  too_many_waiters: 'a long-poll or event stream beyond MAX_WAITERS_PER_CALLER for the caller or MAX_WAITERS in all; see Retry-After (429)',
  poll_budget_exhausted: 'a refresh when the provider\'s call budget for this minute is spent (429)',
  request_error: 'any other 4xx Fastify or a plugin raises itself (none is known today)',
  internal_error: 'a bug or an unexpected failure; internals are never shown, the request_id finds it in our logs (500)',
  database_busy: 'another process holds the database\'s write lock (a backup, the sqlite3 shell); retry after Retry-After, nothing was lost (503)',
  database_unavailable: 'the database (PostgreSQL) cannot be reached; retry after Retry-After (503)',
  provider_not_configured: 'the provider\'s API key is not set on this service (503)',
  ui_not_built: 'the dashboard at /ui/ was not built on this machine (npm run build) (503)',
  // The provider's refusals and failures of a submit (base_resp carries the provider's own code)
  invalid_params: 'the provider refused the request as invalid (MiniMax 2013, Modellix 400) (400)',
  insufficient_balance: 'the provider account has no balance left (MiniMax 1008, Modellix 402) (402)',
  sensitive_content: 'the provider refused the input or output as sensitive (MiniMax 1026, 1027) (422)',
  provider_rate_limited: 'the provider\'s rate limit (MiniMax 1002, 1039, 2045, HTTP 429) on a call other than a create; a refused create is queued instead (202) (429)',
  callback_check_failed: 'MiniMax could not reach PUBLIC_BASE_URL to check the callback URL (MiniMax 2013) (502)',
  provider_auth_failed: 'the provider refused our API key (MiniMax 1004, 2049; HTTP 401, 403): our configuration (502)',
  provider_error: 'any other provider error code or HTTP 4xx (502)',
  provider_unreachable: 'the provider could not be reached (connection refused, DNS); nothing was created (502)',
  task_id_conflict: 'the provider answered with a task_id that already belongs to another task (502)',
  video_link_unavailable: 'the provider\'s download link is not known or expired, and a fresh one could not be fetched now (502)',
  submit_outcome_unknown: 'the create was sent but no answer came (timeout 504; reset, 5xx, unreadable 502): the task stays submitting and is never resent'
} as const satisfies Record<string, string>
export type ErrorCode = keyof typeof ERROR_CODES

export class AppError extends Error {
  override name = 'AppError'
  constructor (
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    // extra fields merged into the JSON error body (our task id, MiniMax's base_resp, ...)
    readonly details: Record<string, unknown> = {},
    // response headers the answer must carry (e.g. retry-after)
    readonly headers: Record<string, string> = {}
  ) {
    super(message)
  }
}

export const errors = {
  unauthorized: () => new AppError(401, 'unauthorized', 'a valid "Authorization: Bearer <token>" header is required'),
  adminTokenRequired: () => new AppError(403, 'admin_token_required', 'an open deployment (API_TOKENS and ADMIN_TOKENS empty) serves no signing secret, ' +
    'since anyone could forge notifications with it: set API_TOKENS (each caller then reads its own secret here), or set NOTIFY_SECRET and give it to your consumers'),
  adminRequired: () => new AppError(403, 'admin_required', 'only an operator (a token of ADMIN_TOKENS) may do this'),
  notFound: (what: string) => new AppError(404, 'not_found', `${what} not found`),
  providerNotConfigured: (provider: string) => new AppError(503, 'provider_not_configured', `${provider.toUpperCase()}_API_KEY is not set on this service, so it cannot submit to ${provider}`),
  callbackUrlNotAllowed: () => new AppError(400, 'callback_url_not_allowed', 'callback_url is set by this service (it receives MiniMax\'s callbacks itself); remove it from the request'),
  imageTooLarge: (bytes: number, max: number) => new AppError(400, 'image_too_large', `the reference image is ${bytes} bytes once decoded; MiniMax accepts less than ${max}`),
  metadataTooLarge: (bytes: number, max: number, atLeast = false) => new AppError(400, 'metadata_too_large', `metadata is ${atLeast ? 'more than ' : ''}${bytes} bytes as JSON; at most ${max} are stored`),
  metadataTooDeep: (max: number) => new AppError(400, 'metadata_too_deep', `metadata nests deeper than ${max} levels; it is for labels and correlation ids`),
  invalidCursor: () => new AppError(400, 'invalid_cursor', 'cursor is not one this service handed out'),
  idempotencyKeyReused: () => new AppError(422, 'idempotency_key_reused', 'this Idempotency-Key was already used with a different request body'),
  idempotencyKeyInProgress: (id: string) => new AppError(409, 'idempotency_key_in_progress', 'a request with this Idempotency-Key is still in progress or its outcome is unknown; look the task up by id', { id }),
  queueFull: (queued: number, max: number) => new AppError(429, 'queue_full', `you already have ${queued} tasks queued, the most one caller may have (MAX_QUEUED_PER_CALLER=${max}); wait for some to be sent or cancel some`, { queued, max_queued: max }),
  quotaExceeded: (limit: number, used: number, resetAt: string, retryAfterSeconds: number) => new AppError(429, 'quota_exceeded', `your daily quota of ${limit} submits is used up (${used} today); it resets at ${resetAt}`,
    { limit, used, reset_at: resetAt }, { 'retry-after': String(retryAfterSeconds) }),
  notCancellable: (id: string, status: string) => new AppError(409, 'not_cancellable', `the task is ${status}: only a queued task (not yet sent to the provider) can be cancelled`, { id, status }),
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
  tooManyWaiters: (scope: 'caller' | 'total', limit: number) => new AppError(429, 'too_many_waiters', scope === 'caller'
    ? `this caller already holds ${limit} long-polls and event streams open (MAX_WAITERS_PER_CALLER); close one or poll without wait`
    : `the service already holds ${limit} long-polls and event streams open (MAX_WAITERS); try again shortly or poll without wait`,
  // A slot frees as soon as another wait ends: worth retrying soon.
  {}, { 'retry-after': '1' }),
  // A lock held by another process (a backup, the sqlite3 shell): nothing was written, the same request may be retried.
  databaseBusy: (retryAfterSeconds: number) => new AppError(503, 'database_busy', `the database is locked by another process; nothing was written, retry in ${retryAfterSeconds} s`, {}, { 'retry-after': String(retryAfterSeconds) }),
  // PostgreSQL is down or refuses work (a restart, a failover): worth retrying in a few seconds, on any replica.
  databaseUnavailable: (retryAfterSeconds: number) => new AppError(503, 'database_unavailable', `the database cannot be reached right now; retry in ${retryAfterSeconds} s`, {}, { 'retry-after': String(retryAfterSeconds) }),
  uiNotBuilt: () => new AppError(503, 'ui_not_built', 'the dashboard was not built on this machine: run npm run build'),
  pushMissingFields: () => new AppError(400, 'invalid_push', 'a callback body must carry either "challenge" or both "task_id" and "status"')
} as const

/** The one JSON error shape: { statusCode, error, code, message, ...details }. */
export function errorBody (statusCode: number, code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...details }
}

type SchemaError = { keyword: string, instancePath: string, params: Record<string, unknown>, message?: string, parentSchema?: unknown }

/**
 * A validation refusal a person can act on: which field, what is accepted, and why an unknown field is refused.
 * Only schema facts are echoed, never the value sent (it may be a 27 MB image or a secret).
 */
export function validationMessage (validation: readonly SchemaError[], context: string | undefined): string {
  return validation.slice(0, MAX_VALIDATION_ERRORS_SHOWN).map((error) => describeSchemaError(error, context ?? 'body')).join('; ')
}

// Ajv stops at the first error (allErrors off); a few are still joined if a plugin reports more.
const MAX_VALIDATION_ERRORS_SHOWN = 3

function describeSchemaError (error: SchemaError, context: string): string {
  const where = `${context}${error.instancePath}`
  const parent = (typeof error.parentSchema === 'object' && error.parentSchema !== null ? error.parentSchema : {}) as {
    properties?: Record<string, unknown>, description?: string
  }
  const why = parent.description ? ` (${parent.description})` : ''
  switch (error.keyword) {
    case 'additionalProperties': {
      const accepted = Object.keys(parent.properties ?? {})
      return `${where} has a field "${String(error.params.additionalProperty)}" that this route does not take: unknown fields are refused, ` +
        'not silently dropped, so a typo or a field of another model is seen' + (accepted.length ? `; accepted fields: ${accepted.join(', ')}` : '')
    }
    case 'const':
      return `${where} must be ${JSON.stringify(error.params.allowedValue)}${why}`
    case 'enum':
      return `${where} must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}${why}`
    default:
      return `${where} ${error.message ?? 'is invalid'}`
  }
}
