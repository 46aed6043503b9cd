// One access-log line per request: Fastify's "incoming request" + "request completed" pair, folded into the second.
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * What this request's access-log line says besides method, URL, status and time (e.g. a push's outcome, a
     * refusal's code): set by a handler instead of a log line of its own. Null until something is added.
     */
    accessLog: Record<string, unknown> | null
  }
}

/** Adds fields to the request's access-log line (merged with what is already there). */
export function addToAccessLog (request: FastifyRequest, fields: Record<string, unknown>): void {
  request.accessLog = request.accessLog ? { ...request.accessLog, ...fields } : fields
}

/**
 * Fastify logs two lines per request at info, the first before anything is known but the URL. Each costs a pino write
 * with redaction, which is most of a challenge's or a push's own cost; the completed line alone carries the request
 * (method, redacted URL, host, address), the status, the time and what the handler added (addToAccessLog), so an
 * operator still follows every request, by its reqId, in one line. The request line moves to debug, where it helps
 * to see a request that never completes.
 */
export class AccessLog extends LogController {
  override incomingRequest (request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const fields = { req: request, res: reply, responseTime: reply.elapsedTime, ...request.accessLog }
    if (error) reply.log.error({ ...fields, err: error }, 'request errored')
    else reply.log.info(fields, 'request completed')
  }
}
