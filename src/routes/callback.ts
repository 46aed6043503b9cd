// POST /get_callback[/:token]: MiniMax's challenge handshake and status pushes.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CallbackTarget } from '../db/tasks-repository.js'
import { errors } from '../errors.js'
import { addToAccessLog } from '../lib/access-log.js'
import { quoteBareChallenge, quoteBareIds } from '../lib/json-ids.js'
import { CallbackAnswer, CallbackBody, CallbackParams } from '../schemas/callback.js'
import { errorResponses } from '../schemas/common.js'
import type { StatusPush } from '../services/callback.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The task whose own callback URL this is (token checked), or null: set before the push rate limit runs. */
    callbackTask: CallbackTarget | null
    /** A challenge sent as a bare JSON number, as its literal text: echoed digit for digit. */
    challengeLiteral: string | null
  }
}

export type CallbackRouteOptions = { rateLimit: number, bodyLimit: number }

const TOKEN_PATH_DOCS = {
  summary: 'MiniMax callback for one task',
  description: 'The callback_url this service gives MiniMax for one task. A {challenge} is echoed at once (never rate limited); a status ' +
    'push is written through the state machine before the 200, limited to CALLBACK_RATE_LIMIT per minute for each task. Pushes with a ' +
    'token that is not this task\'s are refused with 401 and write nothing. A body with both a challenge and a push is echoed, and its ' +
    'push applied too when the token is the task\'s (the answer then also carries status). ' +
    'A push that meets a database locked by another process is answered 503 database_busy with Retry-After, never 200: nothing was written, retry it.'
}
const BARE_PATH_DOCS = {
  summary: 'Bare callback path: challenges only',
  description: 'Answers MiniMax\'s {challenge}; status pushes here are refused with 401 callback_token_required (only the task\'s own URL is trusted).'
}

const pushOf = (body: CallbackBody): StatusPush | null =>
  body.task_id !== undefined && body.status !== undefined ? { ...body, task_id: body.task_id, status: body.status } : null
/** Whether the route's compiled validator for this part accepts it (a part without a schema always does). */
const passes = (request: FastifyRequest, part: 'body' | 'params', value: unknown): boolean => {
  const validate = request.getValidationFunction(part)
  return validate === undefined || validate(value) === true
}
const isChallenge = (request: FastifyRequest): boolean => (request.body as CallbackBody | undefined)?.challenge !== undefined

const callbackRoutes: FastifyPluginAsyncTypebox<CallbackRouteOptions> = async (app, options) => {
  app.decorateRequest('callbackTask', null)
  app.decorateRequest('challengeLiteral', null)

  // MiniMax's ids exceed 2^53: quote bare-number ids (and a bare-number challenge) before JSON.parse can round them.
  // Any content type is read as JSON here, since MiniMax does not document the one it sends.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: options.bodyLimit }, (request, body, done) => {
    const { json, literal } = quoteBareChallenge(quoteBareIds(body as string))
    request.challengeLiteral = literal
    parseJson(request, json, done)
  })

  const routeOptions = {
    bodyLimit: options.bodyLimit,
    config: {
      // Challenges are never limited (MiniMax fails the create if one goes unanswered). A push whose token is no task's
      // is let through uncounted (it is refused in the handler, writing nothing), so forgeries can never use up the
      // budget of a genuine push; genuine pushes are counted per task, not per address (MiniMax may push through one proxy).
      rateLimit: {
        max: options.rateLimit,
        timeWindow: 60_000,
        hook: 'preHandler' as const,
        keyGenerator: (request: FastifyRequest) => request.callbackTask ? `task:${request.callbackTask.seq}` : 'unauthenticated',
        allowList: (request: FastifyRequest) => isChallenge(request) || request.callbackTask === null
      }
    },
    schema: {
      body: CallbackBody,
      response: { 200: CallbackAnswer, ...errorResponses(400, 401, 413, 429, 500, 503) }
    }
  }

  const echo = (request: FastifyRequest, reply: FastifyReply, challenge: string, applied: boolean): FastifyReply => {
    if (request.challengeLiteral !== null && challenge === request.challengeLiteral) {
      // Echoed as the same JSON number, every digit as sent (a JS number would round it).
      return reply.type('application/json; charset=utf-8').send(`{"challenge":${request.challengeLiteral}${applied ? ',"status":"success"' : ''}}`)
    }
    return reply.send(applied ? { challenge, status: 'success' as const } : { challenge })
  }

  // The handshake waits for nothing: it must answer within MiniMax's 3 s however busy we are. A bare one (no push
  // riding along) is answered here, before the hooks only a push needs (its token check, its rate limit) and the
  // handler. The route's own validators run first, once: a body or token they refuse falls through to Fastify's
  // validation and its 400, exactly as without this hook.
  const answerBareChallenge = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const body = request.body as CallbackBody | undefined
    if (body?.challenge === undefined || pushOf(body) || !passes(request, 'body', body) || !passes(request, 'params', request.params)) return done()
    echo(request, reply, body.challenge, false)
  }

  const handle = async (request: FastifyRequest, reply: FastifyReply, token: string | null, body: CallbackBody) => {
    const push = pushOf(body)
    // A bare challenge never gets here: answerBareChallenge answered it, or the validation refused it.
    if (!push) throw errors.pushMissingFields()
    if (body.challenge !== undefined) {
      // Not dropped silently: a push riding along with a challenge is applied when authentic, else counted and logged.
      let applied = false
      if (request.callbackTask) applied = (await app.callbackService.push(request.callbackTask, push, token), true)
      else app.callbackService.refuse(token === null ? 'bare_path' : 'unknown_token', push)
      return echo(request, reply, body.challenge, applied)
    }
    if (!request.callbackTask) throw app.callbackService.refuse(token === null ? 'bare_path' : 'unknown_token', push)
    const { outcome, task } = await app.callbackService.push(request.callbackTask, push, token)
    addToAccessLog(request, { push: { id: task.id, task_id: push.task_id, provider_status: push.status, outcome, status: task.status } })
    return { status: 'success' as const }
  }

  // Before the rate limit's own preHandler (route hooks run first): the token decides what the push counts against.
  // Every body that gets here carries a push (or is refused for lacking one): a bare challenge was answered before.
  const authenticate = async (request: FastifyRequest) => {
    request.callbackTask = await app.callbackService.authenticate((request.params as { token: string }).token)
  }

  app.post('/get_callback/:token', { ...routeOptions, preValidation: answerBareChallenge, preHandler: authenticate, schema: { ...routeOptions.schema, params: CallbackParams, ...TOKEN_PATH_DOCS } },
    async (request, reply) => handle(request, reply, request.params.token, request.body))
  app.post('/get_callback', { ...routeOptions, preValidation: answerBareChallenge, schema: { ...routeOptions.schema, ...BARE_PATH_DOCS } },
    async (request, reply) => handle(request, reply, null, request.body))
}

export default callbackRoutes
