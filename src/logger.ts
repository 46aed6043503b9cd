// pino options for the service: JSON lines, secrets redacted, callback tokens cut out of logged URLs.
import type { LoggerOptions } from 'pino'
import type { FastifyRequest } from 'fastify'

// Anything that can carry a key, a token or image data, wherever it is logged from.
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  '*.authorization',
  'apiKey', '*.apiKey', 'api_key', '*.api_key',
  'token', '*.token', 'callback_url', '*.callback_url', 'callbackUrl', '*.callbackUrl',
  'image', '*.image', '*.subject_reference', 'subject_reference'
]

// Whatever follows the callback path, however it is spelt (any case, extra slashes): the router may not match such a
// spelling, but the request line is logged all the same.
const CALLBACK_TOKEN_IN_PATH = /(\/get_callback)\/[^?#]*/i
// A token's shape anywhere else in a URL (a query string, another route): our id, a dot, 43 base64url characters.
const TOKEN_ANYWHERE = /[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}/gi
// A signed download link opens its video to whoever holds it until it expires: its signature is a credential.
const LINK_SIGNATURE_IN_QUERY = /([?&]signature=)[^&#]*/g

/** A request URL as it may be logged: callback tokens and link signatures, secrets both, never leave the process. */
export function redactUrl (url: string): string {
  // Percent-decoded first, so /get%5Fcallback/… or an encoded token is seen for what it is.
  return decoded(url).replace(CALLBACK_TOKEN_IN_PATH, '$1/[redacted]').replace(TOKEN_ANYWHERE, '[redacted]').replace(LINK_SIGNATURE_IN_QUERY, '$1[redacted]')
}

function decoded (url: string): string {
  if (!url.includes('%')) return url // nothing to decode: most URLs, every request's line
  try {
    return decodeURIComponent(url)
  } catch {
    // A malformed escape: decode what can be decoded, byte sequence by byte sequence.
    return url.replace(/(%[0-9a-f]{2})+/gi, (run) => { try { return decodeURIComponent(run) } catch { return run } })
  }
}

export function loggerOptions (level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      req (request: FastifyRequest) {
        return { method: request.method, url: redactUrl(request.url), host: request.host, remoteAddress: request.ip }
      }
    }
  }
}
