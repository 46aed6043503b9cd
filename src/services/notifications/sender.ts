// One delivery attempt over HTTP: POST the body with its signed headers, no redirects, a deadline, pinned-safe DNS.
import http from 'node:http'
import https from 'node:https'
import { performance } from 'node:perf_hooks'
import { AddressNotAllowedError, guardedLookup } from './url-guard.js'

// Enough of an error answer to see what the consumer said, without keeping its pages.
const EXCERPT_CHARS = 200
// A consumer's answer is read to the end so the connection can be reused, unless it is this large.
const MAX_RESPONSE_BYTES = 64 * 1024
// Idle keep-alive connections per consumer host: a few parallel deliveries reuse them.
const MAX_FREE_SOCKETS = 8

export type AttemptResult = {
  /** The consumer's HTTP status; null when none came (refused, reset, timeout, refused address). */
  statusCode: number | null
  latencyMs: number
  /** null on a 2xx; otherwise what went wrong, for the attempt log. */
  error: string | null
  retryAfter: string | undefined
  /** The host resolved to an address the SSRF guard refuses. */
  notAllowed: boolean
  /** The attempt was abandoned because the service is shutting down: it did not count. */
  abandoned: boolean
}

export type SenderOptions = { timeoutMs: number, allowPrivate: boolean, userAgent: string }

export class NotificationSender {
  readonly #agents = {
    'http:': new http.Agent({ keepAlive: true, maxFreeSockets: MAX_FREE_SOCKETS }),
    'https:': new https.Agent({ keepAlive: true, maxFreeSockets: MAX_FREE_SOCKETS })
  }

  constructor (private readonly options: SenderOptions) {}

  /** POSTs once; never throws. `shutdown` aborts the attempt when the service stops. */
  async send (url: string, headers: Record<string, string>, body: string, shutdown: AbortSignal): Promise<AttemptResult> {
    const started = performance.now()
    const result = (fields: Partial<AttemptResult>): AttemptResult => ({
      statusCode: null, error: null, retryAfter: undefined, notAllowed: false, abandoned: false, ...fields, latencyMs: Math.round(performance.now() - started)
    })
    const target = new URL(url)
    const transport = target.protocol === 'https:' ? https : http
    const deadline = AbortSignal.timeout(this.options.timeoutMs)
    const signal = AbortSignal.any([deadline, shutdown])

    return await new Promise<AttemptResult>((resolve) => {
      const request = transport.request(target, {
        method: 'POST',
        agent: this.#agents[target.protocol as 'http:' | 'https:'],
        signal,
        // Resolve and check in one step, so the address connected to is the address checked (DNS rebinding).
        ...(this.options.allowPrivate ? {} : { lookup: guardedLookup }),
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': this.options.userAgent,
          ...headers
        }
      }, (response) => {
        const statusCode = response.statusCode ?? 0
        let received = 0
        let excerpt = ''
        response.setEncoding('utf8')
        response.on('data', (chunk: string) => {
          received += chunk.length
          if (excerpt.length < EXCERPT_CHARS) excerpt += chunk.slice(0, EXCERPT_CHARS - excerpt.length)
          if (received > MAX_RESPONSE_BYTES) response.destroy()
        })
        const done = () => resolve(result({ statusCode, error: answerError(statusCode, excerpt, response.headers.location), retryAfter: header(response.headers['retry-after']) }))
        response.on('end', done)
        // A body cut short (too large, or the deadline) does not change what the status said.
        response.on('close', done)
        response.on('error', () => {})
      })
      request.on('error', (err: NodeJS.ErrnoException) => {
        if (shutdown.aborted) return resolve(result({ abandoned: true, error: 'abandoned: the service is shutting down' }))
        if (deadline.aborted) return resolve(result({ error: `timeout: no answer within ${this.options.timeoutMs} ms` }))
        const cause = (err.cause ?? err) as NodeJS.ErrnoException
        if (cause instanceof AddressNotAllowedError) return resolve(result({ notAllowed: true, error: cause.message }))
        resolve(result({ error: `${cause.code ?? 'error'}: ${cause.message}` }))
      })
      request.end(body)
    })
  }

  close (): void {
    this.#agents['http:'].destroy()
    this.#agents['https:'].destroy()
  }
}

function answerError (statusCode: number, excerpt: string, location: string | undefined): string | null {
  if (statusCode >= 200 && statusCode < 300) return null
  if (statusCode >= 300 && statusCode < 400) return `HTTP ${statusCode}: redirects are not followed${location ? ` (to ${location})` : ''}`
  const said = excerpt.trim().replace(/\s+/g, ' ')
  return `HTTP ${statusCode}${said ? `: ${said}` : ''}`
}

const header = (value: string | string[] | undefined): string | undefined => Array.isArray(value) ? value[0] : value
