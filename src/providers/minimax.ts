// HTTP client for MiniMax's video generation API. Knows nothing of Fastify: base URL, key, timeout and fetch are injected.
import { parseProviderJson } from '../lib/json-ids.js'
import { ProviderError } from './provider-error.js'
import type { ProviderCall } from './provider.js'

export type SubjectReference = { type: 'character', image: string[] }

export type MiniMaxCreateRequest = {
  model: string
  prompt?: string | undefined
  prompt_optimizer?: boolean | undefined
  subject_reference: SubjectReference[]
  callback_url?: string | undefined
}

export type MiniMaxClientOptions = {
  baseUrl: string
  apiKey: string
  createTimeoutMs: number
  fetch?: typeof fetch
  /** Told about every call (for metrics), whatever its outcome. */
  onCall?: (call: ProviderCall) => void
}

type BaseResp = { status_code?: unknown, status_msg?: unknown }

// Failures raised before a single byte reached MiniMax: the task certainly does not exist.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])

export class MiniMaxClient {
  readonly #baseUrl: string
  readonly #apiKey: string
  readonly #createTimeoutMs: number
  readonly #fetch: typeof fetch

  constructor (options: MiniMaxClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.#apiKey = options.apiKey
    this.#createTimeoutMs = options.createTimeoutMs
    this.#fetch = options.fetch ?? fetch
  }

  /** Creates a video generation task; resolves with MiniMax's task_id (a string, never a number). */
  async createVideo (request: MiniMaxCreateRequest): Promise<{ taskId: string, traceId: string | null }> {
    const { body, traceId } = await this.#post('/v1/video_generation', request, this.#createTimeoutMs)
    const taskId = (body as { task_id?: unknown }).task_id
    if (typeof taskId !== 'string' || !/^\d+$/.test(taskId)) {
      throw new ProviderError('broken', 'MiniMax accepted the create but its answer has no usable task_id', { traceId })
    }
    return { taskId, traceId }
  }

  async #post (path: string, payload: unknown, timeoutMs: number): Promise<{ body: unknown, traceId: string | null }> {
    let response: Response
    try {
      response = await this.#fetch(`${this.#baseUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.#apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(timeoutMs)
      })
    } catch (err) {
      throw transportError(err, timeoutMs)
    }
    const traceId = response.headers.get('trace-id')
    let text: string
    try {
      text = await response.text()
    } catch (err) {
      throw transportError(err, timeoutMs, traceId)
    }
    const body = parseOrNull(text)
    const baseResp = (body as { base_resp?: BaseResp } | null)?.base_resp
    // 5xx says nothing about whether the task exists, and 429 is a limit whatever base_resp says: the HTTP status wins.
    if (response.status >= 500 || response.status === 429) {
      throw new ProviderError('http', `MiniMax answered HTTP ${response.status}`, { httpStatus: response.status, traceId })
    }
    if (typeof baseResp?.status_code === 'number' && baseResp.status_code !== 0) {
      const message = typeof baseResp.status_msg === 'string' ? baseResp.status_msg : ''
      throw new ProviderError('rejected', `MiniMax refused the request: ${baseResp.status_code} ${message}`, {
        providerCode: baseResp.status_code, providerMessage: message, httpStatus: response.status, traceId
      })
    }
    if (!response.ok) {
      throw new ProviderError('http', `MiniMax answered HTTP ${response.status}`, { httpStatus: response.status, traceId })
    }
    if (body === null || typeof baseResp?.status_code !== 'number') {
      throw new ProviderError('broken', 'MiniMax answered with something that is not its JSON envelope', { traceId })
    }
    return { body, traceId }
  }
}

function parseOrNull (text: string): object | null {
  try {
    const value = parseProviderJson(text)
    return typeof value === 'object' && value !== null ? value : null
  } catch {
    return null
  }
}

function transportError (err: unknown, timeoutMs: number, traceId: string | null = null): ProviderError {
  const error = err as Error & { cause?: { code?: string } }
  if (error.name === 'TimeoutError' || error.name === 'AbortError') {
    return new ProviderError('timeout', `MiniMax did not answer within ${timeoutMs} ms`, { traceId, cause: err })
  }
  const code = error.cause?.code ?? (error as { code?: string }).code
  if (code && NOT_SENT_CODES.has(code)) {
    return new ProviderError('unreachable', `MiniMax could not be reached (${code})`, { traceId, cause: err })
  }
  return new ProviderError('broken', `the connection to MiniMax failed (${code ?? error.message})`, { traceId, cause: err })
}
