// One access-log line per request: Fastify's "incoming request" + "request completed" pair, folded into the second.
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'

/**
 * What a request's access-log line says besides method, URL, status and time. A closed set of fields that carry no
 * secret by construction (ids, statuses, our own error codes and messages), which is what lets the line skip
 * pino's redaction (below).
 */
export type AccessLogFields = {
  /** A status push on a task's own callback URL: what the state machine made of it. */
  push?: { id: string, task_id: string, provider_status: string, outcome: string, status: string }
  /** A refused request (4xx): our error code and message. */
  refused?: { code: string, message: string }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by a handler (addToAccessLog) instead of a log line of its own. Null until something is added. */
    accessLog: AccessLogFields | null
  }
}

/** Adds fields to the request's access-log line. */
export function addToAccessLog (request: FastifyRequest, fields: AccessLogFields): void {
  request.accessLog = request.accessLog ? { ...request.accessLog, ...fields } : fields
}

/**
 * Fastify logs two lines per request at info, the first before anything is known but the URL. The completed line
 * alone carries the request (method, redacted URL, host, address: our req serializer), the status, the time and
 * what the handler added, so an operator still follows every request, by its reqId, in one line; the request line
 * moves to debug, where it helps to see a request that never completes.
 *
 * That line goes through a child logger without redaction: every field of it is known (the serializer's, the status,
 * AccessLogFields), none holds a secret, and pino's wildcard redaction paths cost more than the rest of the line
 * (~11 µs of ~15 µs). Every other line, the failed request's included, is redacted as before.
 */
export class AccessLog extends LogController {
  #plain: FastifyBaseLogger | null = null

  override incomingRequest (request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) {
      reply.log.error({ req: request, res: reply, responseTime: reply.elapsedTime, ...request.accessLog, err: error }, 'request errored')
      return
    }
    // The request's own logger knows its level (a route may log less); the plain one logs at the app's.
    if (!(reply.log as Logger).isLevelEnabled('info')) return
    this.#plain ??= request.server.log.child({}, { redact: { paths: [] } })
    this.#plain.info({ reqId: request.id, req: request, res: reply, responseTime: reply.elapsedTime, ...request.accessLog }, 'request completed')
  }
}
