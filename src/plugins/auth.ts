// Bearer-token authentication for the internal routes: who the caller is (its name) and whether it is an operator.
import { timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { onRequestHookHandler } from 'fastify'
import type { CallerToken } from '../config.js'
import { errors } from '../errors.js'
import { sha256 } from '../lib/callback-token.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: refuses a request without a valid bearer token (when tokens are configured). */
    authenticate: onRequestHookHandler
    /** onRequest hook, after authenticate: refuses a caller that is not an admin (403 admin_required). */
    requireAdmin: onRequestHookHandler
  }
  interface FastifyRequest {
    /**
     * The caller's name: the name of its API_TOKENS/ADMIN_TOKENS entry ('token:<fingerprint>' for a bare token), or
     * 'anonymous' when the routes are open. Tasks, rate limits and idempotency keys belong to it.
     */
    caller: string
    /** True for an ADMIN_TOKENS caller: it sees every caller's tasks and the operator's secrets. */
    isAdmin: boolean
  }
}

export type AuthOptions = { tokens: CallerToken[], adminTokens: CallerToken[] }

/** The name an open deployment gives every request (and so every task). */
export const ANONYMOUS = 'anonymous'

const BEARER = /^Bearer\s+(\S+)\s*$/i

type Known = { digest: Buffer, name: string, admin: boolean }

export default fp<AuthOptions>(async (app, { tokens, adminTokens }) => {
  const known: Known[] = [
    ...tokens.map(({ name, token }) => ({ digest: sha256(token), name, admin: false })),
    ...adminTokens.map(({ name, token }) => ({ digest: sha256(token), name, admin: true }))
  ]
  if (known.length === 0) app.log.warn('API_TOKENS and ADMIN_TOKENS are empty: the internal routes are open to anyone who can reach this service')
  else if (adminTokens.length === 0) app.log.info('ADMIN_TOKENS is empty: no caller sees another caller\'s tasks, and the operator\'s signing secret is not served')

  app.decorateRequest('caller', ANONYMOUS)
  app.decorateRequest('isAdmin', false)
  app.decorate('authenticate', async function authenticate (request, reply) {
    if (known.length === 0) return
    const presented = BEARER.exec(request.headers.authorization ?? '')?.[1]
    const digest = presented ? sha256(presented) : null
    // Compare against every token, without stopping early, so timing says nothing about which one matched.
    let match: Known | undefined
    if (digest !== null) for (const entry of known) if (timingSafeEqual(entry.digest, digest) && match === undefined) match = entry
    if (match === undefined) {
      reply.header('www-authenticate', 'Bearer')
      throw errors.unauthorized()
    }
    request.caller = match.name
    request.isAdmin = match.admin
  } satisfies onRequestHookHandler)

  app.decorate('requireAdmin', async function requireAdmin (request) {
    if (!request.isAdmin) throw errors.adminRequired()
  } satisfies onRequestHookHandler)
}, { name: 'auth' })
