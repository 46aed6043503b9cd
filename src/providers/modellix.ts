// HTTP client for Modellix, an aggregator reselling S2V-01: submit and poll (it has no callbacks). No Fastify here.
import { parseRetryAfter } from '../lib/retry-after.js'
import { normaliseStatus } from '../services/task-state.js'
import { parseJsonObject, reportCall, transportError } from './http.js'
import { ProviderError } from './provider-error.js'
import { signedUrlExpiry } from './signed-url-expiry.js'
import type { ProviderCall, ProviderTaskState, SubmitRequest, VideoLink, VideoProvider } from './provider.js'

/** The documented path; newer official clients post to the same path without `/async`, hence configurable. */
export const DEFAULT_MODELLIX_SUBMIT_PATH = '/api/v1/minimax/minimax-s2v-01/async'
/** Modellix keeps results for 24 hours (provider-facts.md). */
export const MODELLIX_RESULT_TTL_MS = 24 * 60 * 60 * 1000
/** Taken off the 24 h when the URL carries no expiry: we see the result some polls after it was made, and clocks drift. */
export const MODELLIX_EXPIRY_MARGIN_MS = 60 * 60 * 1000

export type ModellixClientOptions = {
  baseUrl: string
  apiKey: string
  /** Defaults to DEFAULT_MODELLIX_SUBMIT_PATH. */
  submitPath?: string | undefined
  /** For each HTTP call, body included. */
  timeoutMs: number
  fetch?: typeof fetch
  /** Told about every call (for metrics), whatever its outcome. */
  onCall?: (call: ProviderCall) => void
}

type Operation = ProviderCall['operation']
type Envelope = { data: Record<string, unknown>, traceId: string | null }

// Documented as final: bad request, bad key, no balance, unknown task or model. Nothing was created.
const FINAL_HTTP_STATUSES = new Set([400, 401, 402, 404])
// X-RateLimit-Reset's form is undocumented: at or above these it is an epoch time (ms, then s), below a wait in seconds.
const EPOCH_MS_FLOOR = 1e12
const EPOCH_S_FLOOR = 1e9
// A longer hint is more likely a misread header than a real wait; the caller's own backoff takes over.
const MAX_RETRY_HINT_MS = 60 * 60 * 1000
const NUMBER = /^\d+(?:\.\d+)?$/

export class ModellixClient implements VideoProvider {
  readonly name = 'modellix' as const
  readonly pushesStatus = false
  readonly #baseUrl: string
  readonly #apiKey: string
  readonly #submitPath: string
  readonly #timeoutMs: number
  readonly #fetch: typeof fetch
  readonly #onCall: (call: ProviderCall) => void

  constructor (options: ModellixClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.#apiKey = options.apiKey
    const path = options.submitPath ?? DEFAULT_MODELLIX_SUBMIT_PATH
    this.#submitPath = path.startsWith('/') ? path : `/${path}`
    this.#timeoutMs = options.timeoutMs
    this.#fetch = options.fetch ?? fetch
    this.#onCall = options.onCall ?? (() => {})
  }

  /** Creates a task. The callback URL is ignored: Modellix has no callbacks, polling is the only way. */
  async submit (request: SubmitRequest, _callbackUrl: string | null): Promise<{ taskId: string, traceId: string | null }> {
    const body: Record<string, unknown> = { subject_reference_images: [request.image] }
    if (request.prompt !== undefined) body.prompt = request.prompt
    if (request.prompt_optimizer !== undefined) body.prompt_optimizer = request.prompt_optimizer
    const { data, traceId } = await this.#call('create', 'POST', this.#submitPath, body)
    const taskId = data.task_id
    if (typeof taskId !== 'string' || taskId === '') {
      throw new ProviderError('broken', 'Modellix accepted the submit but its answer has no usable task_id', { traceId })
    }
    return { taskId, traceId }
  }

  async query (taskId: string): Promise<ProviderTaskState> {
    return await this.#query(taskId, 'query')
  }

  /** Modellix hands the link out with the status, so this is a fresh query; the fileId is not used. */
  async videoLink (taskId: string, _fileId: string | null = null): Promise<VideoLink> {
    const state = await this.#query(taskId, 'retrieve')
    if (state.video === null) {
      throw new ProviderError('rejected', `Modellix has no video for task ${taskId} (status ${state.providerStatus})`, {
        providerMessage: `status ${state.providerStatus}`, traceId: state.traceId
      })
    }
    return state.video
  }

  async #query (taskId: string, operation: Operation): Promise<ProviderTaskState> {
    const { data, traceId } = await this.#call(operation, 'GET', `/api/v1/tasks/${encodeURIComponent(taskId)}`)
    const status = data.status
    if (typeof status !== 'string' || status === '') {
      throw new ProviderError('broken', 'Modellix answered the query without a status', { traceId })
    }
    if (typeof data.task_id === 'string' && data.task_id !== taskId) {
      throw new ProviderError('broken', `Modellix answered about task ${data.task_id} when asked about ${taskId}`, { traceId })
    }
    return {
      providerStatus: status,
      fileId: null,
      error: normaliseStatus(status) === 'failed' ? failureOf(data) : null,
      video: videoOf(data, Date.now()),
      traceId
    }
  }

  async #call (operation: Operation, method: 'GET' | 'POST', path: string, payload?: unknown): Promise<Envelope> {
    return await reportCall('modellix', operation, this.#onCall, () => this.#send(method, path, payload))
  }

  async #send (method: 'GET' | 'POST', path: string, payload: unknown): Promise<Envelope> {
    let response: Response
    try {
      response = await this.#fetch(`${this.#baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#apiKey}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' })
        },
        ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
        signal: AbortSignal.timeout(this.#timeoutMs)
      })
    } catch (err) {
      throw transportError('Modellix', err, this.#timeoutMs)
    }
    const traceId = response.headers.get('x-request-id')
    let text: string
    try {
      text = await response.text()
    } catch (err) {
      throw transportError('Modellix', err, this.#timeoutMs, traceId)
    }
    const body = parseJsonObject(text)
    const code = typeof body?.code === 'number' ? body.code : null
    const message = typeof body?.message === 'string' ? body.message : null
    const said = message ? `: ${message}` : ''

    // 5xx says nothing about whether a submitted task exists; 429 is a limit whatever the body says.
    if (response.status === 429) {
      throw new ProviderError('http', `Modellix rate limit (HTTP 429)${said}`, {
        httpStatus: 429, providerCode: code, providerMessage: message, traceId, retryAfterMs: retryHint(response.headers, Date.now())
      })
    }
    if (response.status >= 500) {
      throw new ProviderError('http', `Modellix answered HTTP ${response.status}${said}`, {
        httpStatus: response.status, providerCode: code, providerMessage: message, traceId
      })
    }
    if (FINAL_HTTP_STATUSES.has(response.status)) {
      throw new ProviderError('rejected', `Modellix refused the request: HTTP ${response.status}${said}`, {
        providerCode: code ?? response.status, providerMessage: message, httpStatus: response.status, traceId
      })
    }
    if (!response.ok) {
      throw new ProviderError('http', `Modellix answered HTTP ${response.status}${said}`, {
        httpStatus: response.status, providerCode: code, providerMessage: message, traceId
      })
    }
    if (body === null) {
      throw new ProviderError('broken', 'Modellix answered with something that is not JSON', { traceId })
    }
    // Two envelopes are documented: {code, message, data} and {success, data}.
    if ((code !== null && code !== 0) || body.success === false) {
      throw new ProviderError('rejected', `Modellix refused the request${code !== null ? `: ${code}` : ''}${said}`, {
        providerCode: code, providerMessage: message, httpStatus: response.status, traceId
      })
    }
    if ((code === null && body.success !== true) || !isRecord(body.data)) {
      throw new ProviderError('broken', 'Modellix answered with something that is not its JSON envelope', { traceId })
    }
    return { data: body.data, traceId }
  }
}

/** The task's failure as Modellix words it; the shape is undocumented, so several spellings are read. */
function failureOf (data: Record<string, unknown>): { code: string, message: string } {
  const nested = data.error
  const error = isRecord(nested) ? nested : {}
  const code = firstOf(error.code, data.error_code, data.code)
  const message = firstOf(error.message, typeof nested === 'string' ? nested : undefined, data.error_message, data.message, data.reason)
  return { code: code ?? 'provider_failed', message: message ?? 'Modellix reported the task as failed' }
}

function firstOf (...values: unknown[]): string | null {
  for (const value of values) {
    if (typeof value === 'string' && value !== '') return value
    if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  }
  return null
}

/** The first video resource (else the first with a URL), with its expiry. */
function videoOf (data: Record<string, unknown>, now: number): VideoLink | null {
  const result = data.result
  const resources = isRecord(result) && Array.isArray(result.resources) ? result.resources.filter(isRecord) : []
  const withUrl = resources.filter(r => typeof r.url === 'string' && r.url !== '')
  const resource = withUrl.find(r => r.type === 'video') ?? withUrl[0]
  if (resource === undefined) return null
  const url = resource.url as string
  const expiresAt = signedUrlExpiry(url, now) ?? now + MODELLIX_RESULT_TTL_MS - MODELLIX_EXPIRY_MARGIN_MS
  return { url, expiresAt: new Date(expiresAt).toISOString(), width: dimension(resource.width), height: dimension(resource.height) }
}

function dimension (value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : null
}

/** How long to wait after a 429, from X-RateLimit-Reset (else Retry-After); null when neither is readable. */
function retryHint (headers: Headers, now: number): number | null {
  const reset = headers.get('x-ratelimit-reset')?.trim()
  let waitMs: number | null = null
  if (reset !== undefined && NUMBER.test(reset)) {
    const value = Number(reset)
    waitMs = value >= EPOCH_MS_FLOOR ? value - now : value >= EPOCH_S_FLOOR ? value * 1000 - now : value * 1000
  } else {
    waitMs = parseRetryAfter(headers.get('retry-after'), now, MAX_RETRY_HINT_MS)
  }
  return waitMs === null ? null : Math.min(MAX_RETRY_HINT_MS, Math.max(0, Math.ceil(waitMs)))
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
