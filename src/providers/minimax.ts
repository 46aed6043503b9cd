// HTTP client for MiniMax's video generation API. Knows nothing of Fastify: base URL, key, timeouts and fetch are injected.
import { parseJsonObject, reportCall, transportError } from './http.js'
import { ProviderError } from './provider-error.js'
import { signedUrlExpiry } from './signed-url-expiry.js'
import type { ProviderCall, ProviderTaskState, SubmitRequest, VideoLink, VideoProvider } from './provider.js'

export type MiniMaxClientOptions = {
  baseUrl: string
  apiKey: string
  createTimeoutMs: number
  /** For queries and file look-ups, which are cheap to retry. */
  requestTimeoutMs?: number
  fetch?: typeof fetch
  /** Told about every call (for metrics), whatever its outcome. */
  onCall?: (call: ProviderCall) => void
}

type BaseResp = { status_code?: unknown, status_msg?: unknown }
type Operation = ProviderCall['operation']

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000
// Older docs: a download URL works for 9 hours; keep a margin so we never hand out one about to die.
const DOWNLOAD_URL_LIFETIME_MS = 9 * 3600_000
const DOWNLOAD_URL_SAFETY_MS = 15 * 60_000

export class MiniMaxClient implements VideoProvider {
  readonly name = 'minimax' as const
  readonly pushesStatus = true
  readonly #baseUrl: string
  readonly #apiKey: string
  readonly #createTimeoutMs: number
  readonly #requestTimeoutMs: number
  readonly #fetch: typeof fetch
  readonly #onCall: (call: ProviderCall) => void

  constructor (options: MiniMaxClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.#apiKey = options.apiKey
    this.#createTimeoutMs = options.createTimeoutMs
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.#fetch = options.fetch ?? fetch
    this.#onCall = options.onCall ?? (() => {})
  }

  /** Creates a video generation task; resolves with MiniMax's task_id (a string, never a number). */
  async submit (request: SubmitRequest, callbackUrl: string | null): Promise<{ taskId: string, traceId: string | null }> {
    const payload = {
      model: request.model,
      prompt: request.prompt,
      prompt_optimizer: request.prompt_optimizer,
      subject_reference: [{ type: 'character', image: [request.image] }],
      ...(callbackUrl ? { callback_url: callbackUrl } : {})
    }
    const { body, traceId } = await this.#call('create', 'POST', '/v1/video_generation', payload, this.#createTimeoutMs)
    const taskId = (body as { task_id?: unknown }).task_id
    if (typeof taskId !== 'string' || !/^\d+$/.test(taskId)) {
      throw new ProviderError('broken', 'MiniMax accepted the create but its answer has no usable task_id', { traceId })
    }
    return { taskId, traceId }
  }

  /** GET /v1/query/video_generation. A failed task comes back as a state; a failed question throws. */
  async query (taskId: string): Promise<ProviderTaskState> {
    const path = `/v1/query/video_generation?task_id=${encodeURIComponent(taskId)}`
    const { body, traceId, baseResp } = await this.#call('query', 'GET', path, undefined, this.#requestTimeoutMs, { statusMayCarryError: true })
    const answer = body as { status?: unknown, file_id?: unknown }
    const failedCode = typeof baseResp.status_code === 'number' && baseResp.status_code !== 0 ? baseResp.status_code : null
    return {
      providerStatus: String(answer.status),
      fileId: typeof answer.file_id === 'string' && answer.file_id !== '' ? answer.file_id : null,
      error: failedCode === null ? null : { code: String(failedCode), message: typeof baseResp.status_msg === 'string' ? baseResp.status_msg : '' },
      video: null,
      traceId
    }
  }

  /** GET /v1/files/retrieve: a fresh signed download URL for the task's file. */
  async videoLink (taskId: string, fileId: string | null): Promise<VideoLink> {
    if (!fileId) throw new ProviderError('rejected', `MiniMax task ${taskId} has no file_id yet`)
    const { body } = await this.#call('retrieve', 'GET', `/v1/files/retrieve?file_id=${encodeURIComponent(fileId)}`, undefined, this.#requestTimeoutMs)
    const file = (body as { file?: { download_url?: unknown, bytes?: unknown } }).file
    const url = file?.download_url
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new ProviderError('broken', 'MiniMax\'s file answer has no download_url')
    const bytes = Number.isSafeInteger(file?.bytes) && (file?.bytes as number) >= 0 ? file?.bytes as number : null
    return { url, expiresAt: downloadExpiry(url, Date.now()), width: null, height: null, bytes }
  }

  async #call (operation: Operation, method: 'GET' | 'POST', path: string, payload: unknown, timeoutMs: number, options: { statusMayCarryError?: boolean } = {}) {
    return await reportCall('minimax', operation, this.#onCall, () => this.#request(method, path, payload, timeoutMs, options))
  }

  async #request (method: 'GET' | 'POST', path: string, payload: unknown, timeoutMs: number, options: { statusMayCarryError?: boolean }) {
    let response: Response
    try {
      response = await this.#fetch(`${this.#baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.#apiKey}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
        body: payload === undefined ? undefined : JSON.stringify(payload),
        signal: AbortSignal.timeout(timeoutMs)
      })
    } catch (err) {
      throw transportError('MiniMax', err, timeoutMs)
    }
    const traceId = response.headers.get('trace-id')
    let text: string
    try {
      text = await response.text()
    } catch (err) {
      throw transportError('MiniMax', err, timeoutMs, traceId)
    }
    const body = parseJsonObject(text)
    const baseResp: BaseResp = (body as { base_resp?: BaseResp } | null)?.base_resp ?? {}
    // 5xx says nothing about whether the task exists, and 429 is a limit whatever base_resp says: the HTTP status wins.
    if (response.status >= 500 || response.status === 429) {
      throw new ProviderError('http', `MiniMax answered HTTP ${response.status}`, { httpStatus: response.status, traceId })
    }
    const code = baseResp.status_code
    // A query for a failed task carries the failure's code next to status "Fail": that is an answer, not an error.
    const isTaskFailure = options.statusMayCarryError && typeof (body as { status?: unknown } | null)?.status === 'string'
    if (typeof code === 'number' && code !== 0 && !isTaskFailure) {
      const message = typeof baseResp.status_msg === 'string' ? baseResp.status_msg : ''
      throw new ProviderError('rejected', `MiniMax refused the request: ${code} ${message}`, {
        providerCode: code, providerMessage: message, httpStatus: response.status, traceId
      })
    }
    if (!response.ok) {
      throw new ProviderError('http', `MiniMax answered HTTP ${response.status}`, { httpStatus: response.status, traceId })
    }
    if (body === null || typeof code !== 'number') {
      throw new ProviderError('broken', 'MiniMax answered with something that is not its JSON envelope', { traceId })
    }
    return { body, traceId, baseResp }
  }
}

/** When a signed download URL dies: what the URL says when it says it, else 9 h from now; minus a margin. */
export function downloadExpiry (url: string, now: number): string {
  const dies = signedUrlExpiry(url, now) ?? now + DOWNLOAD_URL_LIFETIME_MS
  return new Date(dies - DOWNLOAD_URL_SAFETY_MS).toISOString()
}
