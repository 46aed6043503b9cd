// POST /get_callback[/:token]: MiniMax's challenge handshake and status pushes.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { errors } from '../errors.js'
import { quoteBareIds } from '../lib/json-ids.js'
import { CallbackAnswer, CallbackBody, CallbackParams } from '../schemas/callback.js'
import { errorResponses } from '../schemas/common.js'

export type CallbackRouteOptions = { rateLimit: number, bodyLimit: number }

const TOKEN_PATH_DOCS = {
  summary: 'MiniMax callback for one task',
  description: 'The callback_url this service gives MiniMax for one task. A {challenge} is echoed at once (never rate limited); a status ' +
    'push is written through the state machine before the 200. Pushes with a token that is not this task\'s are refused with 401. ' +
    'A push that meets a database locked by another process is answered 503 database_busy with Retry-After, never 200: nothing was written, retry it.'
}
const BARE_PATH_DOCS = {
  summary: 'Bare callback path: challenges only',
  description: 'Answers MiniMax\'s {challenge}; status pushes here are refused with 401 callback_token_required (only the task\'s own URL is trusted).'
}

const isChallenge = (request: FastifyRequest): boolean => (request.body as CallbackBody | undefined)?.challenge !== undefined

const callbackRoutes: FastifyPluginAsyncTypebox<CallbackRouteOptions> = async (app, options) => {
  // MiniMax's ids exceed 2^53: quote bare-number ids before JSON.parse can round them. Any content type is read as
  // JSON here, since MiniMax does not document the one it sends.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: options.bodyLimit }, (request, body, done) => {
    parseJson(request, quoteBareIds(body as string), done)
  })

  const routeOptions = {
    bodyLimit: options.bodyLimit,
    config: {
      // Challenges are never limited (MiniMax fails the create if one goes unanswered); pushes get their own budget.
      rateLimit: { max: options.rateLimit, timeWindow: 60_000, hook: 'preHandler' as const, allowList: isChallenge }
    },
    schema: {
      body: CallbackBody,
      response: { 200: CallbackAnswer, ...errorResponses(400, 401, 413, 429, 500, 503) }
    }
  }

  const handle = async (request: FastifyRequest, token: string | null, body: CallbackBody) => {
    // The handshake comes first and touches nothing: it must answer within MiniMax's 3 s however busy we are.
    if (body.challenge !== undefined) return { challenge: body.challenge }
    if (body.task_id === undefined || body.status === undefined) throw errors.pushMissingFields()
    const { outcome, task } = await app.callbackService.push(token, { ...body, task_id: body.task_id, status: body.status })
    request.log.info({ id: task.id, task_id: body.task_id, provider_status: body.status, outcome, status: task.status }, 'status push recorded')
    return { status: 'success' as const }
  }

  app.post('/get_callback/:token', { ...routeOptions, schema: { ...routeOptions.schema, params: CallbackParams, ...TOKEN_PATH_DOCS } },
    async (request) => handle(request, request.params.token, request.body))
  app.post('/get_callback', { ...routeOptions, schema: { ...routeOptions.schema, ...BARE_PATH_DOCS } },
    async (request) => handle(request, null, request.body))
}

export default callbackRoutes
