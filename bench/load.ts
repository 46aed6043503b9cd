// Load generation: autocannon, in this process, with our own sub-millisecond latency histogram.
import { createHistogram } from 'node:perf_hooks'
import autocannon from 'autocannon'

// autocannon's own histogram counts whole milliseconds; ours records microseconds, so sub-ms p50s are visible.
const US_PER_MS = 1000
// A response slower than this is a failure, not a latency sample.
const REQUEST_TIMEOUT_S = 10

export type Request = {
  method: 'GET' | 'POST'
  path: string
  body?: string
}

export type LoadSpec = {
  url: string
  connections: number
  /** Requests per second over all connections; unset = as fast as the server answers. */
  rate?: number
  headers?: Record<string, string>
  /** Called before every request; a fixed request when it always returns the same. */
  next: () => Request
}

export type LoadResult = {
  seconds: number
  requests: number
  /** 2xx answers. */
  ok: number
  /** 2xx answers per second. */
  rps: number
  non2xx: number
  /** Count per status code that was not 2xx. */
  refusals: Record<string, number>
  errors: number
  timeouts: number
  /** The first socket error, to say what went wrong. */
  firstError: string | null
  latencyMs: { mean: number, p50: number, p99: number, p999: number, max: number }
}

export async function runLoad (spec: LoadSpec, seconds: number): Promise<LoadResult> {
  const histogram = createHistogram()
  let ok = 0
  let firstError: string | null = null
  const first = spec.next()
  const options: autocannon.Options = {
    url: spec.url,
    connections: spec.connections,
    duration: seconds,
    timeout: REQUEST_TIMEOUT_S,
    ...(spec.rate ? { overallRate: spec.rate } : {}),
    headers: { ...(first.body !== undefined ? { 'content-type': 'application/json' } : {}), ...spec.headers },
    requests: [{
      method: first.method,
      path: first.path,
      ...(first.body !== undefined ? { body: first.body } : {}),
      setupRequest: (request) => {
        const { method, path, body } = spec.next()
        return { ...request, method, path, ...(body !== undefined ? { body } : {}) }
      }
    }]
  }
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (err, done) => { if (err) reject(err); else resolve(done) })
    instance.on('reqError', (err) => { firstError ??= String(err?.message ?? err) })
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      if (statusCode < 200 || statusCode > 299) return
      ok += 1
      histogram.record(Math.max(1, Math.round(responseTimeMs * US_PER_MS)))
    })
  })
  const ms = (us: number) => us / US_PER_MS
  return {
    seconds: result.duration,
    requests: result.requests.total,
    ok,
    rps: ok / result.duration,
    non2xx: result.non2xx,
    refusals: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).filter(([code]) => !code.startsWith('2')).map(([code, { count }]) => [code, count ?? 0])),
    errors: result.errors,
    timeouts: result.timeouts,
    firstError,
    latencyMs: ok === 0
      ? { mean: 0, p50: 0, p99: 0, p999: 0, max: 0 }
      : { mean: ms(histogram.mean), p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), p999: ms(histogram.percentile(99.9)), max: ms(histogram.max) }
  }
}
