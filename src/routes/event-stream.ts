// Opening a server-sent events response: the headers and reconnect hint every stream of this service sends.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerResponse } from 'node:http'

// How long a browser's EventSource waits before reconnecting after a dropped connection.
const RECONNECT_MS = 3000

/** Takes the response over from Fastify (it neither serialises nor ends it) and starts the event stream. */
export function openEventStream (request: FastifyRequest, reply: FastifyReply): ServerResponse {
  reply.hijack()
  const res = reply.raw
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no', // proxies (nginx) would otherwise hold events back
    'x-request-id': request.id
  })
  res.write(`retry: ${RECONNECT_MS}\n\n`)
  return res
}
