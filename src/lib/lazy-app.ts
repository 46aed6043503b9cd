// A part of the service built on its first request, in a Fastify app of its own: the rare paths (the API reference,
// the dashboard's files) load their packages then, not at start-up, and are answered through inject().
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

// Hop-by-hop and length headers of the inner answer: our own reply sets its own.
const NOT_FORWARDED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date'])

/** build() once, on first call; the app stays (only in a process that was asked for it). A failed build is tried again. */
export function lazyApp (build: () => Promise<FastifyInstance>): () => Promise<FastifyInstance> {
  let app: Promise<FastifyInstance> | undefined
  return () => {
    app ??= build().catch((err: unknown) => {
      app = undefined
      throw err
    })
    return app
  }
}

/** A handler answering with what the inner app answers (status, headers, bytes); its 404 becomes ours, in our error shape. */
export function forwardTo (inner: () => Promise<FastifyInstance>) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const answer = await (await inner()).inject({ method: request.method as 'GET' | 'HEAD', url: request.url, headers: request.headers })
    if (answer.statusCode === 404) return reply.callNotFound()
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !NOT_FORWARDED.has(name)) reply.header(name, value)
    }
    return reply.code(answer.statusCode).send(answer.rawPayload)
  }
}
