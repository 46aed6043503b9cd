// What can go wrong when calling a video provider, in terms the domain can act on.

export type ProviderFailureKind =
  | 'rejected' // the provider answered with a business error (MiniMax's base_resp.status_code != 0, Modellix's 400/401/402/404 or code != 0): nothing was created
  | 'http' // a non-2xx answer without a business error
  | 'unreachable' // the request never reached the provider (refused, DNS): nothing was created
  | 'timeout' // no answer in time: the task may or may not exist
  | 'broken' // connection reset or an unreadable answer: the task may or may not exist

export class ProviderError extends Error {
  override name = 'ProviderError'
  readonly kind: ProviderFailureKind
  /** The provider's own error code and message (MiniMax's base_resp), when it gave one. */
  readonly providerCode: number | null
  readonly providerMessage: string | null
  readonly httpStatus: number | null
  readonly traceId: string | null
  /** How long the provider asked us to wait before trying again (a 429's rate-limit reset), when it said so. */
  readonly retryAfterMs: number | null

  constructor (kind: ProviderFailureKind, message: string, details: {
    providerCode?: number | null, providerMessage?: string | null, httpStatus?: number | null, traceId?: string | null, cause?: unknown, retryAfterMs?: number | null
  } = {}) {
    super(details.traceId ? `${message} (trace id ${details.traceId})` : message, { cause: details.cause })
    this.kind = kind
    this.providerCode = details.providerCode ?? null
    this.providerMessage = details.providerMessage ?? null
    this.httpStatus = details.httpStatus ?? null
    this.traceId = details.traceId ?? null
    this.retryAfterMs = details.retryAfterMs ?? null
  }

  /**
   * True when the provider may have created the task although we got no usable answer. Creating costs money
   * and the provider has no idempotency key, so such a create must never be retried automatically.
   */
  get outcomeUnknown (): boolean {
    return this.kind === 'timeout' || this.kind === 'broken' || (this.kind === 'http' && (this.httpStatus ?? 0) >= 500)
  }
}
