// POST /v1/video_generation: MiniMax's own create call, answered by us after MiniMax answers.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { errorResponses } from '../schemas/common.js'
import { SubmitAnswer, SubmitBody, SubmitHeaders } from '../schemas/submit.js'
import { callerKey } from './rate-limit-keys.js'

export type SubmitRouteOptions = { rateLimit: number, bodyLimit: number }

const submitRoute: FastifyPluginAsyncTypebox<SubmitRouteOptions> = async (app, options) => {
  app.post('/v1/video_generation', {
    bodyLimit: options.bodyLimit,
    onRequest: app.authenticate,
    config: {
      minimaxErrors: true,
      rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey }
    },
    schema: {
      summary: 'Submit an S2V-01 generation (MiniMax\'s request body)',
      description: 'Forwards MiniMax\'s create body with a callback URL of ours and answers once MiniMax has. Errors carry MiniMax\'s ' +
        'base_resp. The same Idempotency-Key with the same body replays the first answer without a second paid generation.',
      headers: SubmitHeaders,
      body: SubmitBody,
      response: { 200: SubmitAnswer, ...errorResponses(400, 401, 402, 409, 413, 415, 422, 429, 500, 502, 503, 504) }
    }
  }, async (request, reply) => {
    const result = await app.submitService.submit(request.body, request.caller, request.headers['idempotency-key'])
    if (result.replayed) reply.header('idempotent-replayed', 'true')
    // The status is chosen at run time (MiniMax's answer decides it); the response schemas above still serialise it.
    // A provider's refusal is built by the service (and may be a replay); like every error it names this request.
    const body = result.statusCode >= 400 ? { ...result.body, request_id: request.id } : result.body
    return (reply as FastifyReply).code(result.statusCode).send(body)
  })
}

export default submitRoute
