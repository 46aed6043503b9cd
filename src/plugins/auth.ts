// Bearer-token authentication for the internal routes, and the caller identity used by rate limits and idempotency keys.
import { timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { onRequestHookHandler } from 'fastify'
import { errors } from '../errors.js'
import { sha256 } from '../lib/callback-token.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: refuses a request without a valid bearer token (when tokens are configured). */
    authenticate: onRequestHookHandler
  }
  interface FastifyRequest {
    /** 'token:<digest prefix>' for an authenticated caller, 'anonymous' when the routes are open. */
    caller: string
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i

export default fp<{ tokens: string[] }>(async (app, { tokens }) => {
  const digests = tokens.map((token) => sha256(token))
  if (digests.length === 0) app.log.warn('API_TOKENS is empty: the internal routes are open to anyone who can reach this service')

  app.decorateRequest('caller', 'anonymous')
  app.decorate('authenticate', async function authenticate (request, reply) {
    if (digests.length === 0) return
    const presented = BEARER.exec(request.headers.authorization ?? '')?.[1]
    const digest = presented ? sha256(presented) : null
    // Compare against every token, without stopping early, so timing says nothing about which one matched.
    const matched = digest !== null && digests.reduce((found, known) => timingSafeEqual(known, digest) || found, false)
    if (!matched) {
      reply.header('www-authenticate', 'Bearer')
      throw errors.unauthorized()
    }
    request.caller = `token:${digest.subarray(0, 8).toString('hex')}`
  } satisfies onRequestHookHandler)
}, { name: 'auth' })
