// GET /v1/me: who the bearer token is, so a client (the dashboard's sign-in) can check a token and show the right pages.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../schemas/common.js'
import { callerKey } from './rate-limit-keys.js'

export type SessionRouteOptions = { rateLimit: number }

const Me = Type.Object({
  caller: Type.String({ description: 'Your caller name: the tasks you submit belong to it' }),
  admin: Type.Boolean({ description: 'Whether you are an operator (ADMIN_TOKENS): you see every caller\'s tasks and deliveries' }),
  open: Type.Boolean({ description: 'True when this service has no tokens at all (API_TOKENS and ADMIN_TOKENS empty): anyone who reaches it is let in' })
}, { description: 'The caller behind the bearer token', examples: [{ caller: 'team-a', admin: false, open: false }] })

const sessionRoute: FastifyPluginAsyncTypebox<SessionRouteOptions> = async (app, options) => {
  app.get('/v1/me', {
    onRequest: app.authenticate,
    config: { rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'Who am I',
      description: 'The caller name of the bearer token and whether it is an operator; 401 for a token this service does not know.',
      tags: ['dashboard'],
      response: { 200: Me, ...errorResponses(401, 429, 500) }
    }
  }, async (request) => ({ caller: request.caller, admin: request.isAdmin, open: app.config.API_TOKENS.length === 0 && app.config.ADMIN_TOKENS.length === 0 }))
}

export default sessionRoute
