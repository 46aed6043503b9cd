// Reads an HTTP Retry-After header (delta-seconds or an HTTP date), for anyone we call who asks us to wait.

// A peer may ask for a pause, not for us to wait longer than a day.
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000

/** A Retry-After header (delta-seconds or an HTTP date) as milliseconds from now, capped; null when absent or unreadable. */
export function parseRetryAfter (header: string | null | undefined, now: number = Date.now(), maxMs: number = MAX_RETRY_AFTER_MS): number | null {
  if (!header) return null
  const value = header.trim()
  let ms: number
  if (/^\d+$/.test(value)) ms = Number(value) * 1000
  else {
    const date = Date.parse(value)
    if (Number.isNaN(date)) return null
    ms = date - now
  }
  return Math.min(Math.max(ms, 0), maxMs)
}
