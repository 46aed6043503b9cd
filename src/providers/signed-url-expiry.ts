// Reads when a signed download URL stops working, from the query parameters the common signing schemes add.

// Below this an "Expires" value cannot be a Unix time (it would be before 2001): it is a duration of unknown origin.
const MIN_UNIX_SECONDS = 1_000_000_000
// AWS/GCS/OSS v4 signing date, ISO 8601 basic format: 20240102T030405Z.
const BASIC_ISO = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/
const DIGITS = /^\d{1,12}$/
// v4-style schemes: <prefix>-Expires is seconds after <prefix>-Date (or after signing, which we take as now).
const RELATIVE_PREFIXES = ['x-amz', 'x-goog', 'x-oss'] as const

/**
 * When the URL expires, in epoch milliseconds, or null when it does not say.
 * Understands `Expires=<unix s>` (AWS v2, Aliyun OSS, CloudFront, MiniMax), `X-Amz-Expires`/`X-Goog-Expires`/
 * `x-oss-expires` (seconds after the matching `-Date`) and Azure's `se=<ISO time>`; names are case-insensitive.
 */
export function signedUrlExpiry (url: string, now = Date.now()): number | null {
  let params: URLSearchParams
  try {
    params = new URL(url).searchParams
  } catch {
    return null
  }
  const lower = new Map<string, string>()
  for (const [key, value] of params) if (!lower.has(key.toLowerCase())) lower.set(key.toLowerCase(), value)

  const absolute = seconds(lower.get('expires'))
  if (absolute !== null && absolute >= MIN_UNIX_SECONDS) return absolute * 1000
  for (const prefix of RELATIVE_PREFIXES) {
    const relative = seconds(lower.get(`${prefix}-expires`))
    if (relative === null) continue
    return (basicIso(lower.get(`${prefix}-date`)) ?? now) + relative * 1000
  }
  const azure = lower.get('se')
  if (azure !== undefined) {
    const at = Date.parse(azure)
    if (Number.isFinite(at)) return at
  }
  return null
}

function seconds (value: string | undefined): number | null {
  return value !== undefined && DIGITS.test(value) ? Number(value) : null
}

function basicIso (value: string | undefined): number | null {
  const m = value === undefined ? null : BASIC_ISO.exec(value)
  if (m === null) return null
  const at = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))
  return Number.isFinite(at) ? at : null
}
