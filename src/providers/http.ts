// What every provider client does the same way over HTTP: read JSON keeping ids exact, classify transport failures,
// time calls for metrics.
import { parseProviderJson } from '../lib/json-ids.js'
import { ProviderError } from './provider-error.js'
import type { ProviderCall, ProviderName } from './provider.js'

// Failures raised before a single byte reached the provider: a task certainly was not created.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])

/** The answer as a JSON object (bare-number ids kept exact), or null when it is not one. */
export function parseJsonObject (text: string): Record<string, unknown> | null {
  try {
    const value = parseProviderJson(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : null
  } catch {
    return null
  }
}

/** A fetch that threw: timed out, never sent (nothing created), or broken on the way (outcome unknown). */
export function transportError (label: string, err: unknown, timeoutMs: number, traceId: string | null = null): ProviderError {
  const error = err as Error & { cause?: { code?: string } }
  if (error.name === 'TimeoutError' || error.name === 'AbortError') {
    return new ProviderError('timeout', `${label} did not answer within ${timeoutMs} ms`, { traceId, cause: err })
  }
  const code = error.cause?.code ?? (error as { code?: string }).code
  if (code && NOT_SENT_CODES.has(code)) {
    return new ProviderError('unreachable', `${label} could not be reached (${code})`, { traceId, cause: err })
  }
  return new ProviderError('broken', `the connection to ${label} failed (${code ?? error.message})`, { traceId, cause: err })
}

/** Runs one provider call and reports it to `onCall`, whatever its outcome. */
export async function reportCall<T extends { traceId: string | null }> (
  provider: ProviderName, operation: ProviderCall['operation'], onCall: (call: ProviderCall) => void, call: () => Promise<T>
): Promise<T> {
  const started = performance.now()
  try {
    const result = await call()
    onCall({ provider, operation, ms: performance.now() - started, ok: true, traceId: result.traceId })
    return result
  } catch (err) {
    onCall({ provider, operation, ms: performance.now() - started, ok: false, traceId: err instanceof ProviderError ? err.traceId : null })
    throw err
  }
}
