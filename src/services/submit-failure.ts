// How a failed create at MiniMax is answered to our caller: HTTP status, our code, and MiniMax's base_resp.
import type { BaseResp, ErrorCode } from '../errors.js'
import type { ProviderError } from '../providers/provider-error.js'

export type SubmitFailure = {
  statusCode: number
  code: ErrorCode
  message: string
  baseResp: BaseResp
  /** The task may exist at MiniMax: keep the row "submitting" so a later callback can still resolve it. */
  outcomeUnknown: boolean
}

// Provider codes (provider-facts.md) → what our caller should hear. Key and balance problems are ours, not the caller's.
// MiniMax's codes are 1000 and up; Modellix's are HTTP statuses.
const REJECTIONS: Record<number, { statusCode: number, code: ErrorCode }> = {
  400: { statusCode: 400, code: 'invalid_params' },
  401: { statusCode: 502, code: 'provider_auth_failed' },
  402: { statusCode: 402, code: 'insufficient_balance' },
  1002: { statusCode: 429, code: 'provider_rate_limited' },
  1039: { statusCode: 429, code: 'provider_rate_limited' },
  1004: { statusCode: 502, code: 'provider_auth_failed' },
  2049: { statusCode: 502, code: 'provider_auth_failed' },
  1008: { statusCode: 402, code: 'insufficient_balance' },
  1026: { statusCode: 422, code: 'sensitive_content' },
  1027: { statusCode: 422, code: 'sensitive_content' },
  2013: { statusCode: 400, code: 'invalid_params' }
}

// The nearest MiniMax codes for failures MiniMax itself did not put a code on.
const UNKNOWN_ERROR = 1000
const TIMEOUT = 1001

const UNKNOWN_OUTCOME = 'The provider may or may not have created the task; it is not retried automatically (a create costs money). ' +
  'The task stays "submitting" until a callback resolves it: look it up by id instead of resubmitting.'

export function submitFailure (err: ProviderError, publicBaseUrl: string): SubmitFailure {
  const ours = (statusCode: number, code: ErrorCode, statusCodeAtMiniMax: number, outcomeUnknown = false): SubmitFailure => ({
    statusCode,
    code,
    message: outcomeUnknown ? `${err.message}. ${UNKNOWN_OUTCOME}` : err.message,
    baseResp: { status_code: statusCodeAtMiniMax, status_msg: err.message },
    outcomeUnknown
  })
  if (err.outcomeUnknown) return ours(err.kind === 'timeout' ? 504 : 502, 'submit_outcome_unknown', err.kind === 'timeout' ? TIMEOUT : UNKNOWN_ERROR, true)
  if (err.kind === 'unreachable') return ours(502, 'provider_unreachable', UNKNOWN_ERROR)
  if (err.kind === 'http') {
    if (err.httpStatus === 429) return ours(429, 'provider_rate_limited', 1002)
    if (err.httpStatus === 401 || err.httpStatus === 403) return ours(502, 'provider_auth_failed', 1004)
    return ours(502, 'provider_error', UNKNOWN_ERROR)
  }
  const code = err.providerCode ?? UNKNOWN_ERROR
  const baseResp = { status_code: code, status_msg: err.providerMessage ?? '' }
  if (code === 2013 && /callback/i.test(err.providerMessage ?? '')) {
    return {
      statusCode: 502,
      code: 'callback_check_failed',
      message: `MiniMax could not verify this service's callback URL under PUBLIC_BASE_URL=${publicBaseUrl}: it must be publicly reachable and answer the challenge within 3 s`,
      baseResp,
      outcomeUnknown: false
    }
  }
  const mapped = REJECTIONS[code] ?? { statusCode: 502, code: 'provider_error' as const }
  return { ...mapped, message: err.message, baseResp, outcomeUnknown: false }
}
