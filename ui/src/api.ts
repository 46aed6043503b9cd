// The dashboard's only way to the service: its documented JSON API, with the bearer token of this browser session.

const TOKEN_KEY = 's2v.token'

/** The token lives in sessionStorage: gone when the tab closes, never in a URL or a cookie. */
export const session = {
  get token (): string | null { return sessionStorage.getItem(TOKEN_KEY) },
  set (token: string): void { sessionStorage.setItem(TOKEN_KEY, token) },
  clear (): void { sessionStorage.removeItem(TOKEN_KEY) }
}

/** An error answer of the API, in its one shape. */
export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string, readonly body: Record<string, unknown> = {}) {
    super(message)
  }
}

// The API lives next to /ui/, wherever a proxy mounts the service.
export const apiBase = new URL('..', document.baseURI).href.replace(/\/$/, '')

function headers (extra: Record<string, string> = {}, token = session.token): Record<string, string> {
  return { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra }
}

export type RequestOptions = { method?: string, body?: unknown, headers?: Record<string, string>, signal?: AbortSignal, token?: string | null }

export async function api<T> (path: string, options: RequestOptions = {}): Promise<T> {
  const init: RequestInit = {
    method: options.method ?? 'GET',
    headers: headers({ ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers }, options.token === undefined ? session.token : options.token),
    cache: 'no-store'
  }
  if (options.body !== undefined) init.body = JSON.stringify(options.body)
  if (options.signal) init.signal = options.signal
  const response = await fetch(`${apiBase}${path}`, init)
  const text = await response.text()
  let body: unknown = null
  try { body = text ? JSON.parse(text) : null } catch { body = null }
  if (!response.ok) {
    const error = (body ?? {}) as { code?: string, message?: string }
    if (response.status === 401) window.dispatchEvent(new CustomEvent('s2v:unauthorized'))
    throw new ApiError(response.status, error.code ?? `http_${response.status}`, error.message ?? `HTTP ${response.status}`, (body ?? {}) as Record<string, unknown>)
  }
  return body as T
}

export type StreamHandlers = { onEvent: (event: string, data: string) => void, onOpen?: () => void }

/**
 * Reads a server-sent event stream with fetch (EventSource cannot send a bearer header), reconnecting after a drop
 * until `signal` aborts. A 204 (a finished task's stream) or a 4xx ends it for good.
 */
export async function readEventStream (path: string, handlers: StreamHandlers, signal: AbortSignal): Promise<void> {
  let retryMs = 3000
  let lastEventId: string | undefined
  while (!signal.aborted) {
    try {
      const response = await fetch(`${apiBase}${path}`, {
        headers: headers({ accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) }),
        cache: 'no-store',
        signal
      })
      if (response.status === 204 || (response.status >= 400 && response.status < 500)) return
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`)
      handlers.onOpen?.()
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          let event = 'message'
          const data: string[] = []
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue
            const colon = line.indexOf(':')
            const field = colon < 0 ? line : line.slice(0, colon)
            const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
            if (field === 'event') event = text
            else if (field === 'data') data.push(text)
            else if (field === 'id') lastEventId = text
            else if (field === 'retry' && /^\d+$/.test(text)) retryMs = Number(text)
          }
          if (data.length > 0) handlers.onEvent(event, data.join('\n'))
        }
      }
    } catch {
      if (signal.aborted) return
    }
    await new Promise((resolve) => setTimeout(resolve, retryMs))
  }
}

// ---------------------------------------------------------------- the shapes the pages read

export type TaskError = { code: string, message: string }
export type Video = {
  url: string
  download_url?: string
  expires_at: string
  width: number | null
  height: number | null
  archive: { state: string, bytes: number | null, sha256: string | null } | null
}
export type Task = {
  id: string
  task_id: string | null
  provider: string
  model: string
  caller?: string
  status: string
  provider_status: string | null
  file_id: string | null
  error: TaskError | null
  prompt: string | null
  image_url?: string | null
  metadata: Record<string, unknown> | null
  created_at: string
  updated_at: string
  video: Video | null
  queue?: { position: number, eta_s: number | null } | null
}
export type TaskEvent = { at: string, source: string, status: string | null, provider_status: string | null, outcome: string }
export type TaskDetail = Task & { events: TaskEvent[], events_total?: number }
export type Page<T> = { items: T[], next_cursor: string | null }
export type Attempt = { at: string, status_code: number | null, latency_ms: number, error: string | null }
export type Delivery = {
  id: string
  task: string
  url: string
  status: string
  state: string
  next_attempt_at: string | null
  dead_reason: string | null
  created_at: string
  updated_at: string
  delivered_at: string | null
  attempts: Attempt[]
}
export type Me = { caller: string, admin: boolean, open: boolean }
export type Stats = {
  generated_at: string
  scope: 'all' | 'caller'
  tasks: { by_status: Record<string, number>, total: number }
  last_24h: {
    hours: Array<{ hour: string, success: number, failed: number, running: number }>
    created: number
    succeeded: number
    failed: number
    success_rate: number | null
    submit_to_success: { count: number, median_ms: number | null, p95_ms: number | null }
  }
  queue: { depth: number } | null
  providers: Array<{ provider: string, per_minute: number, used: number }>
  deliveries: { dead: number, retrying: number, pending: number }
  challenge: { count: number, mean_ms: number | null, p50_ms: number | null, p95_ms: number | null, over_1s: number }
}
