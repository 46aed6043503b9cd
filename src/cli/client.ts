// The service's public JSON API over fetch: one place that adds the token and turns every failure into an exit code.
import { CliError, EXIT } from './exit-codes.js'

// A plain request (not a long-poll, not a stream) that takes longer than this is treated as an unreachable service.
export const REQUEST_TIMEOUT_MS = 30_000
// Long-polls ask the server to wait this long at most (the service caps `wait` at 60 s); the socket gets a margin on top.
export const LONG_POLL_MARGIN_MS = 15_000

export type ApiErrorBody = { statusCode?: number, code?: string, message?: string, base_resp?: { status_code?: number, status_msg?: string } }
export type RequestOptions = {
  query?: Record<string, string | number | undefined>
  body?: unknown
  headers?: Record<string, string>
  timeoutMs?: number
  signal?: AbortSignal
}

export class ApiClient {
  readonly baseUrl: string
  readonly #token: string | undefined
  readonly #fetch: typeof fetch

  constructor (baseUrl: string, token: string | undefined, fetchImpl: typeof fetch = fetch) {
    this.baseUrl = baseUrl
    this.#token = token
    this.#fetch = fetchImpl
  }

  url (path: string, query: RequestOptions['query'] = {}): string {
    const url = new URL(this.baseUrl + path)
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value))
    return url.href
  }

  /** Sends one request and answers the parsed JSON body of a 2xx (null for 204); anything else throws a CliError. */
  async json<T> (method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number, body: T, headers: Headers }> {
    const res = await this.raw(method, path, { ...opts, headers: { accept: 'application/json', ...opts.headers } })
    const text = await res.text()
    if (res.status === 204 || text === '') return { status: res.status, body: null as T, headers: res.headers }
    try {
      return { status: res.status, body: JSON.parse(text) as T, headers: res.headers }
    } catch {
      throw new CliError(EXIT.apiError, `${method} ${path}: the service answered HTTP ${res.status} with a body that is not JSON`, { code: 'bad_response', http_status: res.status })
    }
  }

  /** The response of a 2xx (or 3xx with redirect: 'manual'), body unread; errors are thrown as for json(). */
  async raw (method: string, path: string, opts: RequestOptions & { redirect?: 'follow' | 'manual' } = {}): Promise<Response> {
    const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS
    const signals = [AbortSignal.timeout(timeoutMs), ...(opts.signal ? [opts.signal] : [])]
    const headers: Record<string, string> = { ...opts.headers }
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`
    let body: string | undefined
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(opts.body)
    }
    let res: Response
    try {
      res = await this.#fetch(this.url(path, opts.query), { method, headers, body, redirect: opts.redirect ?? 'follow', signal: AbortSignal.any(signals) })
    } catch (err) {
      throw this.#transportError(err, opts.signal, timeoutMs)
    }
    if (res.status >= 400) throw await apiError(method, path, res)
    return res
  }

  #transportError (err: unknown, signal: AbortSignal | undefined, timeoutMs: number): Error {
    // Our own abort (Ctrl-C) is not the service's fault: let the caller see it as such.
    if (signal?.aborted === true) return signal.reason instanceof Error ? signal.reason : new Error('aborted')
    const e = err as Error & { cause?: { code?: string, message?: string } }
    if (e.name === 'TimeoutError') {
      return new CliError(EXIT.unreachable, `the service at ${this.baseUrl} did not answer within ${Math.round(timeoutMs / 1000)} s`, { code: 'service_timeout' })
    }
    const reason = e.cause?.code ?? e.cause?.message ?? e.message
    return new CliError(EXIT.unreachable, `cannot reach the service at ${this.baseUrl} (${reason}); is it running? (set the URL with --url, S2V_URL or s2v config set url)`, { code: 'unreachable', reason })
  }
}

/** The service's error body as a CliError: its code and message, and MiniMax's code when it gave one. */
export async function apiError (method: string, path: string, res: Response): Promise<CliError> {
  const text = await res.text().catch(() => '')
  let body: ApiErrorBody = {}
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null) body = parsed as ApiErrorBody
  } catch {}
  const code = body.code ?? `http_${res.status}`
  const minimax = body.base_resp !== undefined && body.base_resp.status_code !== undefined && body.base_resp.status_code !== 0
    ? { minimax_code: body.base_resp.status_code, minimax_message: body.base_resp.status_msg ?? null }
    : {}
  const details = { ...body, code, http_status: res.status, ...minimax }
  const message = body.message ?? `${method} ${path} answered HTTP ${res.status}`
  if (res.status === 401 || res.status === 403) {
    return new CliError(EXIT.auth, `${code}: ${message} (give a token with --token, S2V_TOKEN or s2v config set token)`, details)
  }
  return new CliError(EXIT.apiError, `${code}: ${message}`, details)
}
