// Who a rate limit (or a waiter cap) counts against.
import type { FastifyRequest } from 'fastify'
import { ANONYMOUS } from '../plugins/auth.js'

/** An authenticated caller by its token; an open deployment's callers by their address. */
export function callerKey (request: FastifyRequest): string {
  return request.caller === ANONYMOUS ? `ip:${request.ip}` : request.caller
}
