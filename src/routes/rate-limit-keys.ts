// Who a rate limit (or a waiter cap) counts against.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../errors.js'

/** An authenticated caller by its token; an open deployment's callers by their address. */
export function callerKey (request: FastifyRequest): string {
  return request.caller === 'anonymous' ? `ip:${request.ip}` : request.caller
}

// A refused wait is worth retrying soon: a slot frees as soon as another wait ends.
const WAITER_RETRY_AFTER_SECONDS = '1'

/** A catch handler that adds Retry-After to a 429 too_many_waiters before passing the error on. */
export function withRetryAfter (reply: FastifyReply) {
  return (err: unknown): never => {
    if (err instanceof AppError && err.code === 'too_many_waiters') reply.header('retry-after', WAITER_RETRY_AFTER_SECONDS)
    throw err
  }
}
