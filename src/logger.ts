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

const CALLBACK_TOKEN_IN_PATH = /(\/get_callback\/)[^/?#]+/
// A signed download link opens its video to whoever holds it until it expires: its signature is a credential.
const LINK_SIGNATURE_IN_QUERY = /([?&]signature=)[^&#]*/g

/** A request URL as it may be logged: callback tokens and link signatures, secrets both, never leave the process. */
export function redactUrl (url: string): string {
  return url.replace(CALLBACK_TOKEN_IN_PATH, '$1[redacted]').replace(LINK_SIGNATURE_IN_QUERY, '$1[redacted]')
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
