// Who a rate limit counts against.
import type { FastifyRequest } from 'fastify'

/** An authenticated caller by its token; an open deployment's callers by their address. */
export function callerKey (request: FastifyRequest): string {
  return request.caller === 'anonymous' ? `ip:${request.ip}` : request.caller
}
